// The only module (with runtime-*.ts) that imports onnxruntime-node.
// PLACEHOLDER signatures so other layers compile; the runtime helper replaces the bodies.
import type { ProviderReport } from '../../../shared/api.js';

/** onnxruntime-node's version, or null when it cannot be loaded. */
export function ortVersion(): string | null {
  return null;
}

/** Tries each execution provider this platform can have with a tiny real session. */
export async function probeProviders(): Promise<ProviderReport[]> {
  return [];
}

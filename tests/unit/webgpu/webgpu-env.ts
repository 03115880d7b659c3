// Shared by the WebGPU tests: Mesa lavapipe wants XDG_RUNTIME_DIR set, and every test
// skips, saying why, where no Vulkan device can run ORT's WebGPU provider.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { probe } from '../../../src/main/engine/runtime/providers.js';

if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = mkdtempSync(path.join(tmpdir(), 'fstudio-xdg-'));

const report = await probe('webgpu');
/** Null where WebGPU works here, else the reason the WebGPU tests skip. */
export const webgpuSkipReason: string | null = report.available
  ? null
  : `SKIPPED: no usable WebGPU device (${report.reason}). On Debian run .ci/install-lavapipe.sh for Mesa 25 lavapipe.`;
if (webgpuSkipReason) console.warn(webgpuSkipReason);

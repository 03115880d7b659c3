// How a provider's probe result is said, the same on the System and Settings pages.
import type { ProviderReport } from '../../../shared/api.js';

/** "available", "software only, slow" (WebGPU on a software renderer) or "unavailable". */
export function providerStatus(p: ProviderReport): string {
  if (!p.available) return 'unavailable';
  return p.software ? 'software only, slow' : 'available';
}

/** ● for a provider worth using, ◐ for one that works only slowly, ○ for one that does not. */
export function providerMark(p: ProviderReport): string {
  if (!p.available) return '○';
  return p.software ? '◐' : '●';
}

// What a size costs on this machine (generateEstimate: the graph's FLOPs over the measured device speed,
// and the memory it needs), cached by everything it depends on. Cleared when the page opens, so speeds
// measured by the runs since are used.
import { SvelteMap } from 'svelte/reactivity';
import type { CallArgs } from '../../../shared/api.js';
import { describeError } from '../lib/errors.js';
import { getStudio } from '../lib/studio-client.js';
import type { Estimate } from './words.js';

export type EstimateArgs = CallArgs<'generateEstimate'>;
export type EstimateEntry = { estimate: Estimate } | { error: string };

export const estimates = new SvelteMap<string, EstimateEntry>();
// Bookkeeping of the calls in flight, never rendered.
// eslint-disable-next-line svelte/prefer-svelte-reactivity
const inflight = new Set<string>();

export const estimateKey = (a: EstimateArgs): string =>
  JSON.stringify([a.width, a.height, a.cuts, a.clip ?? '', a.vqgan ?? '', a.provider ?? '']);

const int = (n: number, min: number, max: number) => Number.isInteger(n) && n >= min && n <= max;
export const estimable = (a: EstimateArgs): boolean =>
  int(a.width, 16, 4096) && int(a.height, 16, 4096) && int(a.cuts, 1, 128);

export function clearEstimates(): void {
  estimates.clear();
}

/** Asks for the estimates not known yet (each once at a time). */
export async function fetchEstimates(wanted: readonly EstimateArgs[]): Promise<void> {
  const studio = getStudio();
  await Promise.all(
    wanted.filter(estimable).map(async (args) => {
      const key = estimateKey(args);
      if (estimates.has(key) || inflight.has(key)) return;
      inflight.add(key);
      try {
        estimates.set(key, { estimate: await studio.generateEstimate(args) });
      } catch (e) {
        estimates.set(key, { error: describeError(e, 'The estimate') });
      } finally {
        inflight.delete(key);
      }
    }),
  );
}

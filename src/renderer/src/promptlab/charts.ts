// Geometry and words shared by Prompt Lab's inline-SVG charts: percentages, the class colours (readable on
// both themes), a linear scale, and the rows of the explorer's "most unstable inputs" table.
//
// Public API
//   percent(x, digits?) / bits(x) / scale(domain, range) / classColor(i) / LabelProb / StatsView
//   unstableRows(result, stats, n) -> rows sorted by flip rate, then entropy
import type { ExploreStats, PromptExploreResult } from '../../../shared/api.js';

/** One way of reading an exploration's answers, as the charts draw it ("Raw", "Calibrated"). */
export interface StatsView {
  caption: string;
  stats: ExploreStats;
}

export interface LabelProb {
  label: string;
  raw: number;
  calibrated: number | null;
}

export function percent(x: number | null | undefined, digits = 0): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(digits)}%`;
}

export function bits(x: number): string {
  return `${x.toFixed(2)} bits`;
}

/** A linear map from [d0, d1] to [r0, r1]. */
export function scale([d0, d1]: [number, number], [r0, r1]: [number, number]): (v: number) => number {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/** Mid-tone colours that read on light and dark backgrounds, one per class (cycled). */
const PALETTE = ['#4f7be8', '#e0793a', '#3aa776', '#c453a8', '#c9a227', '#5bb5c9', '#8a6fd8', '#d0545b'];
export function classColor(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

export interface UnstableRow {
  idx: number;
  text: string;
  gold: string | null;
  majority: string;
  flipRate: number;
  entropyBits: number;
}

/** The inputs whose answers move most across variants: flip rate, then entropy, highest first. */
export function unstableRows(result: PromptExploreResult, stats: ExploreStats, n: number): UnstableRow[] {
  return stats.perInput
    .map((p, i) => ({
      idx: p.idx,
      text: result.inputs[i]?.text ?? '',
      gold: result.inputs[i]?.gold ?? null,
      majority: p.majority,
      flipRate: p.flipRate,
      entropyBits: p.entropyBits,
    }))
    .sort((a, b) => b.flipRate - a.flipRate || b.entropyBits - a.entropyBits || a.idx - b.idx)
    .slice(0, n);
}

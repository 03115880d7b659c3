// The loss chart's geometry: SVG paths for the total and each prompt's loss over the steps, thinned
// to a few hundred points (bucket means) so a long run draws as fast as a short one.

export interface LossPoint {
  step: number;
  total: number;
  perPrompt: number[];
}

export interface ChartGeometry {
  /** `d` of the total's path, then one per prompt (empty when there is nothing to draw). */
  total: string;
  perPrompt: string[];
  /** The value range drawn (padded) and the steps it spans. */
  min: number;
  max: number;
  firstStep: number;
  lastStep: number;
}

/** Averages consecutive points into at most `n` (the last point stays the last). */
export function thin(points: readonly LossPoint[], n: number): LossPoint[] {
  if (points.length <= n) return [...points];
  const out: LossPoint[] = [];
  const size = points.length / n;
  for (let b = 0; b < n; b++) {
    const bucket = points.slice(Math.floor(b * size), Math.floor((b + 1) * size));
    if (bucket.length === 0) continue;
    const mean = (f: (p: LossPoint) => number) => bucket.reduce((a, p) => a + f(p), 0) / bucket.length;
    const prompts = Math.max(...bucket.map((p) => p.perPrompt.length));
    out.push({
      step: bucket[bucket.length - 1]!.step,
      total: mean((p) => p.total),
      perPrompt: Array.from({ length: prompts }, (_, i) => mean((p) => p.perPrompt[i] ?? 0)),
    });
  }
  return out;
}

const r1 = (v: number) => Math.round(v * 10) / 10;

export function lossGeometry(
  points: readonly LossPoint[],
  width: number,
  height: number,
  maxPoints = 400,
): ChartGeometry {
  const pts = thin(
    points.filter((p) => Number.isFinite(p.total)),
    maxPoints,
  );
  const prompts = Math.max(0, ...pts.map((p) => p.perPrompt.length));
  if (pts.length === 0) return { total: '', perPrompt: [], min: 0, max: 1, firstStep: 0, lastStep: 0 };
  const values = pts.flatMap((p) => [p.total, ...p.perPrompt.filter(Number.isFinite)]);
  let min = Math.min(...values);
  let max = Math.max(...values);
  const pad = max > min ? (max - min) * 0.05 : Math.abs(max) * 0.1 || 1;
  min -= pad;
  max += pad;
  const firstStep = pts[0]!.step;
  const lastStep = pts[pts.length - 1]!.step;
  const xSpan = lastStep > firstStep ? lastStep - firstStep : 1;
  const x = (step: number) => r1(((step - firstStep) / xSpan) * width);
  const y = (v: number) => r1(height - ((v - min) / (max - min)) * height);
  const path = (value: (p: LossPoint) => number | undefined) => {
    let d = '';
    for (const p of pts) {
      const v = value(p);
      if (v === undefined || !Number.isFinite(v)) continue;
      d += `${d === '' ? 'M' : 'L'}${x(p.step)} ${y(v)}`;
    }
    // One point: a short flat line, so it shows.
    return pts.length === 1 && d !== '' ? `${d}L${width} ${y(value(pts[0]!)!)}` : d;
  };
  return {
    total: path((p) => p.total),
    perPrompt: Array.from({ length: prompts }, (_, i) => path((p) => p.perPrompt[i])),
    min,
    max,
    firstStep,
    lastStep,
  };
}

/** A loss for the axis: three significant digits. */
export function lossLabel(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(3))) : '—';
}

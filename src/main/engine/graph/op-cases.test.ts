// The portable float32 per-op cases (what `doctor --gradcheck` runs) all pass on ORT's CPU provider,
// and together they cover every op that has a rule.
import { describe, expect, it } from 'vitest';
import { NON_DIFFERENTIABLE, RULES } from './grad-rules.js';
import { OP_CASES, runOpCases } from './op-cases.js';

describe('portable op cases', () => {
  it('pass on cpu, each within its stated tolerance', async () => {
    const results = await runOpCases('cpu');
    console.log(results.map((r) => `${r.label.padEnd(24)} ${r.error?.toExponential(2)} (tol ${r.tol})`).join('\n'));
    expect(results.filter((r) => !r.ok)).toEqual([]);
  });
  it('cover every op with a rule', () => {
    const labels = new Set(OP_CASES.map((c) => c.label));
    expect(Object.keys(RULES).filter((op) => !NON_DIFFERENTIABLE.has(op) && !labels.has(op))).toEqual([]);
  });
});

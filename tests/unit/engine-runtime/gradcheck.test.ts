import { inThreadDevice } from '../../../src/main/engine/runtime/worker-core.js';
import { describe, expect, it } from 'vitest';
import {
  formatGradcheckReport,
  GRADCHECK_CASES,
  runGradcheck,
  type GradcheckCase,
} from '../../../src/main/engine/graph/gradcheck.js';

describe('runGradcheck', () => {
  it('passes every op on the CPU provider and covers every op with a rule', async () => {
    const r = await runGradcheck(inThreadDevice(), { provider: 'cpu' });
    expect(r.provider).toBe('cpu');
    expect(r.uncovered).toEqual([]);
    expect(new Set(r.ops.map((o) => o.op))).toEqual(new Set(GRADCHECK_CASES.map((c) => c.op)));
    for (const o of r.ops)
      expect(o.worstRelError, `${o.op}: ${o.worstCase} ${o.error ?? ''}`).toBeLessThanOrEqual(r.tolerance);
    expect(r.passed).toBe(true);
    const text = formatGradcheckReport(r);
    expect(text).toMatch(/^gradcheck on cpu \(float32/);
    expect(text).toMatch(/\nConvTranspose +1 +\S+ +ok /);
    expect(text).toMatch(/passed: all \d+ ops within 0\.01/);
  });

  it('fails an op whose backward disagrees with its forward', async () => {
    // Forward x^3, backward routed to 2x (straightThrough): the analytic gradient is wrong on purpose.
    const wrong: GradcheckCase = {
      op: 'Wrong',
      label: 'x^3 forward, x^2 backward',
      inputs: [{ shape: [2, 3], lo: 0.5, hi: 1.5 }],
      build: (b, [x]) => b.straightThrough(b.stopGradient(b.pow(x!, 3)), b.mul(x!, x!)),
    };
    const r = await runGradcheck(inThreadDevice(), { provider: 'cpu', cases: [wrong, GRADCHECK_CASES[0]!] });
    expect(r.passed).toBe(false);
    const bad = r.ops.find((o) => o.op === 'Wrong')!;
    expect(bad.pass).toBe(false);
    expect(bad.worstRelError).toBeGreaterThan(0.1);
    expect(r.ops.find((o) => o.op === 'Add')!.pass).toBe(true);
    expect(formatGradcheckReport(r)).toMatch(/FAILED: 1 of 2 ops/);
  });

  it('reports a case that cannot be built as an error, not a crash', async () => {
    const broken: GradcheckCase = {
      op: 'Broken',
      label: 'shape mismatch',
      inputs: [{ shape: [2] }, { shape: [3] }],
      build: (b, [x, y]) => b.add(x!, y!),
    };
    const r = await runGradcheck(inThreadDevice(), { provider: 'cpu', cases: [broken] });
    expect(r.passed).toBe(false);
    expect(r.ops[0]!.error).toBeTruthy();
    expect(formatGradcheckReport(r)).toMatch(/error +FAIL/);
  });
});

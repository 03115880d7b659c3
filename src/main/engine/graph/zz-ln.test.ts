import { it } from 'vitest';
import { checkGradient, samplers } from './fdcheck.js';
it('ln h scan', async () => {
  for (const h of [1e-3, 1e-4, 1e-5, 1e-6]) {
    for (const [s, axis, ss] of [[[2, 5], -1, [5]], [[2, 3, 4], -1, [4]], [[2, 3, 4], 1, [3, 4]]] as [number[], number, number[]][]) {
      const r = await checkGradient({ label: 'x', shapes: [s, ss, ss], build: (b, [x, g, bb]) => b.layerNorm(x!, g!, bb!, { axis }), sample: samplers.normal(), h, tol: 1 });
      console.log(h, JSON.stringify(s), r.worstDirectional.toExponential(2), r.worstJacobian?.toExponential(2));
    }
  }
});

// CPU against WebGPU for every op with a backward rule: forward output, loss and every input
// gradient agree within float32 tolerances, and no node of the emitted graph runs on the CPU
// when the session is on WebGPU (checked from ORT's per-node profile).
import { describe, expect, it } from 'vitest';
import {
  GRADCHECK_CASES,
  buildCaseModel,
  caseInputs,
  type GradcheckCase,
} from '../../../src/main/engine/graph/gradcheck.js';
import { createSession, type HostTensor } from '../../../src/main/engine/runtime/ort.js';
import { webgpuSkipReason } from './webgpu-env.js';

/** Per case: ops that may run on the CPU under WebGPU, and why. */
const CPU_ALLOWED: Record<string, Record<string, string>> = {
  Sign: { Sign: 'the graph asks for Sign itself and ORT 1.30 has no WebGPU Sign kernel' },
};
/** Known defects: the case is expected to fail placement until the named fix lands (it.fails flips then). */
const KNOWN_FALLBACK_DEFECTS: Record<string, string> = {};

// Float32 on two different kernels (CPU MLAS vs WGSL): sums in other orders, Erf/Tanh by other approximations.
const ATOL = 1e-5;
const RTOL = 1e-4;
/** Looser where WGSL itself promises less: asin's accuracy is inherited from atan2, 4096 ULP (WGSL spec 15.3). */
const RTOL_FOR: Record<string, number> = { Asin: 1e-3 };

function maxExcess(a: HostTensor, b: HostTensor, rtol: number): { worst: number; at: number } {
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.data.length; i++) {
    const x = Number(a.data[i]);
    const y = Number(b.data[i]);
    const excess = Math.abs(x - y) / (ATOL + rtol * Math.abs(y));
    if (!(excess <= worst)) {
      worst = excess;
      at = i;
    }
  }
  return { worst, at };
}

async function runCase(c: GradcheckCase, provider: 'cpu' | 'webgpu') {
  const { model } = buildCaseModel(c, 5);
  const s = await createSession(model, { provider, profile: provider === 'webgpu' });
  try {
    const x = caseInputs(c, 5);
    const out = await s.run(
      Object.fromEntries(x.map((v, k) => [`x${k}`, { dtype: 'float32' as const, dims: c.inputs[k]!.shape, data: v }])),
    );
    const nodes = provider === 'webgpu' ? await s.endProfiling() : [];
    return { out, nodes };
  } finally {
    await s.release();
  }
}

describe.skipIf(webgpuSkipReason !== null)('CPU vs WebGPU parity, forward and gradient', () => {
  for (const c of GRADCHECK_CASES) {
    let webgpuRun: ReturnType<typeof runCase> | undefined;
    const onWebgpu = () => (webgpuRun ??= runCase(c, 'webgpu'));
    it(`${c.op}: ${c.label}`, async () => {
      const cpu = await runCase(c, 'cpu');
      const gpu = await onWebgpu();
      expect(Object.keys(gpu.out).sort()).toEqual(Object.keys(cpu.out).sort());
      for (const [name, ref] of Object.entries(cpu.out)) {
        const got = gpu.out[name]!;
        expect(got.dims, name).toEqual(ref.dims);
        const { worst, at } = maxExcess(got, ref, RTOL_FOR[c.op] ?? RTOL);
        expect(worst, `${name}[${at}]: webgpu ${got.data[at]} vs cpu ${ref.data[at]}`).toBeLessThanOrEqual(1);
      }
    });
    const placement = async () => {
      const { nodes } = await onWebgpu();
      expect(nodes.length).toBeGreaterThan(0);
      const allowed = CPU_ALLOWED[c.op] ?? {};
      const onCpu = nodes.filter((n) => n.provider !== 'WebGpuExecutionProvider' && !(n.op in allowed));
      expect(onCpu.map((n) => `${n.op} (${n.name}) on ${n.provider}`)).toEqual([]);
    };
    if (KNOWN_FALLBACK_DEFECTS[c.op])
      it.fails(`${c.op}: ${c.label}: placement (known: ${KNOWN_FALLBACK_DEFECTS[c.op]})`, placement);
    else {
      const except = Object.keys(CPU_ALLOWED[c.op] ?? {});
      it(
        `${c.op}: ${c.label}: every node on WebGPU${except.length ? ` except ${except.join(', ')} (allowed)` : ''}`,
        placement,
      );
    }
  }
});

if (webgpuSkipReason) describe('CPU vs WebGPU parity', () => it.skip(webgpuSkipReason ?? '', () => {}));

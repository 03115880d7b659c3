// The step graph against PyTorch (tests/fixtures/vqclip/make_fixtures.py: Crowson's recipe with autograd and
// torch.optim, float64, on the tiny CLIP and VQGAN fixtures): losses, the gradient for z through the
// straight-through quantiser, the decoded image and tokens, and z and the optimiser's moments after each
// step, for fixed cutouts of both styles, carrying z, m and v from step to step as the task does.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Builder } from '../graph/builder.js';
import { type HostTensor, type Tensor } from '../graph/ir.js';
import { assertModel } from '../graph/check.js';
import { decodeModel, emitModel } from '../graph/onnx-proto.js';
import { type LoadedClip, loadClip } from '../nets/clip-load.js';
import { paramsFrom } from '../nets/clip.js';
import { type LoadedVqgan, loadVqgan } from '../nets/vqgan-load.js';
import { vqganParams } from '../nets/vqgan.js';
import { createSession } from '../runtime/ort.js';
import { readSafetensors, toFloat32 } from '../weights/index.js';
import { type CutParams, cutFeedsFrom } from './cutouts.js';
import { optimizerFeeds } from './generate.js';
import { type Optimizer, type StepSpec, buildStepGraph, cutSpecOf, emitStepGraph, stepInputs } from './step-graph.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const FIX = path.join(ROOT, 'tests/fixtures');

interface Case {
  method: 'original' | 'pooled';
  optimizer: Optimizer;
  lr: number;
  initWeight: number;
  width: number;
  height: number;
  cuts: number;
  steps: number;
  weights: number[];
  rowPrompt: number[];
  signs: number[];
  stops: (number | '-inf')[];
  member: number[][];
  active: number[];
  records: { loss: number; losses: number[]; cuts: unknown[] }[];
}

let clip: LoadedClip;
let vq: LoadedVqgan;
let cases: Record<string, Case>;
const gold = new Map<string, { dims: number[]; data: Float32Array | BigInt64Array }>();
const report: string[] = [];

beforeAll(async () => {
  clip = await loadClip(path.join(FIX, 'clip/tiny'), { towers: ['vision'] });
  vq = await loadVqgan(path.join(FIX, 'vqgan/tiny.ckpt'));
  cases = (JSON.parse(readFileSync(path.join(FIX, 'vqclip/goldens.json'), 'utf8')) as { cases: Record<string, Case> })
    .cases;
  for (const [name, t] of await readSafetensors(path.join(FIX, 'vqclip/goldens.safetensors'))) {
    const data =
      t.dtype === 'I64'
        ? new BigInt64Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength))
        : toFloat32(t);
    gold.set(name, { dims: t.shape, data });
  }
});

afterAll(() =>
  console.log(`step graph vs PyTorch (float64 reference), max |error| / max |reference|:\n${report.join('\n')}`),
);

const g32 = (name: string) => {
  const t = gold.get(name);
  if (!t) throw new Error(`no golden ${name}`);
  return t.data as Float32Array;
};

/** max |a - b| / max |b| (the error on the reference's scale). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  const ref = Array.from(b);
  return Math.max(...Array.from(a, (v, i) => Math.abs(v - ref[i]!))) / Math.max(...ref.map(Math.abs));
}

function specOf(c: Case): StepSpec {
  return {
    clip: clip.config,
    vqgan: vq.config,
    width: c.width,
    height: c.height,
    cuts: c.cuts,
    cutMethod: c.method,
    targets: c.rowPrompt.length,
    prompts: c.weights.length,
    optimizer: c.optimizer,
    initTerm: c.initWeight > 0,
    // In chunks (an uneven split for one case): the chunks' gradients must add up to the whole loss's.
    cutChunk: c.method === 'original' ? 3 : 2,
  };
}

const f32 = (dims: number[], data: ArrayLike<number>): HostTensor => ({
  dtype: 'float32',
  dims,
  data: Float32Array.from(data),
});

describe.each(['original', 'pooled'])('%s cutouts', (name) => {
  it('losses, dz, image, tokens and the optimiser state match PyTorch step after step', async () => {
    const c = cases[name]!;
    const spec = specOf(c);
    const b = new Builder('step');
    const outs = buildStepGraph(b, spec, paramsFrom(b, clip.weights), vqganParams(b, vq.config, vq.weights));
    const outputs: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(outs)) if (t) outputs[k] = t;
    const session = await createSession(emitModel(b.graph, { outputs }));
    const T = c.rowPrompt.length;
    const P = c.weights.length;
    const E = clip.config.projectionDim;
    const zDims = gold.get(`${name}.0.z`)!.dims;
    const fixed: Record<string, HostTensor> = {
      targets: f32([T, E], g32(`${name}.targets`)),
      sign: f32([T], c.signs),
      stop: f32(
        [T],
        c.stops.map((s) => (s === '-inf' ? -Infinity : s)),
      ),
      member: f32([T, P], c.member.flat()),
      weight: f32(
        [P],
        c.weights.map((w) => Math.abs(w)),
      ),
      active: f32([P], c.active),
    };
    if (spec.initTerm) {
      fixed.z0 = f32(zDims, g32(`${name}.z_start`));
      fixed.init_weight = f32([], [c.initWeight]);
    }
    let z = f32(zDims, g32(`${name}.0.z`));
    let m = f32(zDims, new Float32Array(z.data.length));
    let v = f32(zDims, new Float32Array(z.data.length));
    const cut = cutSpecOf(spec);
    const worst = { loss: 0, losses: 0, dz: 0, z: 0, m: 0, v: 0, rgb: 0 };
    const tokensEqual: boolean[] = [];
    try {
      for (let i = 0; i < c.steps; i++) {
        const rec = c.records[i]!;
        const params = (
          c.method === 'original'
            ? { method: 'original', cuts: (rec.cuts as number[][]).map(([side, x, y]) => ({ side, x, y })) }
            : { method: 'pooled', cuts: rec.cuts }
        ) as CutParams;
        const noise = c.method === 'pooled' ? g32(`${name}.${i}.noise`) : undefined;
        const feeds: Record<string, HostTensor> = {
          ...fixed,
          ...cutFeedsFrom(cut, params, noise),
          ...optimizerFeeds({ lr: c.lr, stepDecay: null, optimizer: c.optimizer }, i, i + 1),
          z,
          ...(c.optimizer === 'sgd' ? {} : { m, v }),
        };
        // z carried from our own previous step still agrees with PyTorch's.
        worst.z = Math.max(worst.z, relErr(z.data as Float32Array, g32(`${name}.${i}.z`)));
        const r = await session.run(feeds);
        worst.loss = Math.max(worst.loss, Math.abs((r.loss!.data[0] as number) - rec.loss) / Math.abs(rec.loss));
        worst.losses = Math.max(worst.losses, relErr(r.losses!.data as Float32Array, rec.losses));
        worst.dz = Math.max(worst.dz, relErr(r.grad!.data as Float32Array, g32(`${name}.${i}.dz`)));
        tokensEqual.push(
          Array.from(r.tokens!.data as Int32Array).join() ===
            Array.from(gold.get(`${name}.${i}.tokens`)!.data as BigInt64Array, Number).join(),
        );
        // The 8-bit image is the reference image rounded: within one level.
        const img = g32(`${name}.${i}.image`);
        const [H, W] = [c.height, c.width];
        const rgb = r.rgb!.data as Uint8Array;
        expect(r.rgb!.dims).toEqual([H, W, 3]);
        for (let y = 0; y < H; y++)
          for (let x = 0; x < W; x++)
            for (let ch = 0; ch < 3; ch++)
              worst.rgb = Math.max(worst.rgb, Math.abs(rgb[(y * W + x) * 3 + ch]! - img[(ch * H + y) * W + x]! * 255));
        worst.z = Math.max(worst.z, relErr(r.z_next!.data as Float32Array, g32(`${name}.${i}.z_next`)));
        if (c.optimizer !== 'sgd') {
          worst.m = Math.max(worst.m, relErr(r.m_next!.data as Float32Array, g32(`${name}.${i}.m_next`)));
          worst.v = Math.max(worst.v, relErr(r.v_next!.data as Float32Array, g32(`${name}.${i}.v_next`)));
          m = r.m_next!;
          v = r.v_next!;
        }
        z = r.z_next!;
      }
    } finally {
      await session.release();
    }
    report.push(
      `${name.padEnd(9)} loss ${worst.loss.toExponential(2)}  losses ${worst.losses.toExponential(2)}  ` +
        `dz ${worst.dz.toExponential(2)}  z ${worst.z.toExponential(2)}  m ${worst.m.toExponential(2)}  ` +
        `v ${worst.v.toExponential(2)}  rgb ${worst.rgb.toFixed(3)} levels`,
    );
    expect(worst.loss).toBeLessThan(1e-4);
    expect(worst.losses).toBeLessThan(1e-4);
    expect(worst.dz).toBeLessThan(1e-3);
    expect(worst.z).toBeLessThan(1e-4);
    expect(worst.m).toBeLessThan(1e-3);
    expect(worst.v).toBeLessThan(1e-3);
    expect(worst.rgb).toBeLessThanOrEqual(0.5 + 1e-3);
    expect(tokensEqual).toEqual(new Array<boolean>(c.steps).fill(true));
  });
});

describe('the emitted graph', () => {
  it('is one plain opset-17 inference graph with the documented inputs and outputs', () => {
    const spec = specOf(cases.pooled!);
    const bytes = emitStepGraph(spec, clip.weights, vq.weights);
    assertModel(bytes);
    const model = decodeModel(bytes);
    expect(model.graph.output?.map((o) => o.name).sort()).toEqual(
      ['loss', 'losses', 'm_next', 'rgb', 'tokens', 'v_next', 'z_next'].sort(),
    );
    expect(model.graph.input?.map((i) => i.name).sort()).toEqual(
      stepInputs(spec)
        .map((i) => i.name)
        .sort(),
    );
  });
});

describe('stops', () => {
  it('a stop above every distance cuts the gradient to exactly zero; at -inf it cuts nothing', async () => {
    const c = cases.original!;
    const spec = { ...specOf(c), targets: 1, prompts: 1, initTerm: false, optimizer: 'sgd' as const };
    const b = new Builder('step');
    const outs = buildStepGraph(b, spec, paramsFrom(b, clip.weights), vqganParams(b, vq.config, vq.weights));
    const session = await createSession(emitModel(b.graph, { outputs: { grad: outs.grad, losses: outs.losses } }));
    const E = clip.config.projectionDim;
    const params = {
      method: 'original',
      cuts: (c.records[0]!.cuts as number[][]).map(([side, x, y]) => ({ side, x, y })),
    } as CutParams;
    const run = async (stop: number) =>
      session.run({
        ...cutFeedsFrom(cutSpecOf(spec), params),
        z: f32(gold.get('original.0.z')!.dims, g32('original.0.z')),
        lr: f32([], [0.1]),
        targets: f32([1, E], g32('original.targets').subarray(0, E)),
        sign: f32([1], [1]),
        stop: f32([1], [stop]),
        member: f32([1, 1], [1]),
        weight: f32([1], [1]),
        active: f32([1], [1]),
      });
    try {
      const free = await run(-Infinity);
      const d = (free.losses!.data as Float32Array)[0]!;
      const gFree = free.grad!.data as Float32Array;
      expect(gFree.some((x) => x !== 0)).toBe(true);
      const held = await run(d + 10); // every (cutout, row) distance is below: no row pulls
      expect((held.losses!.data as Float32Array)[0]).toBe(d); // still reported
      expect(Array.from(held.grad!.data as Float32Array).every((x) => x === 0)).toBe(true);
      const low = await run(-10); // every distance is above: the stop changes nothing
      expect(Array.from(low.grad!.data as Float32Array)).toEqual(Array.from(gFree));
    } finally {
      await session.release();
    }
  });
});

// Serialisation: the ModelProto fields, pruning to the requested outputs, output naming, and
// external data; check.ts on good and bad models.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Builder } from './builder.js';
import { checkModel } from './check.js';
import { countFlops } from './flops.js';
import { grad } from './grad.js';
import { buildModelObject, decodeModel, emitModel, saveModel } from './onnx-proto.js';
import { createSession } from '../runtime/ort.js';

function smallGraph() {
  const b = new Builder('small');
  const x = b.input('x', [2, 3]);
  const w = b.param('weight', { dtype: 'float32', dims: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) });
  const y = b.matmul(x, w);
  const unused = b.exp(x);
  return { b, x, w, y, unused };
}

describe('ModelProto', () => {
  it('has IR version 8, opset 17 in the default domain, typed inputs/outputs and raw initializers', () => {
    const { b, y } = smallGraph();
    const m = decodeModel(emitModel(b.graph, { outputs: { y } }));
    expect(m.ir_version).toBe(8);
    expect(m.opset_import).toEqual([{ domain: '', version: 17 }]);
    expect(m.graph.input!.map((v) => v.name)).toEqual(['x']);
    expect(m.graph.input![0]!.type.tensor_type.elem_type).toBe(1);
    expect(m.graph.input![0]!.type.tensor_type.shape.dim.map((d) => d.dim_value)).toEqual([2, 3]);
    expect(m.graph.output!.map((v) => v.name)).toEqual(['y']);
    const init = m.graph.initializer![0]!;
    expect(init.name).toBe('weight');
    expect(init.dims).toEqual([3, 2]);
    expect(Array.from(new Float32Array(Uint8Array.from(init.raw_data!).buffer))).toEqual([1, 2, 3, 4, 5, 6]);
    const mm = m.graph.node.find((n) => n.op_type === 'MatMul')!;
    expect(mm.input).toEqual(['x', 'weight']);
  });

  it('keeps only the nodes and initializers the outputs need', () => {
    const { b, y, unused } = smallGraph();
    const m = decodeModel(emitModel(b.graph, { outputs: [unused] }));
    expect(m.graph.node.map((n) => n.op_type)).toEqual(['Exp']);
    expect(m.graph.initializer ?? []).toEqual([]);
    expect(m.graph.input!.map((v) => v.name)).toEqual(['x']);
    expect(decodeModel(emitModel(b.graph, { outputs: [y, unused] })).graph.node).toHaveLength(2);
    const w2 = b.param('w2', { dtype: 'float32', dims: [1], data: Float32Array.from([2]) });
    const z = b.mul(w2, w2);
    expect(decodeModel(emitModel(b.graph, { outputs: [z] })).graph.input!.map((v) => v.name)).toEqual(['x']);
    expect(decodeModel(emitModel(b.graph, { outputs: [z], keepUnusedInputs: false })).graph.input ?? []).toEqual([]);
  });

  it('renames outputs through Identity nodes without clashing, and refuses a clash', async () => {
    const { b, x, w, y } = smallGraph();
    const bytes = emitModel(b.graph, { outputs: { out: y, again: y, xin: x, weights: w } });
    expect(checkModel(bytes)).toEqual([]);
    const s = await createSession(bytes, { optimization: 'all' });
    try {
      const r = await s.run({ x: { dtype: 'float32', dims: [2, 3], data: Float32Array.from([1, 0, 0, 0, 1, 0]) } });
      expect(Array.from(r.out!.data as Float32Array)).toEqual([1, 2, 3, 4]);
      expect(Array.from(r.again!.data as Float32Array)).toEqual([1, 2, 3, 4]);
      expect(Array.from(r.weights!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await s.release();
    }
    expect(() => emitModel(b.graph, { outputs: { weight: y } })).toThrow(/already a tensor or node name/);
  });

  it('writes weights as external data when asked (and always above 2 GB) at 64-byte aligned offsets', async () => {
    const { b, y } = smallGraph();
    const big = b.param('big', { dtype: 'float32', dims: [5], data: Float32Array.from([9, 8, 7, 6, 5]) });
    const z = b.add(b.reduceSum(y), b.reduceSum(big));
    const dir = mkdtempSync(join(tmpdir(), 'fstudio-onnx-'));
    try {
      const path = join(dir, 'model.onnx');
      const saved = await saveModel(b.graph, path, { outputs: { z }, externalData: true });
      expect(saved.dataPath).toBe(`${path}.data`);
      const m = decodeModel(readFileSync(path));
      const data = readFileSync(saved.dataPath!);
      const vals: Record<string, number[]> = {};
      for (const t of m.graph.initializer!) {
        expect(t.raw_data).toBeUndefined();
        expect(t.data_location).toBe(1);
        const e = Object.fromEntries(t.external_data!.map((kv) => [kv.key, kv.value]));
        expect(e.location).toBe('model.onnx.data');
        expect(Number(e.offset) % 64).toBe(0);
        const bytes = data.subarray(Number(e.offset), Number(e.offset) + Number(e.length));
        vals[t.name] = Array.from(
          new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)),
        );
      }
      expect(vals.weight).toEqual([1, 2, 3, 4, 5, 6]);
      expect(vals.big).toEqual([9, 8, 7, 6, 5]);
      // Inline weights in memory otherwise.
      const inline = await saveModel(b.graph, join(dir, 'inline.onnx'), { outputs: { z } });
      expect(inline.dataPath).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('check.ts', () => {
  it('accepts every gradient graph the engine emits', () => {
    const b = new Builder();
    const x = b.input('x', [1, 2, 4, 4]);
    const w = b.input('w', [3, 2, 3, 3]);
    const y = b.softmax(b.reshape(b.conv(x, w, null, { strides: [2, 2], pads: [1, 1, 1, 1] }), [1, -1]));
    const [dx, dw] = grad(b, b.sum(b.mul(y, y)), [x, w]);
    expect(checkModel(emitModel(b.graph, { outputs: { dx: dx!, dw: dw! } }))).toEqual([]);
  });

  it('finds duplicate node names, foreign domains, newer opsets, unknown ops and undefined inputs', () => {
    const { b, y } = smallGraph();
    const m = buildModelObject(b.graph, { outputs: { y } });
    m.opset_import.push({ domain: 'com.microsoft', version: 1 });
    m.opset_import[0]!.version = 18;
    m.graph.node.push({ ...m.graph.node[0]!, output: ['dup_out'] });
    m.graph.node.push({ name: 'fused', op_type: 'FusedMatMul', domain: 'com.microsoft', input: ['x'], output: ['f'] });
    m.graph.node.push({ name: 'g', op_type: 'SoftmaxGrad', domain: '', input: ['nowhere'], output: ['g'] });
    const problems = checkModel(m).join('\n');
    expect(problems).toMatch(/non-default domain 'com.microsoft'/);
    expect(problems).toMatch(/opset 18 above 17/);
    expect(problems).toMatch(/node name 'MatMul' is used twice/);
    expect(problems).toMatch(/node 'fused' \(FusedMatMul\) is in domain 'com.microsoft'/);
    expect(problems).toMatch(/'SoftmaxGrad' is not a default-domain opset-17 op/);
    expect(problems).toMatch(/reads 'nowhere' before it is defined/);
  });
});

describe('FLOP counts', () => {
  it('count 2 per multiply-add for MatMul, Gemm, Conv and ConvTranspose, by hand', () => {
    const b = new Builder();
    const a = b.input('a', [4, 8, 16]);
    const m = b.matmul(a, b.input('bm', [16, 32])); // 4*8*32 outputs x 16 MACs
    const x = b.input('x', [2, 6, 10, 10]);
    const c = b.conv(x, b.input('w', [4, 3, 3, 3]), b.input('cb', [4]), { group: 2, pads: [1, 1, 1, 1] });
    const t = b.convTranspose(x, b.input('wt', [6, 5, 2, 2]), null, { strides: [2, 2] });
    const g = b.gemm(b.input('ga', [8, 4]), b.input('gb', [5, 8]), b.input('gc', [5]), { transA: true, transB: true });
    const r = countFlops(b.graph, [m, c, t, g]);
    expect(r.byOp.MatMul).toBe(2 * 4 * 8 * 32 * 16);
    // Conv: 2*4*10*10 outputs, each (6/2)*3*3 MACs, plus one add per output for the bias
    expect(r.byOp.Conv).toBe(2 * (2 * 4 * 100) * 27 + 2 * 4 * 100);
    // ConvTranspose: every input element times M/group * k*k
    expect(r.byOp.ConvTranspose).toBe(2 * (2 * 6 * 100) * 5 * 4);
    expect(r.byOp.Gemm).toBe(2 * 4 * 5 * 8 + 4 * 5);
    expect(r.total).toBe(r.byOp.MatMul! + r.byOp.Conv! + r.byOp.ConvTranspose! + r.byOp.Gemm!);
  });
  it('a conv gradient costs about twice its forward', () => {
    const b = new Builder();
    const x = b.input('x', [1, 8, 16, 16]);
    const w = b.input('w', [8, 8, 3, 3]);
    const y = b.conv(x, w, null, { pads: [1, 1, 1, 1] });
    const fwd = countFlops(b.graph, [y]).total;
    const [dx, dw] = grad(b, b.sum(y), [x, w]);
    expect(countFlops(b.graph, [dx!]).byOp.Conv).toBe(fwd); // input gradient (flipped-kernel conv): same MACs
    expect(countFlops(b.graph, [dw!]).byOp.Conv).toBe(fwd); // weight gradient: same MACs
    const ys = b.conv(x, w, null, { pads: [1, 1, 1, 1], strides: [2, 2] });
    const [dxs] = grad(b, b.sum(ys), [x]);
    expect(countFlops(b.graph, [dxs!]).byOp.ConvTranspose).toBe(countFlops(b.graph, [ys]).total);
  });
});

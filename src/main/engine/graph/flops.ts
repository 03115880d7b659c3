// FLOP counts from static shapes, so benchmarks can report achieved GFLOP/s.
// Convention: a multiply-add is 2 FLOPs (MatMul, Gemm, Conv, ConvTranspose); an elementwise op is 1 per
// output element (Sigmoid, Erf, ... are counted as 1, not as their polynomial); a reduction is 1 per
// input element; Softmax 3 and LayerNormalization 5 per element; pure data movement (Reshape,
// Transpose, Slice, Gather, Pad, Expand, Concat, Resize, Cast, Identity, ...) is 0.
//
// Public API
//   nodeFlops(node) -> number
//   countFlops(graph, outputs?) -> { total, byOp }   over all nodes, or only those `outputs` need

import { type Graph, type Node, sizeOf } from './ir.js';
import { neededNodes } from './onnx-proto.js';
import { type Tensor } from './ir.js';

const ELEMENTWISE = new Set(
  (
    'Add Sub Mul Div Neg Pow Sqrt Exp Log Sigmoid Tanh Erf Asin Relu Abs Sign Reciprocal Min Max Clip Where ' +
    'Less Greater Equal LessOrEqual GreaterOrEqual And Or Not'
  ).split(' '),
);
const REDUCTION = new Set(['ReduceSum', 'ReduceMean', 'ReduceMax', 'ArgMax', 'ArgMin', 'ScatterElements']);

export function nodeFlops(n: Node): number {
  const y = n.outputs[0]!;
  const x = n.inputs[0];
  switch (n.opType) {
    case 'MatMul': {
      const a = n.inputs[0]!;
      const k = a.shape[a.rank - 1]!;
      return 2 * k * y.size;
    }
    case 'Gemm': {
      const a = n.inputs[0]!;
      const transA = n.attrs.transA?.type === 'int' && n.attrs.transA.value === 1;
      const k = transA ? a.shape[0]! : a.shape[1]!;
      return 2 * k * y.size + (n.inputs[2] ? y.size : 0);
    }
    case 'Conv': {
      // Each output element: C/group * prod(kernel) multiply-adds.
      const w = n.inputs[1]!;
      return 2 * y.size * sizeOf(w.shape.slice(1)) + (n.inputs[2] ? y.size : 0);
    }
    case 'ConvTranspose': {
      // Each input element scatters into (M/group) * prod(kernel) outputs.
      const w = n.inputs[1]!;
      return 2 * x!.size * sizeOf(w.shape.slice(1)) + (n.inputs[2] ? y.size : 0);
    }
    case 'Softmax':
      return 3 * y.size;
    case 'LayerNormalization':
      return 5 * y.size;
  }
  if (ELEMENTWISE.has(n.opType)) return y.size;
  if (REDUCTION.has(n.opType)) return n.opType === 'ScatterElements' ? n.inputs[2]!.size : x!.size;
  return 0;
}

export function countFlops(graph: Graph, outputs?: readonly Tensor[]): { total: number; byOp: Record<string, number> } {
  const nodes = outputs ? neededNodes(graph, outputs) : graph.nodes;
  const byOp: Record<string, number> = {};
  let total = 0;
  for (const n of nodes) {
    const c = nodeFlops(n);
    total += c;
    if (c) byOp[n.opType] = (byOp[n.opType] ?? 0) + c;
  }
  return { total, byOp };
}

// The differentiable engine's public surface (runtime.ts is imported directly by those who run graphs).
//
//   const b = new Builder('mlp');
//   const x = b.input('x', [8, 4], 'float32');
//   const w = b.input('w', [4, 3], 'float32');
//   const loss = b.mean(b.square(b.matmul(x, w)));
//   const [dw] = grad(b, loss, [w]);
//   const bytes = emitModel(b.graph, { outputs: { loss, dw } });   // run with runtime.ts createSession(bytes)
//   assertModel(bytes);
//
// Test helpers (not re-exported here because they run graphs through runtime.ts): fdcheck.ts
// (checkGradient: emitted gradient vs central differences of the forward graph; runGraph).

export { Builder, broadcastShapes, dtypeCode, dtypeFromCode, sliceRange } from './builder.js';
export type { ConvOptions, ConvTransposeOptions, GemmOptions, PadMode, TensorLike } from './builder.js';
export { Graph, Tensor, allocData, bytesPerElement, isFloat, sizeOf } from './ir.js';
export type { Attr, DType, HostTensor, Marker, Node, OutputSpec, TensorData, TensorKind } from './ir.js';
export { grad } from './grad.js';
export type { GradOptions } from './grad.js';
export { NON_DIFFERENTIABLE, RULES, convWeightGrad } from './grad-rules.js';
export type { GradRule, RuleContext } from './grad-rules.js';
export {
  ONNX_IR_VERSION,
  ONNX_OPSET,
  buildModelObject,
  decodeModel,
  emitModel,
  neededNodes,
  saveModel,
} from './onnx-proto.js';
export type { EmitOptions, ModelObject, OutputsArg, SavedModel } from './onnx-proto.js';
export { OPSET17_OPS, assertModel, checkModel } from './check.js';
export { countFlops, nodeFlops } from './flops.js';

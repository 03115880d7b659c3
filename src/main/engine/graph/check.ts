// Checks that an emitted model is what every execution provider can load: default-domain ops of opset
// <= 17 only (no training-only or contrib kernels), unique node names (ORT refuses duplicates), every
// tensor defined once and before it is read.
//
// Public API
//   checkModel(bytes | ModelObject) -> string[]   the problems found (empty when the model is fine)
//   assertModel(bytes | ModelObject)              throws with all problems listed
//   OPSET17_OPS                                   the default-domain op types this check accepts

import { type ModelObject, ONNX_OPSET, decodeModel } from './onnx-proto.js';

/** Default-domain ops that exist at opset 17 (the ones an engine graph can plausibly use). */
export const OPSET17_OPS: ReadonlySet<string> = new Set(
  (
    'Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization BitShift ' +
    'BlackmanWindow Cast CastLike Ceil Celu Clip Compress Concat ConcatFromSequence Constant ConstantOfShape Conv ' +
    'ConvInteger ConvTranspose Cos Cosh CumSum DFT DepthToSpace DequantizeLinear Det Div Dropout ' +
    'DynamicQuantizeLinear Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor GRU Gather GatherElements ' +
    'GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample ' +
    'HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If InstanceNormalization IsInf IsNaN LRN ' +
    'LSTM LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LpNormalization LpPool MatMul ' +
    'MatMulInteger Max MaxPool MaxRoiPool MaxUnpool Mean MeanVarianceNormalization MelWeightMatrix Min Mod Mul ' +
    'Multinomial Neg NegativeLogLikelihoodLoss NonMaxSuppression NonZero Not OneHot Optional OptionalGetElement ' +
    'OptionalHasElement Or PRelu Pad Pow QLinearConv QLinearMatMul QuantizeLinear RNN RandomNormal ' +
    'RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ' +
    'ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ' +
    'ReverseSequence RoiAlign Round STFT Scan ScatterElements ScatterND Selu SequenceAt ' +
    'SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength SequenceMap Shape Shrink ' +
    'Sigmoid Sign Sin Sinh Size Slice Softmax SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth Split ' +
    'SplitToSequence Sqrt Squeeze StringNormalizer Sub Sum Tan Tanh TfIdfVectorizer ThresholdedRelu Tile TopK ' +
    'Transpose Trilu Unique Unsqueeze Where Xor'
  ).split(' '),
);

export function checkModel(model: Uint8Array | ModelObject): string[] {
  const m = model instanceof Uint8Array ? decodeModel(model) : model;
  const problems: string[] = [];
  const opsets = m.opset_import ?? [];
  const def = opsets.filter((o) => !o.domain || o.domain === 'ai.onnx');
  if (def.length !== 1) problems.push(`expected one default-domain opset import, found ${def.length}`);
  for (const o of opsets) {
    if (o.domain && o.domain !== 'ai.onnx') problems.push(`imports non-default domain '${o.domain}'`);
    else if (Number(o.version) > ONNX_OPSET) problems.push(`opset ${o.version} above ${ONNX_OPSET}`);
  }
  const g = m.graph;
  if (!g) return [...problems, 'model has no graph'];
  const defined = new Set<string>();
  const dup = (name: string, what: string) => {
    if (defined.has(name)) problems.push(`${what} '${name}' is defined twice`);
    defined.add(name);
  };
  for (const t of g.input ?? []) dup(t.name, 'input');
  for (const t of g.initializer ?? []) dup(t.name, 'initializer');
  const nodeNames = new Set<string>();
  for (const n of g.node ?? []) {
    const label = `node '${n.name ?? ''}' (${n.op_type})`;
    if (!n.name) problems.push(`${label} has no name`);
    else if (nodeNames.has(n.name)) problems.push(`node name '${n.name}' is used twice`);
    nodeNames.add(n.name ?? '');
    if (n.domain && n.domain !== 'ai.onnx') problems.push(`${label} is in domain '${n.domain}'`);
    else if (!OPSET17_OPS.has(n.op_type)) problems.push(`${label}: '${n.op_type}' is not a default-domain opset-17 op`);
    for (const x of n.input ?? []) {
      if (x !== '' && !defined.has(x)) problems.push(`${label} reads '${x}' before it is defined`);
    }
    for (const y of n.output ?? []) dup(y, `output of ${label}:`);
  }
  for (const o of g.output ?? []) if (!defined.has(o.name)) problems.push(`graph output '${o.name}' is never computed`);
  return problems;
}

export function assertModel(model: Uint8Array | ModelObject): void {
  const problems = checkModel(model);
  if (problems.length) throw new Error(`model check failed:\n  ${problems.join('\n  ')}`);
}

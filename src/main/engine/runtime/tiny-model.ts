// A few-field ONNX ModelProto writer for the runtime's own probe graphs and its tests, so the
// runtime does not depend on the graph emitter (which depends on nothing here either way).
// Field numbers follow onnx/onnx.proto (IR version 8, opset 17).
import protobuf from 'protobufjs';

/** ONNX TensorProto.DataType codes for the dtypes the runtime handles. */
export const ONNX_DTYPE = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float64: 11 } as const;
export type TinyDType = keyof typeof ONNX_DTYPE;

export interface TinyValue {
  name: string;
  dtype: TinyDType;
  dims: readonly number[];
}
export type TinyAttr = number | readonly number[] | string | { floats: readonly number[] } | { float: number };
export interface TinyNode {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attrs?: Record<string, TinyAttr>;
}
export interface TinyInitializer extends TinyValue {
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}
export interface TinyGraph {
  nodes: readonly TinyNode[];
  inputs: readonly TinyValue[];
  outputs: readonly TinyValue[];
  initializers?: readonly TinyInitializer[];
}

function valueInfo(w: protobuf.Writer, v: TinyValue): void {
  w.uint32((1 << 3) | 2).string(v.name);
  const shape = protobuf.Writer.create();
  for (const d of v.dims)
    shape
      .uint32((1 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 0)
      .int64(d)
      .ldelim();
  const tensor = protobuf.Writer.create();
  tensor.uint32((1 << 3) | 0).int32(ONNX_DTYPE[v.dtype]);
  tensor.uint32((2 << 3) | 2).bytes(shape.finish());
  const type = protobuf.Writer.create();
  type.uint32((1 << 3) | 2).bytes(tensor.finish());
  w.uint32((2 << 3) | 2).bytes(type.finish());
}

function attribute(w: protobuf.Writer, name: string, a: TinyAttr): void {
  w.uint32((1 << 3) | 2).string(name);
  // AttributeType: FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7.
  if (typeof a === 'number')
    w.uint32((3 << 3) | 0)
      .int64(a)
      .uint32((20 << 3) | 0)
      .int32(2);
  else if (typeof a === 'string')
    w.uint32((4 << 3) | 2)
      .bytes(new TextEncoder().encode(a))
      .uint32((20 << 3) | 0)
      .int32(3);
  else if ('float' in a)
    w.uint32((2 << 3) | 5)
      .float(a.float)
      .uint32((20 << 3) | 0)
      .int32(1);
  else if ('floats' in a) {
    for (const f of a.floats) w.uint32((7 << 3) | 5).float(f);
    w.uint32((20 << 3) | 0).int32(6);
  } else {
    for (const i of a as readonly number[]) w.uint32((8 << 3) | 0).int64(i);
    w.uint32((20 << 3) | 0).int32(7);
  }
}

/** Encodes a small graph as an ONNX model (default domain, opset 17). */
export function tinyModel(g: TinyGraph): Uint8Array {
  const graph = protobuf.Writer.create();
  g.nodes.forEach((n, k) => {
    const node = graph.uint32((1 << 3) | 2).fork();
    for (const i of n.inputs) node.uint32((1 << 3) | 2).string(i);
    for (const o of n.outputs) node.uint32((2 << 3) | 2).string(o);
    node.uint32((3 << 3) | 2).string(`${n.op}_${k}`);
    node.uint32((4 << 3) | 2).string(n.op);
    for (const [name, a] of Object.entries(n.attrs ?? {})) {
      attribute(node.uint32((5 << 3) | 2).fork(), name, a);
      node.ldelim();
    }
    graph.ldelim();
  });
  graph.uint32((2 << 3) | 2).string('tiny');
  for (const t of g.initializers ?? []) {
    const tw = graph.uint32((5 << 3) | 2).fork();
    for (const d of t.dims) tw.uint32((1 << 3) | 0).int64(d);
    tw.uint32((2 << 3) | 0).int32(ONNX_DTYPE[t.dtype]);
    tw.uint32((8 << 3) | 2).string(t.name);
    tw.uint32((9 << 3) | 2).bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    graph.ldelim();
  }
  for (const v of g.inputs) {
    valueInfo(graph.uint32((11 << 3) | 2).fork(), v);
    graph.ldelim();
  }
  for (const v of g.outputs) {
    valueInfo(graph.uint32((12 << 3) | 2).fork(), v);
    graph.ldelim();
  }
  const model = protobuf.Writer.create();
  model.uint32((1 << 3) | 0).int64(8); // ir_version
  model.uint32((2 << 3) | 2).string('foundation-studio');
  model.uint32((7 << 3) | 2).bytes(graph.finish());
  model
    .uint32((8 << 3) | 2)
    .fork()
    .uint32((2 << 3) | 0)
    .int64(17)
    .ldelim(); // opset_import: '' v17
  // Under Node protobufjs hands back a Buffer; callers get a plain Uint8Array.
  const bytes = model.finish();
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `z = x + y` over float32[n]: the probe graph for execution providers. */
export function addModel(n = 4): Uint8Array {
  const v = (name: string): TinyValue => ({ name, dtype: 'float32', dims: [n] });
  return tinyModel({
    nodes: [{ op: 'Add', inputs: ['x', 'y'], outputs: ['z'] }],
    inputs: [v('x'), v('y')],
    outputs: [v('z')],
  });
}

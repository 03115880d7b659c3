// ONNX serialisation: a protobufjs schema for the subset of onnx.proto the engine writes (field numbers
// from the ONNX spec), and the emitter that turns a Graph into a ModelProto (IR version 8, opset 17,
// default domain), keeping only the nodes the requested outputs need.
//
// Public API
//   emitModel(graph, opts) -> Uint8Array                       serialised ModelProto, weights inline, or with
//                                                              opts.sharedWeights those initializers that are
//                                                              the very tensors of a shared weights file
//                                                              (runtime/graph-cache.ts) as references into it
//   saveModel(graph, path, opts) -> Promise<SavedModel>        writes path; weights go to an external data file
//                                                              (path + '.data') when they total over 2 GB, or
//                                                              always with { externalData: true }
//   buildModelObject(graph, opts) -> ModelObject               the plain object before encoding
//   decodeModel(bytes) -> ModelObject                          for checks and tests (int64s as numbers)
//   ONNX_OPSET, ONNX_IR_VERSION, EmitOptions, OutputsArg
//
// Outputs are given as tensors or as { name: tensor }; a requested name that differs from the
// tensor's own (or an output that is an input or initializer) gets an Identity node so names stay unique.

import { mkdir, open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import protobuf from 'protobufjs';
import { dtypeCode } from './builder.js';
import { type Attr, type Graph, type HostTensor, type Node, Tensor } from './ir.js';

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;
const TWO_GB = 2 ** 31;

// Field numbers from onnx/onnx.proto (proto2).
const SCHEMA = `
syntax = "proto2";
package onnx;
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } optional string denotation = 3; }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
  optional string denotation = 6;
}
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; optional string doc_string = 3; }
message TensorProto {
  enum DataLocation { DEFAULT = 0; EXTERNAL = 1; }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional bytes raw_data = 9;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
  optional string doc_string = 12;
  repeated StringStringEntryProto external_data = 13;
  optional DataLocation data_location = 14;
}
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10; SPARSE_TENSOR = 11; SPARSE_TENSORS = 12; TYPE_PROTO = 13; TYPE_PROTOS = 14; }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional string ref_attr_name = 21;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
  optional string domain = 7;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
`;

const root = protobuf.parse(SCHEMA, { keepCase: true }).root;
const ModelProto = root.lookupType('onnx.ModelProto');

// ---- plain-object shapes of the messages (as protobufjs takes and gives them, keepCase) ----
export interface TensorProtoObject {
  name: string;
  dims: number[];
  data_type: number;
  raw_data?: Uint8Array;
  data_location?: number;
  external_data?: { key: string; value: string }[];
}
export interface AttributeObject {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProtoObject;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
}
export interface NodeObject {
  name: string;
  op_type: string;
  domain?: string;
  input: string[];
  output: string[];
  attribute?: AttributeObject[];
}
export interface ValueInfoObject {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: { dim_value?: number; dim_param?: string }[] } } };
}
export interface ModelObject {
  ir_version: number;
  producer_name?: string;
  producer_version?: string;
  opset_import: { domain?: string; version: number }[];
  graph: {
    name: string;
    node: NodeObject[];
    initializer?: TensorProtoObject[];
    input?: ValueInfoObject[];
    output?: ValueInfoObject[];
  };
  metadata_props?: { key: string; value: string }[];
}

export type OutputsArg = readonly Tensor[] | Readonly<Record<string, Tensor>>;

export interface EmitOptions {
  outputs: OutputsArg;
  /** Graph name in the model; default the Graph's name. */
  name?: string;
  /** Keep graph inputs that no output needs (default true: a model's feeds stay the same whatever its outputs). */
  keepUnusedInputs?: boolean;
  metadata?: Record<string, string>;
  /** Weights files written beside the model (graph-cache.ts): initializers found in them are not inlined. */
  sharedWeights?: ExternalWeights;
  /**
   * Named dims of graph inputs and outputs (by name; null keeps a dim fixed), for a model that other runtimes
   * feed with shapes of their choosing (a causal LM for transformers.js: 'batch_size', 'sequence_length'). The
   * graph must then be built from shape-agnostic ops (Reshape with 0 / -1, shapes read at run time): the
   * builder's static shapes are only what it checked the graph with.
   */
  dynamicDims?: Readonly<Record<string, readonly (string | null)[]>>;
}

/** Where each tensor of the shared weights files lies, for initializers that reference them instead of holding bytes. */
export interface ExternalWeights {
  /** The tensors written into the files, by name: an initializer is externalised only when it IS this tensor. */
  tensors: ReadonlyMap<string, HostTensor>;
  /**
   * Each tensor's file (relative to the model file's folder: ORT refuses absolute paths and '..') and its
   * byte range there.
   */
  ranges: ReadonlyMap<string, { location: string; offset: number; length: number }>;
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7, strings: 8 } as const;
const utf8 = new TextEncoder();

function hostBytes(v: HostTensor): Uint8Array {
  if (v.dtype === 'bool' || v.dtype === 'uint8')
    return new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength);
  // Typed arrays are little-endian on every platform Node supports, as raw_data requires.
  return new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength);
}

function tensorProto(name: string, v: HostTensor): TensorProtoObject {
  return { name, dims: [...v.dims], data_type: dtypeCode(v.dtype), raw_data: hostBytes(v) };
}

function externalProto(name: string, v: HostTensor, location: string, offset: number, length: number) {
  return {
    name,
    dims: [...v.dims],
    data_type: dtypeCode(v.dtype),
    data_location: 1,
    external_data: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
  } satisfies TensorProtoObject;
}

/** The initializer as a reference into the shared weights file when it is one of that file's tensors. */
function initializerProto(name: string, v: HostTensor, ext: ExternalWeights | undefined): TensorProtoObject {
  const range = ext && ext.tensors.get(name) === v ? ext.ranges.get(name) : undefined;
  if (!ext || !range || range.length !== v.data.byteLength) return tensorProto(name, v);
  return externalProto(name, v, range.location, range.offset, range.length);
}

function attrObject(name: string, a: Attr): AttributeObject {
  const type = ATTR_TYPE[a.type];
  switch (a.type) {
    case 'float':
      return { name, type, f: a.value };
    case 'int':
      return { name, type, i: a.value };
    case 'string':
      return { name, type, s: utf8.encode(a.value) };
    case 'floats':
      return { name, type, floats: [...a.value] };
    case 'ints':
      return { name, type, ints: [...a.value] };
    case 'strings':
      return { name, type, strings: a.value.map((s) => utf8.encode(s)) };
    case 'tensor':
      return { name, type, t: tensorProto('', a.value) };
  }
}

function valueInfo(name: string, t: Tensor, symbolic?: readonly (string | null)[]): ValueInfoObject {
  if (symbolic && symbolic.length !== t.rank) {
    throw new Error(`emitModel: ${symbolic.length} symbolic dims given for '${name}' of rank ${t.rank}`);
  }
  const dim = t.shape.map((d, i) => (symbolic?.[i] ? { dim_param: symbolic[i]! } : { dim_value: d }));
  return { name, type: { tensor_type: { elem_type: dtypeCode(t.dtype), shape: { dim } } } };
}

function nodeObject(n: Node): NodeObject {
  return {
    name: n.name,
    op_type: n.opType,
    domain: '',
    input: n.inputs.map((t) => (t ? t.name : '')),
    output: n.outputs.map((t) => t.name),
    attribute: Object.entries(n.attrs).map(([k, a]) => attrObject(k, a)),
  };
}

function normaliseOutputs(outputs: OutputsArg): [string, Tensor][] {
  if (Array.isArray(outputs)) return (outputs as readonly Tensor[]).map((t) => [t.name, t]);
  return Object.entries(outputs as Record<string, Tensor>);
}

/** The nodes needed for `outputs`, in graph (topological) order. */
export function neededNodes(graph: Graph, outputs: readonly Tensor[]): Node[] {
  const need = new Set<Node>();
  const stack = [...outputs];
  while (stack.length) {
    const t = stack.pop()!;
    const p = t.producer;
    if (!p || need.has(p)) continue;
    need.add(p);
    for (const x of p.inputs) if (x) stack.push(x);
  }
  return graph.nodes.filter((n) => need.has(n));
}

interface Built {
  model: ModelObject;
  inits: [Tensor, HostTensor][];
}

function build(graph: Graph, opts: EmitOptions): Built {
  const outs = normaliseOutputs(opts.outputs);
  if (outs.length === 0) throw new Error('emitModel: no outputs');
  for (const [, t] of outs) {
    if (!(t instanceof Tensor) || t.graph !== graph)
      throw new Error('emitModel: outputs must be tensors of this graph');
  }
  const nodes = neededNodes(
    graph,
    outs.map(([, t]) => t),
  );
  const used = new Set<Tensor>();
  for (const n of nodes) for (const x of n.inputs) if (x) used.add(x);
  for (const [, t] of outs) used.add(t);

  const nodeObjs = nodes.map(nodeObject);
  const taken = new Set<string>();
  const outputInfos: ValueInfoObject[] = [];
  const seen = new Set<string>();
  let aliasCount = 0;
  for (const [name, t] of outs) {
    if (seen.has(name)) throw new Error(`emitModel: output name '${name}' given twice`);
    seen.add(name);
    const direct = name === t.name && t.kind === 'node' && !taken.has(t.name);
    if (name === t.name && t.kind !== 'node') {
      throw new Error(`emitModel: output '${name}' is the ${t.kind} itself; give the output another name`);
    }
    if (!direct) {
      if (name !== t.name && graph.hasName(name)) {
        throw new Error(`emitModel: output name '${name}' is already a tensor or node name in the graph`);
      }
      let nodeName = `output_alias_${aliasCount++}`;
      while (graph.hasName(nodeName)) nodeName = `output_alias_${aliasCount++}`;
      nodeObjs.push({ name: nodeName, op_type: 'Identity', domain: '', input: [t.name], output: [name] });
    }
    taken.add(t.name);
    outputInfos.push(valueInfo(name, t, opts.dynamicDims?.[name]));
  }

  const keep = opts.keepUnusedInputs ?? true;
  const inputs = graph.inputs.filter((t) => keep || used.has(t));
  const inits = [...graph.initializers.entries()].filter(([t]) => used.has(t));
  const model: ModelObject = {
    ir_version: ONNX_IR_VERSION,
    producer_name: 'foundation-studio',
    producer_version: '0.1.0',
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    graph: {
      name: opts.name ?? graph.name,
      node: nodeObjs,
      initializer: inits.map(([t, v]) => initializerProto(t.name, v, opts.sharedWeights)),
      input: inputs.map((t) => valueInfo(t.name, t, opts.dynamicDims?.[t.name])),
      output: outputInfos,
    },
    metadata_props: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  return { model, inits };
}

export function buildModelObject(graph: Graph, opts: EmitOptions): ModelObject {
  return build(graph, opts).model;
}

function encode(model: ModelObject): Uint8Array {
  const err = ModelProto.verify(model);
  if (err) throw new Error(`emitModel: invalid ModelProto: ${err}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

/** Serialises the part of `graph` that `opts.outputs` need into an in-memory ModelProto. */
export function emitModel(graph: Graph, opts: EmitOptions): Uint8Array {
  const { model, inits } = build(graph, opts);
  const inline = model.graph.initializer ?? [];
  const bytes = inits.reduce((s, [, v], k) => s + (inline[k]!.raw_data ? v.data.byteLength : 0), 0);
  if (bytes >= TWO_GB) {
    throw new Error(`emitModel: ${bytes} bytes of weights exceed protobuf's 2 GB; use saveModel (external data)`);
  }
  return encode(model);
}

export interface SavedModel {
  path: string;
  /** The external data file, when one was written. */
  dataPath: string | null;
  bytes: number;
}

/**
 * Writes the model to `path`. When the weights total 2 GB or more (or `externalData` is true) every
 * initializer's bytes go to `path + '.data'` (64-byte aligned) and the TensorProtos point at it.
 */
export async function saveModel(
  graph: Graph,
  path: string,
  opts: EmitOptions & { externalData?: boolean },
): Promise<SavedModel> {
  const { model, inits } = build(graph, opts);
  const total = inits.reduce((s, [, v]) => s + v.data.byteLength, 0);
  await mkdir(dirname(path), { recursive: true });
  let dataPath: string | null = null;
  if (opts.externalData || total >= TWO_GB) {
    dataPath = `${path}.data`;
    const location = basename(dataPath);
    const fh = await open(dataPath, 'w');
    try {
      let offset = 0;
      const protos = model.graph.initializer ?? [];
      for (let k = 0; k < inits.length; k++) {
        const [, v] = inits[k]!;
        offset = Math.ceil(offset / 64) * 64;
        const data = hostBytes(v);
        await fh.write(data, 0, data.length, offset);
        protos[k] = externalProto(protos[k]!.name, v, location, offset, data.length);
        offset += data.length;
      }
    } finally {
      await fh.close();
    }
  }
  const bytes = encode(model);
  const fh = await open(path, 'w');
  try {
    await fh.write(bytes);
  } finally {
    await fh.close();
  }
  return { path, dataPath, bytes: bytes.length };
}

/** Decodes a ModelProto into plain objects (int64 as numbers, bytes as Uint8Array). */
export function decodeModel(bytes: Uint8Array): ModelObject {
  const msg = ModelProto.decode(bytes);
  return ModelProto.toObject(msg, { longs: Number, bytes: Uint8Array, defaults: false, arrays: true }) as ModelObject;
}

// The tensor graph IR: tensors with static shapes and dtypes, nodes that are ONNX ops with
// attributes, and a graph that owns both and hands out unique names.
//
// Public API
//   DType, HostTensor, TensorData      dtypes and host-side tensor data (same shape as runtime.ts's)
//   Attr                               a typed ONNX attribute value (int/float/string/ints/floats/strings/tensor)
//   Tensor                             a value in the graph: name, dtype, static shape, producer node or null
//   Node                               one ONNX op: opType, inputs (null = omitted optional input), outputs, attrs
//   Marker                             stopGradient / straightThrough / fused annotations read by grad.ts
//   Graph                              nodes in topological (creation) order, inputs, initializers, unique names
//   isFloat(dtype), bytesPerElement(dtype), sizeOf(shape), allocData(dtype, n)
//
// Nodes are appended as they are built, so creation order is a topological order: a node can only
// read tensors that already exist. Model code normally uses the Builder (builder.ts), not Graph.

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8';
export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** Host-side tensor data: what runtime.ts feeds to and reads from a session. */
export interface HostTensor {
  dtype: DType;
  dims: readonly number[];
  data: TensorData;
}

export type Attr =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: readonly number[] }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'strings'; value: readonly string[] }
  | { type: 'tensor'; value: HostTensor };

/**
 * Annotations grad.ts reads on a node:
 *   stopGradient      nothing flows back into the node's input
 *   straightThrough   forward: the input's value; backward: the gradient goes to `backward`
 *   fused             the node is the output of a composite (SiLU, GroupNorm, ...) built from several ops: grad.ts
 *                     differentiates the whole composite with the rule RULES[op] (from `inputs` to the node's
 *                     output, reusing the forward tensors in `saved`) instead of op by op through its parts
 */
export type Marker =
  | { kind: 'stopGradient' }
  | { kind: 'straightThrough'; backward: Tensor }
  | {
      kind: 'fused';
      op: string;
      inputs: readonly Tensor[];
      saved?: readonly Tensor[];
      attrs?: Readonly<Record<string, number>>;
    };

export type TensorKind = 'input' | 'initializer' | 'node';

export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly kind: TensorKind,
    /** The node computing this tensor (null for graph inputs and initializers). */
    readonly producer: Node | null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  get size(): number {
    return sizeOf(this.shape);
  }

  toString(): string {
    return `${this.name}: ${this.dtype}[${this.shape.join(', ')}]`;
  }
}

export interface Node {
  readonly name: string;
  readonly opType: string;
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  readonly attrs: Readonly<Record<string, Attr>>;
  readonly marker?: Marker;
  /** Position in graph.nodes (creation order). */
  readonly index: number;
}

export interface OutputSpec {
  name: string;
  dtype: DType;
  shape: readonly number[];
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Tensor[] = [];
  readonly initializers = new Map<Tensor, HostTensor>();
  private readonly used = new Set<string>();
  private readonly counters = new Map<string, number>();

  constructor(readonly name = 'graph') {}

  /** A fresh name derived from base; never returns a name already taken in this graph. */
  uniqueName(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_./:-]/g, '_') || 't';
    if (!this.used.has(clean)) {
      this.used.add(clean);
      return clean;
    }
    let n = this.counters.get(clean) ?? 1;
    while (this.used.has(`${clean}_${n}`)) n++;
    this.counters.set(clean, n + 1);
    const name = `${clean}_${n}`;
    this.used.add(name);
    return name;
  }

  /** Reserves an exact name (graph inputs, parameters); throws if it is taken. */
  reserveName(name: string): string {
    if (!name) throw new Error('empty tensor name');
    if (this.used.has(name)) throw new Error(`name '${name}' is already used in graph '${this.name}'`);
    this.used.add(name);
    return name;
  }

  hasName(name: string): boolean {
    return this.used.has(name);
  }

  addInput(name: string, dtype: DType, shape: readonly number[]): Tensor {
    checkShape(shape, name);
    const t = new Tensor(this, this.reserveName(name), dtype, [...shape], 'input', null);
    this.inputs.push(t);
    return t;
  }

  /** Adds an initializer; `name` is used exactly when `exact`, else made unique. */
  addInitializer(name: string, value: HostTensor, exact = false): Tensor {
    checkShape(value.dims, name);
    if (value.data.length !== sizeOf(value.dims)) {
      throw new Error(`initializer '${name}': ${value.data.length} values for shape [${value.dims.join(', ')}]`);
    }
    const t = new Tensor(
      this,
      exact ? this.reserveName(name) : this.uniqueName(name),
      value.dtype,
      [...value.dims],
      'initializer',
      null,
    );
    this.initializers.set(t, value);
    return t;
  }

  /** Appends a node whose output specs were inferred by the caller; returns the output tensors. */
  addNode(
    opType: string,
    inputs: readonly (Tensor | null)[],
    outputs: readonly OutputSpec[],
    attrs: Record<string, Attr> = {},
    marker?: Marker,
  ): Tensor[] {
    for (const t of inputs) {
      if (t && t.graph !== this) throw new Error(`${opType}: input ${t.name} belongs to another graph`);
    }
    const outs: Tensor[] = [];
    const node: Node = {
      name: this.uniqueName(`${opType}`),
      opType,
      inputs: [...inputs],
      outputs: outs,
      attrs,
      index: this.nodes.length,
      ...(marker ? { marker } : {}),
    };
    for (const o of outputs) {
      checkShape(o.shape, `${opType} output`);
      outs.push(new Tensor(this, this.uniqueName(o.name), o.dtype, [...o.shape], 'node', node));
    }
    this.nodes.push(node);
    return outs;
  }
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case 'float64':
    case 'int64':
      return 8;
    case 'float32':
    case 'int32':
      return 4;
    case 'bool':
    case 'uint8':
      return 1;
  }
}

export function allocData(dtype: DType, n: number): TensorData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'bool':
    case 'uint8':
      return new Uint8Array(n);
  }
}

function checkShape(shape: readonly number[], what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${what}: bad static shape [${shape.join(', ')}]`);
  }
}

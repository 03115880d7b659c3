// Tensors as the weight files hold them: a dtype (safetensors' names), a shape, and the raw
// little-endian bytes, row-major and contiguous. Conversion to Float32Array is on request.

/**
 * The storage dtype of a tensor in a checkpoint file, by safetensors' names. Not the graph's `DType`
 * (graph/ir.ts: 'float32', 'int64', ...), which is the dtype a tensor has during computation.
 */
export type WeightDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** Bytes per element of each weight dtype. */
export const WEIGHT_DTYPE_SIZE: Readonly<Record<WeightDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export function isWeightDType(s: unknown): s is WeightDType {
  return typeof s === 'string' && Object.hasOwn(WEIGHT_DTYPE_SIZE, s);
}

/** One tensor of a state dict. `data` is exactly numel * itemsize bytes, little-endian, row-major. */
export interface WeightTensor {
  dtype: WeightDType;
  shape: number[];
  data: Uint8Array;
}

/** A weight name with its dtype and shape, known before any data is read. */
export interface TensorInfo {
  dtype: WeightDType;
  shape: number[];
}

export type StateDict = Map<string, WeightTensor>;

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Throws unless every dimension is a non-negative integer and the element count is a safe integer. */
export function checkShape(shape: readonly unknown[], what: string): number[] {
  const out: number[] = [];
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new Error(`${what}: invalid dimension ${String(d)} in shape [${shape.map(String).join(', ')}]`);
    }
    out.push(d);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new Error(`${what}: shape [${out.join(', ')}] has too many elements`);
  return out;
}

// Every half-precision bit pattern, decoded once (256 KiB): a table lookup is faster than bit twiddling.
let f16Table: Float32Array | undefined;
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return (f16Table = t);
}

/** Decodes IEEE half-precision values (as raw 16-bit patterns) to float32. */
export function halfToFloat32(bits: Uint16Array): Float32Array {
  const t = halfTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  return out;
}

/** bfloat16 is the top half of a float32: shifting it back is exact. */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16;
  return new Float32Array(out.buffer);
}

/** A typed view of `bytes` when it is aligned for `size`-byte elements, else of an aligned copy. */
function aligned(bytes: Uint8Array, size: number): ArrayBuffer {
  if (bytes.byteOffset % size === 0 && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  return bytes.slice().buffer as ArrayBuffer;
}

function view<T>(bytes: Uint8Array, size: number, make: (b: ArrayBuffer, off: number, n: number) => T): T {
  const buf = aligned(bytes, size);
  const off = buf === bytes.buffer ? bytes.byteOffset : 0;
  return make(buf, off, bytes.byteLength / size);
}

/**
 * The tensor's values as float32. F32 data that is suitably aligned is returned as a view (no copy);
 * every other dtype is converted (F64 and I64 lose precision beyond float32's 24-bit mantissa).
 */
export function toFloat32(t: WeightTensor): Float32Array {
  const b = t.data;
  switch (t.dtype) {
    case 'F32':
      return view(b, 4, (buf, o, n) => new Float32Array(buf, o, n));
    case 'F16':
      return halfToFloat32(view(b, 2, (buf, o, n) => new Uint16Array(buf, o, n)));
    case 'BF16':
      return bfloat16ToFloat32(view(b, 2, (buf, o, n) => new Uint16Array(buf, o, n)));
    case 'F64':
      return Float32Array.from(view(b, 8, (buf, o, n) => new Float64Array(buf, o, n)));
    case 'I64': {
      const v = view(b, 8, (buf, o, n) => new BigInt64Array(buf, o, n));
      const out = new Float32Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = Number(v[i]!);
      return out;
    }
    case 'I32':
      return Float32Array.from(view(b, 4, (buf, o, n) => new Int32Array(buf, o, n)));
    case 'I16':
      return Float32Array.from(view(b, 2, (buf, o, n) => new Int16Array(buf, o, n)));
    case 'I8':
      return Float32Array.from(new Int8Array(b.buffer, b.byteOffset, b.byteLength));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(b);
  }
}

/** The tensor's values as a typed array of its own dtype (F16/BF16 as raw Uint16 bit patterns). */
export function typedArrayOf(
  t: WeightTensor,
): Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array {
  const b = t.data;
  switch (t.dtype) {
    case 'F64':
      return view(b, 8, (buf, o, n) => new Float64Array(buf, o, n));
    case 'F32':
      return view(b, 4, (buf, o, n) => new Float32Array(buf, o, n));
    case 'F16':
    case 'BF16':
      return view(b, 2, (buf, o, n) => new Uint16Array(buf, o, n));
    case 'I64':
      return view(b, 8, (buf, o, n) => new BigInt64Array(buf, o, n));
    case 'I32':
      return view(b, 4, (buf, o, n) => new Int32Array(buf, o, n));
    case 'I16':
      return view(b, 2, (buf, o, n) => new Int16Array(buf, o, n));
    case 'I8':
      return new Int8Array(b.buffer, b.byteOffset, b.byteLength);
    case 'U8':
    case 'BOOL':
      return b;
  }
}

/** A contiguous F32 copy of `t` (the same object when it already is F32). */
export function asFloat32Tensor(t: WeightTensor): WeightTensor {
  if (t.dtype === 'F32') return t;
  const f = toFloat32(t);
  return { dtype: 'F32', shape: t.shape, data: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) };
}

export interface ReadOptions {
  /** Convert the tensor to F32 (F16/BF16 exactly; F64/I64 rounded). */
  float32?: boolean;
}

/**
 * A checkpoint opened for lazy reading: names, dtypes and shapes are known up front, the bytes of a
 * tensor are read from the file when asked for, so a 600 MB file is never held twice in memory.
 */
export interface WeightSource {
  readonly format: 'safetensors' | 'torch-zip';
  readonly path: string;
  /** safetensors' `__metadata__`, or for torch files a few facts about the archive. */
  readonly metadata: Readonly<Record<string, string>>;
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  read(name: string, opts?: ReadOptions): Promise<WeightTensor>;
  close(): Promise<void>;
}

/** Row-major contiguity; dimensions of size 1 may carry any stride. */
export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] === 1) continue;
    if (stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/** Copies a strided view (offset 0 in `src`) into contiguous row-major bytes. */
export function gather(src: Uint8Array, shape: readonly number[], stride: readonly number[], size: number): Uint8Array {
  const n = numelOf(shape);
  const out = new Uint8Array(n * size);
  const nd = shape.length;
  if (n === 0) return out;
  if (nd === 0) {
    out.set(src.subarray(0, size));
    return out;
  }
  const inner = shape[nd - 1]!;
  const innerStride = stride[nd - 1]!;
  const idx = new Array<number>(nd - 1).fill(0);
  let o = 0;
  for (;;) {
    let base = 0;
    for (let d = 0; d < nd - 1; d++) base += idx[d]! * stride[d]!;
    if (innerStride === 1) {
      out.set(src.subarray(base * size, (base + inner) * size), o);
      o += inner * size;
    } else {
      for (let j = 0; j < inner; j++) {
        const s = (base + j * innerStride) * size;
        for (let b = 0; b < size; b++) out[o++] = src[s + b]!;
      }
    }
    let d = nd - 2;
    while (d >= 0) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
      d--;
    }
    if (d < 0) break;
  }
  return out;
}

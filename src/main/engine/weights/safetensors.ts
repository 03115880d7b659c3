// safetensors (https://github.com/huggingface/safetensors#format): an 8-byte little-endian header
// length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {k: v}}`
// (space-padded), then the tensors' bytes, offsets relative to the end of the header.
// Validation follows the reference implementation: header size bounded, offsets contiguous from 0
// with no gaps or overlaps, each tensor's byte length equal to numel * itemsize, and the last offset
// equal to the data size.
import { type FileHandle, open } from 'node:fs/promises';
import { readExactly, writeAll, writeAtomically } from './file-io.js';
import {
  asFloat32Tensor,
  checkShape,
  WEIGHT_DTYPE_SIZE,
  isWeightDType,
  numelOf,
  type ReadOptions,
  type StateDict,
  type TensorInfo,
  type WeightSource,
  type WeightTensor,
} from './tensor.js';

/** The reference implementation's bound on the JSON header. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry extends TensorInfo {
  /** Byte range relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/** Parses and validates a header against the size of the data section that follows it. */
export function parseSafetensorsHeader(json: Uint8Array, dataSize: number, what = 'safetensors'): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw new Error(`${what}: header is not valid UTF-8`);
  }
  if (!text.startsWith('{')) throw new Error(`${what}: header does not start with '{' (not a safetensors file?)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${what}: header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${what}: header is not a JSON object`);
  }
  const metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new Error(`${what}: __metadata__ is not an object`);
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new Error(`${what}: __metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof e !== 'object' || e === null) throw new Error(`${what}: entry '${name}' is not an object`);
    if (!isWeightDType(e.dtype))
      throw new Error(`${what}: tensor '${name}' has unsupported dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape)) throw new Error(`${what}: tensor '${name}' has no shape array`);
    const shape = checkShape(e.shape, `${what}: tensor '${name}'`);
    const off = e.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)
    ) {
      throw new Error(`${what}: tensor '${name}' has invalid data_offsets ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as [number, number];
    const want = numelOf(shape) * WEIGHT_DTYPE_SIZE[e.dtype];
    if (end < begin || end - begin !== want) {
      throw new Error(
        `${what}: tensor '${name}' (${e.dtype} [${shape.join(', ')}]) needs ${want} bytes but data_offsets ` +
          `[${begin}, ${end}] span ${end - begin}`,
      );
    }
    entries.set(name, { dtype: e.dtype, shape, begin, end });
  }
  // Offsets must tile [0, dataSize) exactly.
  const sorted = [...entries.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = 0;
  for (const [name, e] of sorted) {
    if (e.begin !== cursor) {
      throw new Error(
        `${what}: tensor '${name}' starts at byte ${e.begin} of the data but the previous one ends at ${cursor}` +
          (e.begin < cursor ? ' (overlapping tensors)' : ' (gap between tensors)'),
      );
    }
    cursor = e.end;
  }
  if (cursor > dataSize) {
    throw new Error(
      `${what}: file is truncated: the header describes ${cursor} bytes of data, the file holds ${dataSize}`,
    );
  }
  if (cursor < dataSize) {
    throw new Error(`${what}: ${dataSize - cursor} unexpected bytes after the last tensor`);
  }
  return { entries, metadata };
}

/** A safetensors file opened for lazy reading; `read()` fetches one tensor's bytes from disk. */
export class SafetensorsReader implements WeightSource {
  readonly format = 'safetensors' as const;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly dataStart: number,
    private readonly header: SafetensorsHeader,
  ) {}

  static async open(file: string): Promise<SafetensorsReader> {
    const fh = await open(file, 'r');
    try {
      const size = (await fh.stat()).size;
      if (size < 8) throw new Error(`${file}: file is truncated (${size} bytes; a safetensors file has at least 8)`);
      const n = (await readExactly(fh, 0, 8, file)).readBigUInt64LE(0);
      if (n > BigInt(MAX_HEADER_BYTES)) {
        throw new Error(
          `${file}: safetensors header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt file?)`,
        );
      }
      const headerLen = Number(n);
      if (8 + headerLen > size) {
        throw new Error(`${file}: file is truncated: header length ${headerLen} but only ${size - 8} bytes follow`);
      }
      const json = await readExactly(fh, 8, headerLen, file);
      const header = parseSafetensorsHeader(json, size - 8 - headerLen, file);
      return new SafetensorsReader(file, fh, 8 + headerLen, header);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  get metadata(): Readonly<Record<string, string>> {
    return this.header.metadata;
  }

  names(): string[] {
    return [...this.header.entries.keys()];
  }

  has(name: string): boolean {
    return this.header.entries.has(name);
  }

  info(name: string): TensorInfo {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: [...e.shape] };
  }

  async read(name: string, opts: ReadOptions = {}): Promise<WeightTensor> {
    const e = this.entry(name);
    const data = await readExactly(
      this.fh,
      this.dataStart + e.begin,
      e.end - e.begin,
      `${this.path}: tensor '${name}'`,
    );
    const t: WeightTensor = {
      dtype: e.dtype,
      shape: [...e.shape],
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
    return opts.float32 ? asFloat32Tensor(t) : t;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  private entry(name: string): SafetensorsEntry {
    const e = this.header.entries.get(name);
    if (!e) throw new Error(`${this.path}: no tensor named '${name}'`);
    return e;
  }
}

/** Reads every tensor of a safetensors file. */
export async function readSafetensors(file: string, opts: ReadOptions = {}): Promise<StateDict> {
  const r = await SafetensorsReader.open(file);
  try {
    const out: StateDict = new Map();
    for (const name of r.names()) out.set(name, await r.read(name, opts));
    return out;
  } finally {
    await r.close();
  }
}

/** What the writer needs: a state dict in memory, or a lazy source (tensors are then read as they are written). */
export type TensorSource = StateDict | Pick<WeightSource, 'names' | 'info' | 'read'>;

/**
 * Writes a safetensors file atomically. Tensors are laid out by decreasing element size, then by name
 * (as the reference writer does), after a header padded to 8 bytes, so every tensor's data starts at
 * an offset aligned to its element size. A lazy source is streamed: at most two tensors are in memory
 * (the one being written and the next, read meanwhile).
 */
export async function writeSafetensors(
  file: string,
  tensors: TensorSource,
  metadata: Record<string, string> = {},
): Promise<void> {
  const src = tensors instanceof Map ? mapSource(tensors) : tensors;
  const names = src.names().sort((a, b) => {
    const sa = WEIGHT_DTYPE_SIZE[src.info(a).dtype];
    const sb = WEIGHT_DTYPE_SIZE[src.info(b).dtype];
    return sb - sa || (a < b ? -1 : a > b ? 1 : 0);
  });
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const infos = new Map<string, TensorInfo>();
  for (const name of names) {
    if (name === '__metadata__') throw new Error(`safetensors: a tensor cannot be named __metadata__`);
    const info = src.info(name);
    const shape = checkShape(info.shape, `safetensors: tensor '${name}'`);
    const bytes = numelOf(shape) * WEIGHT_DTYPE_SIZE[info.dtype];
    header[name] = { dtype: info.dtype, shape, data_offsets: [offset, offset + bytes] };
    infos.set(name, info);
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));

  await writeAtomically(file, async (fh) => {
    await writeAll(fh, prefix);
    await writeAll(fh, json);
    // The next tensor is read while this one is written: at most two tensors are in memory.
    const start = (i: number) => {
      if (i >= names.length) return null;
      const p = src.read(names[i]!);
      p.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
      return p;
    };
    let pending = start(0);
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const t = await pending!;
      pending = start(i + 1);
      const info = infos.get(name)!;
      const want = numelOf(info.shape) * WEIGHT_DTYPE_SIZE[info.dtype];
      if (t.dtype !== info.dtype || t.data.byteLength !== want) {
        throw new Error(
          `safetensors: tensor '${name}' is ${t.dtype} with ${t.data.byteLength} bytes, expected ${info.dtype} with ${want}`,
        );
      }
      await writeAll(fh, t.data);
    }
  });
}

function mapSource(m: StateDict): Pick<WeightSource, 'names' | 'info' | 'read'> {
  return {
    names: () => [...m.keys()],
    info: (name) => {
      const t = m.get(name)!;
      return { dtype: t.dtype, shape: t.shape };
    },
    read: (name) => Promise.resolve(m.get(name)!),
  };
}

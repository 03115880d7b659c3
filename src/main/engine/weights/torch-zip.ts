// torch's checkpoint format (torch.save since 1.6, used by `.ckpt`, `.pt` and `pytorch_model.bin`):
// an uncompressed zip whose entries sit under one folder whose name varies (`archive/`, or the file's
// stem such as `pytorch_model/`):
//   <folder>/data.pkl        the pickled object; tensors are persistent ids
//                            ('storage', torch.FloatStorage, '<key>', 'cpu', numel)
//   <folder>/data/<key>      each storage's raw bytes (little-endian, see <folder>/byteorder)
//   <folder>/version         format version
// TorchScript archives (torch.jit.save) have the same layout plus code/ and constants.pkl; their
// tensors are collected from the pickled module tree (the code is never looked at).
// The zip's central directory is read here directly (with zip64), so a tensor's bytes are read
// straight from their range in the file and never the whole archive at once.
import { type FileHandle, open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, createInflateRaw, inflateRawSync } from 'node:zlib';
import { readExactly, readInto } from './file-io.js';
import {
  DangerousGlobalError,
  describe,
  PickleError,
  PyObject,
  type PyValue,
  StorageType,
  type StorageRef,
  PickledTensor,
  unpickle,
  UnsupportedTensor,
} from './torch-pickle.js';
import {
  asFloat32Tensor,
  WEIGHT_DTYPE_SIZE,
  gather,
  isContiguous,
  numelOf,
  type ReadOptions,
  type TensorInfo,
  type WeightSource,
  type WeightTensor,
} from './tensor.js';

// ---------------------------------------------------------------------------------------------
// Zip central directory

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  crc: number;
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CDH_SIG = 0x02014b50;
const LFH_SIG = 0x04034b50;
/** A central directory larger than this is not a checkpoint (a big model has a few thousand entries). */
const MAX_CENTRAL_DIRECTORY = 64 << 20;
/** Node's largest Buffer. */
const MAX_TENSOR_BYTES = 2 ** 32;
/** Inflating work allowed on top of twice the checkpoint's tensor and deflated-storage bytes. */
const INFLATE_WORK_SLACK = 64 << 20;
/** Compressed bytes read from the file at a time while a deflated entry is inflated. */
const INFLATE_READ_CHUNK = 1 << 20;

export class ZipReader {
  private dataStarts = new Map<string, number>();

  private constructor(
    readonly path: string,
    readonly fh: FileHandle,
    readonly size: number,
    readonly entries: Map<string, ZipEntry>,
  ) {}

  static async open(file: string): Promise<ZipReader> {
    const fh = await open(file, 'r');
    try {
      const size = (await fh.stat()).size;
      const entries = await readCentralDirectory(fh, size, file);
      return new ZipReader(file, fh, size, entries);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  entry(name: string): ZipEntry | undefined {
    return this.entries.get(name);
  }

  /** Reads `length` bytes at `offset` of an entry's uncompressed content. */
  async read(name: string, offset = 0, length?: number, opts: { verifyCrc?: boolean } = {}): Promise<Uint8Array> {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.path}: zip has no entry '${name}'`);
    const len = length ?? e.size - offset;
    if (offset < 0 || len < 0 || offset + len > e.size) {
      throw new Error(`${this.path}: range [${offset}, ${offset + len}) is outside entry '${name}' (${e.size} bytes)`);
    }
    if (e.method === 0) {
      const buf =
        this.dataStarts.has(e.name) || offset > 0
          ? await readExactly(this.fh, (await this.dataStart(e)) + offset, len, `${this.path}: entry '${name}'`)
          : await this.readWithHeader(e, len);
      const whole = offset === 0 && len === e.size;
      if (whole && opts.verifyCrc && crc32(buf) >>> 0 !== e.crc) {
        throw new Error(`${this.path}: entry '${name}' fails its CRC-32 check (corrupt file)`);
      }
      return buf;
    }
    const start = await this.dataStart(e);
    if (e.method === 8) return this.inflateRange(e, start, offset, len, opts.verifyCrc ?? false);
    throw new Error(`${this.path}: entry '${name}' uses zip compression method ${e.method}, which is not supported`);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  /**
   * `len` bytes at `offset` of a deflated entry (torch never compresses, but a re-zipped checkpoint
   * may be deflated). The entry is streamed through the inflater and only the asked-for range is
   * kept, so a read holds `len` bytes however large the entry claims to be; inflating stops at the
   * end of the range (or goes on to the end to check the CRC), and output beyond the entry's
   * declared size is refused as it arrives.
   */
  private async inflateRange(e: ZipEntry, start: number, offset: number, len: number, verifyCrc: boolean) {
    const what = `${this.path}: entry '${e.name}'`;
    // Small entries (data.pkl, version, byteorder) in one call, capped at their declared size.
    if (e.size <= 1 << 20 && e.compressedSize <= 1 << 20) {
      const raw = await readExactly(this.fh, start, e.compressedSize, what);
      let out: Buffer;
      try {
        out = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
      } catch (err) {
        throw new Error(`${what} does not inflate to its declared ${e.size} bytes (${(err as Error).message})`);
      }
      if (out.length !== e.size) throw new Error(`${what} inflates to ${out.length} bytes, not ${e.size}`);
      if (verifyCrc && crc32(out) >>> 0 !== e.crc) throw new Error(`${what} fails its CRC-32 check (corrupt file)`);
      return new Uint8Array(out.buffer, out.byteOffset + offset, len);
    }
    const out = Buffer.allocUnsafeSlow(len);
    const end = offset + len;
    const need = verifyCrc ? e.size : end;
    const fh = this.fh;
    async function* compressed() {
      for (let p = 0; p < e.compressedSize; p += INFLATE_READ_CHUNK) {
        yield await readExactly(fh, start + p, Math.min(INFLATE_READ_CHUNK, e.compressedSize - p), what);
      }
    }
    let pos = 0;
    let crc = 0;
    let enough = false;
    let overrun: Error | undefined;
    try {
      await pipeline(Readable.from(compressed()), createInflateRaw(), async (chunks: AsyncIterable<Buffer>) => {
        for await (const chunk of chunks) {
          if (pos + chunk.length > e.size) {
            overrun = new Error(`${what} inflates to more than its declared ${e.size} bytes`);
            throw overrun;
          }
          const a = Math.max(offset, pos);
          const b = Math.min(end, pos + chunk.length);
          if (b > a) chunk.copy(out, a - offset, a - pos, b - pos);
          if (verifyCrc) crc = crc32(chunk, crc);
          pos += chunk.length;
          if (pos >= need && !verifyCrc) {
            enough = true;
            return; // the rest of the entry is not needed: the pipeline is torn down
          }
        }
      });
    } catch (err) {
      if (overrun) throw overrun;
      if (!enough) {
        const msg = (err as Error).message;
        throw new Error(msg.startsWith(what) ? msg : `${what} does not inflate (${msg})`);
      }
    }
    if (!enough && pos !== e.size) throw new Error(`${what} inflates to ${pos} bytes, not ${e.size}`);
    if (verifyCrc && crc >>> 0 !== e.crc) throw new Error(`${what} fails its CRC-32 check (corrupt file)`);
    return new Uint8Array(out.buffer, out.byteOffset, len);
  }

  /**
   * The first `len` bytes of a stored entry whose data offset is not known yet, read together with
   * its local header in one request (one read per tensor instead of two). The buffer is laid out so
   * that the data keeps the file's alignment modulo 8: torch aligns data to 64 bytes, so Float32
   * views of it need no copy.
   */
  private async readWithHeader(e: ZipEntry, len: number): Promise<Uint8Array> {
    const what = `${this.path}: entry '${e.name}'`;
    const guess = 30 + Buffer.byteLength(e.name) + 256; // local name and extra (torch's padding: <= 68 bytes)
    const want = Math.min(guess + len, this.size - e.localHeaderOffset);
    if (want < 30) throw new Error(`${what}: file is truncated (local header past the end)`);
    const pad = e.localHeaderOffset % 8;
    const buf = Buffer.allocUnsafeSlow(pad + want);
    await readInto(this.fh, buf, pad, e.localHeaderOffset, want, what);
    const rel = this.parseLocalHeader(e, buf.subarray(pad, pad + 30)) - e.localHeaderOffset;
    if (rel + len <= want) return new Uint8Array(buf.buffer, buf.byteOffset + pad + rel, len);
    const data = await readExactly(this.fh, e.localHeaderOffset + rel, len, what);
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }

  /** Checks a local header and records (and returns) where its entry's data starts in the file. */
  private parseLocalHeader(e: ZipEntry, h: Buffer): number {
    if (h.readUInt32LE(0) !== LFH_SIG)
      throw new Error(`${this.path}: bad local header for entry '${e.name}' (corrupt zip)`);
    const start = e.localHeaderOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
    if (start + e.compressedSize > this.size) {
      throw new Error(
        `${this.path}: file is truncated: entry '${e.name}' ends at ${start + e.compressedSize}, the file at ${this.size}`,
      );
    }
    this.dataStarts.set(e.name, start);
    return start;
  }

  private async dataStart(e: ZipEntry): Promise<number> {
    const known = this.dataStarts.get(e.name);
    if (known !== undefined) return known;
    const h = await readExactly(this.fh, e.localHeaderOffset, 30, `${this.path}: local header of '${e.name}'`);
    return this.parseLocalHeader(e, h);
  }
}

async function readCentralDirectory(fh: FileHandle, size: number, file: string): Promise<Map<string, ZipEntry>> {
  const tailLen = Math.min(size, 22 + 0xffff + 20);
  const tail = await readExactly(fh, size - tailLen, tailLen, file);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    throw new Error(`${file}: not a complete zip: no end-of-central-directory record (file truncated or corrupt)`);
  }
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  const eocdPos = size - tailLen + eocd;
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || tail.readUInt32LE(loc) !== ZIP64_LOCATOR_SIG)
      throw new Error(`${file}: zip64 locator missing (corrupt zip)`);
    const z64Pos = Number(tail.readBigUInt64LE(loc + 8));
    if (z64Pos + 56 > size) throw new Error(`${file}: zip64 end record outside the file (truncated?)`);
    const z = await readExactly(fh, z64Pos, 56, file);
    if (z.readUInt32LE(0) !== ZIP64_EOCD_SIG) throw new Error(`${file}: bad zip64 end record (corrupt zip)`);
    count = Number(z.readBigUInt64LE(32));
    cdSize = Number(z.readBigUInt64LE(40));
    cdOffset = Number(z.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > eocdPos || cdSize > MAX_CENTRAL_DIRECTORY || count * 46 > cdSize) {
    throw new Error(
      `${file}: zip central directory (${count} entries, ${cdSize} bytes at ${cdOffset}) does not fit the file (truncated or corrupt)`,
    );
  }
  const cd = await readExactly(fh, cdOffset, cdSize, file);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CDH_SIG)
      throw new Error(`${file}: bad zip central directory entry ${i} (corrupt zip)`);
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let usize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let localHeaderOffset = cd.readUInt32LE(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length)
      throw new Error(`${file}: zip central directory overruns (corrupt zip)`);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    // zip64 extra field: the 64-bit values of whichever 32-bit fields are saturated, in this order.
    let q = p + 46 + nameLen;
    const extraEnd = q + extraLen;
    while (q + 4 <= extraEnd) {
      const id = cd.readUInt16LE(q);
      const len = cd.readUInt16LE(q + 2);
      if (id === 0x0001) {
        let r = q + 4;
        const next = () => {
          if (r + 8 > q + 4 + len) throw new Error(`${file}: short zip64 extra field for '${name}' (corrupt zip)`);
          const v = Number(cd.readBigUInt64LE(r));
          r += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
      }
      q += 4 + len;
    }
    if (flags & 1) throw new Error(`${file}: zip entry '${name}' is encrypted`);
    if (localHeaderOffset + 30 + compressedSize > size) {
      throw new Error(`${file}: file is truncated: entry '${name}' extends past the end of the file`);
    }
    if (method === 0 && compressedSize !== usize)
      throw new Error(`${file}: stored entry '${name}' has inconsistent sizes`);
    entries.set(name, { name, method, compressedSize, size: usize, crc, localHeaderOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Non-zip files: the legacy format and plain pickles

/** torch.save's legacy (pre-1.6) files start with a pickle of this number. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

export const LEGACY_FORMAT_MESSAGE =
  'legacy torch format (saved before torch 1.6, not a zip): re-save it with torch>=1.6 ' +
  '(torch.save(torch.load(f), f2)) or convert it to safetensors';

/**
 * Explains why a file that starts with a pickle is not loaded: legacy torch files get their own
 * message; a pickle that names a dangerous global gets DangerousGlobalError; anything else is a
 * bare pickle, which is not a torch checkpoint. Reads 64 KiB first (a legacy file's leading pickle
 * is a few bytes) and up to `maxBytes` only when the pickle goes on.
 */
export async function explainPickleFile(file: string, maxBytes: number): Promise<Error> {
  const size = (await stat(file)).size;
  let n = Math.min(size, 1 << 16, maxBytes);
  for (;;) {
    try {
      const first = unpickle(await readHead(file, n), { what: file });
      if (first === LEGACY_MAGIC) return new Error(`${file}: ${LEGACY_FORMAT_MESSAGE}`);
      return new Error(`${file}: a bare pickle (${describe(first)}), not a torch zip checkpoint; refusing to load it`);
    } catch (err) {
      if (err instanceof DangerousGlobalError) return err;
      const more = Math.min(size, maxBytes);
      if (err instanceof PickleError && err.truncated && n < more) {
        n = more;
        continue;
      }
      return new Error(`${file}: a bare pickle, not a torch zip checkpoint (${(err as Error).message})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The checkpoint

export interface TorchOpenOptions {
  /** Where the state dict is in the pickled object: a top-level key. Default: 'state_dict' when the
   * top level has one (Lightning), else the top-level dict itself (pytorch_model.bin). */
  stateDictKey?: string;
  /** Bound on data.pkl (default 256 MiB; a real checkpoint's is well under 10 MiB). */
  maxPickleBytes?: number;
  /** Check the CRC-32 of each storage read whole (data.pkl is always checked). Default false. */
  verifyCrc?: boolean;
}

interface TensorEntry {
  ref: PickledTensor;
  info: TensorInfo;
}

/** A torch zip checkpoint opened for lazy reading of its state dict. */
export class TorchCheckpoint implements WeightSource {
  readonly format = 'torch-zip' as const;

  private constructor(
    private readonly zip: ZipReader,
    private readonly prefix: string,
    private readonly tensors: Map<string, TensorEntry>,
    /** The whole unpickled object (hyper-parameters and all), as inert values. */
    readonly root: PyValue,
    /** State-dict entries that are not tensors, with what they are. */
    readonly skipped: ReadonlyMap<string, string>,
    readonly metadata: Readonly<Record<string, string>>,
    private readonly verifyCrc: boolean,
    /** The bytes that reads of deflated storages may inflate in all (each read inflates from the start). */
    private readonly inflateBudget: number,
  ) {}

  /** The bytes inflated so far by reads of deflated storages. */
  private inflateWork = 0;

  /** The bytes the reads so far have inflated (deflated storages are inflated from their start for each read). */
  get inflatedBytes(): number {
    return this.inflateWork;
  }

  get path(): string {
    return this.zip.path;
  }

  static async open(file: string, opts: TorchOpenOptions = {}): Promise<TorchCheckpoint> {
    const head = await readHead(file, 4);
    if (!(head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04)) {
      if (head[0] === 0x80) throw await explainPickleFile(file, opts.maxPickleBytes ?? 256 << 20);
      throw new Error(`${file}: not a torch checkpoint (no zip signature)`);
    }
    const zip = await ZipReader.open(file);
    try {
      return await TorchCheckpoint.fromZip(zip, opts);
    } catch (err) {
      await zip.close();
      throw err;
    }
  }

  private static async fromZip(zip: ZipReader, opts: TorchOpenOptions): Promise<TorchCheckpoint> {
    const file = zip.path;
    const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) {
      throw new Error(
        pkls.length
          ? `${file}: zip holds several torch archives (${pkls.join(', ')})`
          : `${file}: a zip file but not a torch checkpoint (no <folder>/data.pkl)`,
      );
    }
    const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
    const torchscript =
      zip.entry(`${prefix}constants.pkl`) !== undefined ||
      [...zip.entries.keys()].some((n) => n.startsWith(`${prefix}code/`));
    const byteorder = zip.entry(`${prefix}byteorder`)
      ? new TextDecoder().decode(await zip.read(`${prefix}byteorder`)).trim()
      : 'little';
    if (byteorder !== 'little')
      throw new Error(`${file}: a ${byteorder}-endian checkpoint; only little-endian is supported`);
    const version = zip.entry(`${prefix}version`)
      ? new TextDecoder().decode(await zip.read(`${prefix}version`)).trim()
      : '';

    const pkl = zip.entry(`${prefix}data.pkl`)!;
    const maxPickle = opts.maxPickleBytes ?? 256 << 20;
    if (pkl.size > maxPickle) {
      throw new Error(
        `${file}: data.pkl is ${pkl.size} bytes, over the ${maxPickle}-byte limit for a checkpoint's pickle`,
      );
    }
    const pickle = await zip.read(pkl.name, 0, undefined, { verifyCrc: true });

    const storages = new Map<string, StorageRef>();
    const persistentLoad = (pid: PyValue): PyValue => {
      if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') {
        throw new PickleError(
          `unexpected persistent id ${describe(pid)} (expected ('storage', type, key, location, numel))`,
        );
      }
      const [, storageType, key, location, numel] = pid as unknown[];
      if (!(storageType instanceof StorageType))
        throw new PickleError(`persistent id names ${describe(storageType)}, not a storage type`);
      if (
        typeof key !== 'string' ||
        typeof location !== 'string' ||
        typeof numel !== 'number' ||
        !Number.isSafeInteger(numel) ||
        numel < 0
      ) {
        throw new PickleError(`malformed storage persistent id (${pid.map(describe).join(', ')})`);
      }
      const known = storages.get(key);
      if (known) return known;
      const entry = zip.entry(`${prefix}data/${key}`);
      if (!entry) throw new PickleError(`storage '${key}' has no entry ${prefix}data/${key} in the zip`);
      // torch.save writes each storage's bytes exactly (nbytes, no padding: its alignment padding is
      // in the local header): an entry of another size is not a storage torch wrote, and a deflated
      // one that claims more than the storage needs is a zip bomb.
      if (storageType.dtype && numel * WEIGHT_DTYPE_SIZE[storageType.dtype] !== entry.size) {
        throw new PickleError(
          `storage '${key}' claims ${numel} elements of ${storageType.qualname} (${numel * WEIGHT_DTYPE_SIZE[storageType.dtype]} bytes) ` +
            `but its zip entry holds ${entry.size} bytes (corrupt or crafted file)`,
        );
      }
      const ref: StorageRef = { key, storageType, location, numel };
      storages.set(key, ref);
      return ref;
    };
    const root = unpickle(pickle, { persistentLoad, what: `${file}: data.pkl` });

    const sd = torchscript ? flattenScriptModule(root, file) : findStateDict(root, opts.stateDictKey, file);
    const tensors = new Map<string, TensorEntry>();
    const skipped = new Map<string, string>();
    const problems: string[] = [];
    for (const [k, v] of sd) {
      const name = typeof k === 'string' ? k : String(k);
      if (v instanceof UnsupportedTensor) {
        problems.push(`'${name}' is a tensor kind this reader does not support (${v.cls})`);
      } else if (v instanceof PickledTensor) {
        const dtype = v.dtype;
        if (!dtype) {
          problems.push(`'${name}' has unsupported dtype ${v.dtypeName}`);
          continue;
        }
        const err = checkView(v, dtype);
        if (err) problems.push(`'${name}': ${err}`);
        else tensors.set(name, { ref: v, info: { dtype, shape: [...v.shape] } });
      } else {
        skipped.set(name, describe(v));
      }
    }
    // Views are copied to contiguous tensors, and a stride-0 view (expand) of a small storage can claim
    // any size: bound each tensor by what a Buffer can hold, and all of them by the file's own size.
    // A deflated storage is inflated (streamed) for each read: its size counts too, so a small file
    // cannot claim gigabytes of zeros. Each read inflates its storage again from the start, so the
    // inflating work of all reads is bounded as well (see inflateBudget).
    let total = 0;
    const inflated = new Set<string>();
    for (const [name, t] of tensors) {
      const bytes = numelOf(t.info.shape) * WEIGHT_DTYPE_SIZE[t.info.dtype];
      total += bytes;
      if (bytes > MAX_TENSOR_BYTES) problems.push(`'${name}' would take ${bytes} bytes, over ${MAX_TENSOR_BYTES}`);
      const entry = zip.entry(`${prefix}data/${t.ref.storage.key}`)!;
      if (entry.method !== 0 && !inflated.has(entry.name)) {
        inflated.add(entry.name);
        total += entry.size;
        if (entry.size > MAX_TENSOR_BYTES)
          problems.push(`'${name}' reads a deflated storage of ${entry.size} bytes, over ${MAX_TENSOR_BYTES}`);
      }
    }
    if (total > 2 * zip.size + (1 << 30)) {
      problems.push(
        `the tensors${inflated.size ? ' and the deflated storages they read' : ''} would take ${total} bytes, far more than the ${zip.size}-byte file holds`,
      );
    }
    if (problems.length) {
      throw new Error(`${file}: cannot load ${problems.length} tensor(s):\n  ${problems.join('\n  ')}`);
    }
    if (tensors.size === 0 && skipped.size > 0) {
      // e.g. {'model': state_dict, 'epoch': 3}: say where the tensors are rather than return nothing.
      const nested = [...sd].flatMap(([k, v]) => {
        const n = v instanceof Map ? [...v.values()].filter((x) => x instanceof PickledTensor).length : 0;
        return n ? [`'${String(k)}' (${n} tensors)`] : [];
      });
      throw new Error(
        `${file}: no tensors in the state dict` +
          (nested.length ? `; dicts of tensors under ${nested.join(', ')}: pass stateDictKey to pick one` : ''),
      );
    }

    const metadata: Record<string, string> = { format: 'torch-zip', archive: prefix.slice(0, -1) };
    if (version) metadata.version = version;
    if (torchscript) metadata.torchscript = 'true';
    if (root instanceof Map) {
      for (const [k, v] of root) {
        if (typeof k === 'string' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) {
          metadata[k] = String(v);
        }
      }
    }
    // Reading every tensor (twice over) inflates each deflated storage at most a few times: a few
    // hundred views near the end of one large zero storage would otherwise inflate it for each view.
    const inflateBudget = 2 * total + INFLATE_WORK_SLACK;
    return new TorchCheckpoint(zip, prefix, tensors, root, skipped, metadata, opts.verifyCrc ?? false, inflateBudget);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.entry(name);
    return { dtype: t.info.dtype, shape: [...t.info.shape] };
  }

  /** The tensor's bytes, contiguous: views with other strides (transposes, expands, slices) are copied. */
  async read(name: string, opts: ReadOptions = {}): Promise<WeightTensor> {
    const { ref, info } = this.entry(name);
    const size = WEIGHT_DTYPE_SIZE[info.dtype];
    const n = numelOf(info.shape);
    const entryName = `${this.prefix}data/${ref.storage.key}`;
    const entry = this.zip.entry(entryName)!;
    let data: Uint8Array;
    if (n === 0) data = new Uint8Array(0);
    else if (isContiguous(ref.shape, ref.stride)) {
      const whole = ref.storageOffset === 0 && n * size === entry.size;
      const verifyCrc = this.verifyCrc && whole;
      this.chargeInflate(name, entry, verifyCrc ? entry.size : (ref.storageOffset + n) * size);
      data = await this.zip.read(entryName, ref.storageOffset * size, n * size, { verifyCrc });
    } else {
      const span = maxIndex(ref) + 1 - ref.storageOffset;
      this.chargeInflate(name, entry, (ref.storageOffset + span) * size);
      const src = await this.zip.read(entryName, ref.storageOffset * size, span * size);
      data = gather(src, ref.shape, ref.stride, size);
    }
    const t: WeightTensor = { dtype: info.dtype, shape: [...info.shape], data };
    return opts.float32 ? asFloat32Tensor(t) : t;
  }

  async close(): Promise<void> {
    await this.zip.close();
  }

  /**
   * Counts the bytes a read of a deflated storage inflates (from the entry's start to the end of the
   * range: `end`), before it starts, and refuses the read once all reads together pass the budget.
   */
  private chargeInflate(name: string, entry: ZipEntry, end: number): void {
    if (entry.method === 0) return;
    const work = entry.size <= 1 << 20 && entry.compressedSize <= 1 << 20 ? entry.size : end;
    if (this.inflateWork + work > this.inflateBudget) {
      throw new Error(
        `${this.path}: reading '${name}' would inflate ${work} more bytes of deflated storage '${entry.name}' ` +
          `(${this.inflateWork} inflated so far), over the ${this.inflateBudget}-byte budget for this checkpoint: ` +
          `its tensors read the same deflated storages over and over (re-zip it without compression)`,
      );
    }
    this.inflateWork += work;
  }

  private entry(name: string): TensorEntry {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.path}: no tensor named '${name}'`);
    return t;
  }
}

async function readHead(file: string, n: number): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(n, (await fh.stat()).size));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function findStateDict(root: PyValue, key: string | undefined, file: string): Map<PyValue, PyValue> {
  const asDict = (v: PyValue) =>
    v instanceof Map ? v : v instanceof PyObject && v.dictItems.size ? v.dictItems : undefined;
  const top = asDict(root);
  if (key !== undefined) {
    const sd = asDict(top?.get(key));
    if (!sd) throw new Error(`${file}: the checkpoint has no dict under '${key}' (top level: ${describe(root)})`);
    return sd;
  }
  if (!top) throw new Error(`${file}: no state dict found: the checkpoint holds ${describe(root)}, not a dict`);
  return asDict(top.get('state_dict')) ?? top;
}

/**
 * The tensors of a TorchScript archive (torch.jit.save; OpenAI ships CLIP this way). Its data.pkl is
 * the module tree: each module a `__torch__.*` object whose BUILD state maps attribute names to
 * tensors (parameters, buffers, and plain tensor attributes) and to submodules; names are joined with
 * dots as in state_dict(). Nothing in the archive's code/ folder is read.
 */
function flattenScriptModule(root: PyValue, file: string): Map<PyValue, PyValue> {
  if (!(root instanceof PyObject) || !root.cls.startsWith('__torch__.')) {
    throw new Error(`${file}: a TorchScript archive whose data.pkl holds ${describe(root)}, not a module`);
  }
  const out = new Map<PyValue, PyValue>();
  const seen = new Set<PyObject>();
  const walk = (obj: PyObject, prefix: string, depth: number) => {
    if (depth > 1000) throw new Error(`${file}: TorchScript modules nested more than 1000 deep`);
    if (seen.has(obj)) return;
    seen.add(obj);
    if (!(obj.state instanceof Map)) return;
    for (const [k, v] of obj.state) {
      if (typeof k !== 'string') continue;
      if (v instanceof PickledTensor || v instanceof UnsupportedTensor) out.set(prefix + k, v);
      else if (v instanceof PyObject && v.cls.startsWith('__torch__.')) walk(v, `${prefix}${k}.`, depth + 1);
    }
  };
  walk(root, '', 0);
  return out;
}

/** Largest element index a view touches (in elements of its dtype). */
function maxIndex(ref: PickledTensor): number {
  let m = ref.storageOffset;
  for (let i = 0; i < ref.shape.length; i++) m += (ref.shape[i]! - 1) * ref.stride[i]!;
  return m;
}

/** Why a view does not fit its storage, or null. */
function checkView(ref: PickledTensor, dtype: keyof typeof WEIGHT_DTYPE_SIZE): string | null {
  if (ref.storageOffset < 0 || ref.stride.some((s) => s < 0) || ref.shape.some((d) => d < 0)) {
    return `negative size, stride or offset`;
  }
  const n = numelOf(ref.shape);
  if (!Number.isSafeInteger(n)) return `shape [${ref.shape.join(', ')}] too large`;
  if (n === 0) return null;
  const storageDType = ref.storage.storageType.dtype;
  if (!storageDType) return `storage of unsupported type ${ref.storage.storageType.qualname}`;
  const storageBytes = ref.storage.numel * WEIGHT_DTYPE_SIZE[storageDType];
  const needBytes = (maxIndex(ref) + 1) * WEIGHT_DTYPE_SIZE[dtype];
  if (needBytes > storageBytes) {
    return `view (offset ${ref.storageOffset}, shape [${ref.shape.join(', ')}], stride [${ref.stride.join(', ')}]) needs ${needBytes} bytes of a ${storageBytes}-byte storage`;
  }
  return null;
}

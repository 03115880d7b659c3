// Built graphs on disk, so the second run of a job starts without rebuilding. The key hashes
// everything the bytes depend on (graph definition, weights identity, shapes, options, ORT, the
// app's version and GRAPH_CODE_VERSION), so graphs built by older code are never read by newer code.
//
// Layout under the cache folder (<dataDir>/cache/graphs):
//   <aa>/<key>.onnx            a self-contained graph (weights inline)
//   w-<wid>/weights.bin        one model's tensors, each 4096-byte aligned: ONNX external data
//   w-<wid>/weights.json       its index ({name: offset, length, dtype, dims}), written after the .bin
//   w-<wid>/<key>.onnx         graphs of that model referencing weights.bin instead of carrying a copy
//   m-<mid>/w-<wid>.bin        for graphs of several models (CLIP + VQGAN in the generation step): hard
//   m-<mid>/<key>.onnx         links to each model's weights.bin (a copy where links are impossible)
// so the CLIP tower at batch 1, 8 and 32 or the VQGAN decoder at three sizes share one copy of the
// weights. ORT resolves external data relative to the model file and refuses '..', so graphs live in
// the folder that holds (or links) their weights and are loaded by path (CacheResult.file).
//
// Each entry is the ONNX bytes followed by a 43-byte trailer that is itself a protobuf field ORT
// skips as unknown (field 1000: SHA-256 of the bytes + "FSGC0002"), so the file loads as it is; a hit
// whose trailer does not match (a torn or damaged file) is deleted and rebuilt. Files are written to a
// temp file, fsynced and renamed, so a reader never sees half a file and concurrent writers of one key
// both succeed.
//
// The folder is capped (8 GB unless FSTUDIO_GRAPH_CACHE_MAX_BYTES or the option says otherwise): after
// each write the least recently used graphs go first (a hit refreshes a file's mtime), and a weights
// file goes with the last graph of its folder. The file just written (and its weights) is never deleted.
//
// Public API
//   GraphCache(dir, opts).getOrBuild(parts, build, { weights? }) -> CacheResult   (.prune(keep?))
//                                                  weights: one SharedWeights or several (one per model)
//   getOrBuild(dir, ...), cachedGraph(dir | undefined, ...)   the same, or build() every time without a folder
//   graphCacheKey(parts), fileIdentity(file), graphCacheMaxBytes(env), unwrapEntry(file), GRAPH_CODE_VERSION
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  linkSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { appVersion } from '../../base/app-version.js';
import type { ExternalWeights } from '../graph/onnx-proto.js';
import type { HostTensor } from '../graph/ir.js';
import { ortVersion } from './ort.js';

/**
 * Bump when a graph builder or the ONNX emitter changes the bytes it emits for the same inputs (a fixed
 * op rule, a new fusion), so that graphs cached by the previous code are rebuilt. Releases change the
 * app version too, which is also in the key; this constant covers development builds between releases.
 */
export const GRAPH_CODE_VERSION = 3;

/** A weights file's identity for the key: absolute path, size and modification time (no hashing of GBs). */
export function fileIdentity(file: string): string {
  const abs = path.resolve(file);
  const st = statSync(abs);
  // ctime cannot be set back (cp -p, rsync -a and utimes keep mtime, not ctime) and the inode
  // changes when a file is replaced, so a same-size rewrite with the old mtime still misses.
  return `${abs}:${st.dev}:${st.ino}:${st.size}:${Math.round(st.mtimeMs)}:${Math.round(st.ctimeMs)}`;
}

export interface GraphKeyParts {
  /** The graph definition: its bytes, or a canonical description (builder name + config) that determines them. */
  graph: Uint8Array | string;
  /** Identity of the weights it embeds (e.g. the checkpoint's SHA-256, or path + size + mtime). */
  weights?: string;
  /** Input shapes, by name. */
  shapes?: Record<string, readonly number[]>;
  /** Anything else the build depends on (options, code version). */
  options?: unknown;
}

/** JSON with object keys sorted, so equal values always hash alike. */
function canonical(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (ArrayBuffer.isView(v))
    return `"bytes:${createHash('sha256')
      .update(v as Uint8Array)
      .digest('hex')}"`;
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`;
}

/** SHA-256 (hex) over the graph definition, weights identity, shapes, options, ORT, app and code version. */
export function graphCacheKey(
  parts: GraphKeyParts,
  versions: { app: string; code: number } = { app: appVersion(), code: GRAPH_CODE_VERSION },
): string {
  const h = createHash('sha256');
  h.update('fstudio-graph-cache-v1\0');
  if (typeof parts.graph === 'string') h.update(`text\0${parts.graph}\0`);
  else h.update('bytes\0').update(parts.graph).update('\0');
  h.update(
    canonical({
      weights: parts.weights ?? null,
      shapes: parts.shapes ?? null,
      options: parts.options ?? null,
      ort: ortVersion(),
      app: versions.app,
      code: versions.code,
    }),
  );
  return h.digest('hex');
}

/** The tensors a graph may reference from a shared weights file instead of carrying them. */
export interface SharedWeights {
  /** Identity of the weights (fileIdentity of the checkpoint): names the folder, so graphs of one model share it. */
  id: string;
  /** The tensors, read only when the weights file or a graph must be written. */
  load(): Promise<ReadonlyMap<string, HostTensor>>;
}

export interface CacheResult {
  /** The ONNX model (without the trailer). */
  bytes: Uint8Array;
  key: string;
  /** The entry on disk: load the session from this path when `external` (ORT finds weights.bin beside it). */
  file: string;
  /** True when the bytes came from disk and build() did not run. */
  hit: boolean;
  /** True when the graph references its model's shared weights file. */
  external: boolean;
}

/** 8 GB (decimal, as the app shows sizes): a few large models' graphs at a couple of shapes each. */
export const DEFAULT_GRAPH_CACHE_MAX_BYTES = 8_000_000_000;
export const GRAPH_CACHE_MAX_BYTES_ENV = 'FSTUDIO_GRAPH_CACHE_MAX_BYTES';

/** The cap from FSTUDIO_GRAPH_CACHE_MAX_BYTES (a whole number of bytes), else the default. */
export function graphCacheMaxBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[GRAPH_CACHE_MAX_BYTES_ENV]?.trim();
  if (raw === undefined || raw === '') return DEFAULT_GRAPH_CACHE_MAX_BYTES;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n))
    throw new Error(
      `${GRAPH_CACHE_MAX_BYTES_ENV} must be a whole number of bytes (e.g. 8000000000 for 8 GB), not "${raw}".`,
    );
  return n;
}

export interface GraphCacheOptions {
  /** Largest total size of the cached graphs, in bytes; graphCacheMaxBytes() unless given. */
  maxBytes?: number;
}

export type BuildFn = (external?: ExternalWeights) => Uint8Array | Promise<Uint8Array>;

/** Entries are <key>.onnx; temp files of in-flight writes (<key>.onnx.<pid>.<rand>.tmp) never match. */
const ENTRY_RE = /^[0-9a-f]{64}\.onnx$/;
const WEIGHTS_DIR_RE = /^w-[0-9a-f]{32}$/;
/** A folder of graphs over several models' weights (hard links to their files, not counted twice). */
const MULTI_DIR_RE = /^m-[0-9a-f]{32}$/;
const WEIGHTS_BIN = 'weights.bin';
const WEIGHTS_INDEX = 'weights.json';
/** Page-aligned tensors: ORT can map them instead of copying. */
const WEIGHTS_ALIGN = 4096;

const isGone = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

export class GraphCache {
  readonly maxBytes: number;

  constructor(
    readonly dir: string,
    opts: GraphCacheOptions = {},
  ) {
    const max = opts.maxBytes ?? graphCacheMaxBytes();
    if (!Number.isFinite(max) || max < 0) throw new Error(`maxBytes must be a size in bytes, not ${max}.`);
    this.maxBytes = max;
  }

  fileFor(key: string, weights?: readonly SharedWeights[]): string {
    if (!weights?.length) return path.join(this.dir, key.slice(0, 2), `${key}.onnx`);
    return path.join(this.#graphFolder(weights), `${key}.onnx`);
  }

  weightsDir(weightsId: string): string {
    return path.join(this.dir, `w-${hashId(weightsId)}`);
  }

  /** The folder of graphs over these weights: the model's own folder, or one that links several models' files. */
  #graphFolder(weights: readonly SharedWeights[]): string {
    if (weights.length === 1) return this.weightsDir(weights[0]!.id);
    return path.join(this.dir, `m-${hashId(weights.map((w) => w.id).join('\0'))}`);
  }

  /**
   * The cached graph for these parts, or the result of build(), stored for next time. With `weights` (one
   * model's, or several models'), each model's tensors are written once to its weights file and build()
   * receives where they lie, so the graph it emits references them (emitModel's sharedWeights).
   */
  async getOrBuild(
    parts: GraphKeyParts,
    build: BuildFn,
    opts: { weights?: SharedWeights | readonly SharedWeights[] } = {},
  ): Promise<CacheResult> {
    const shared = opts.weights === undefined ? [] : Array.isArray(opts.weights) ? opts.weights : [opts.weights];
    const external = shared.length > 0;
    const key = graphCacheKey(external ? { ...parts, options: { options: parts.options, external: true } } : parts);
    const file = this.fileFor(key, shared);
    const folder = path.dirname(file);
    try {
      const bytes = unwrapEntry(readFileSync(file));
      if (bytes && (!external || this.#weightsReady(folder, shared))) {
        touch(file);
        return { bytes, key, file, hit: true, external };
      }
      rmSync(file, { force: true }); // torn or damaged (or its weights are): rebuild below
    } catch (e) {
      if (!isGone(e)) throw e;
    }
    let bytes: Uint8Array;
    if (external) {
      const tensors = new Map<string, HostTensor>();
      const ranges = new Map<string, { location: string; offset: number; length: number }>();
      for (const w of shared) {
        const own = await w.load();
        const canonical = this.weightsDir(w.id);
        const at = ensureWeightsFile(canonical, w.id, own);
        const location = shared.length === 1 ? WEIGHTS_BIN : linkInto(folder, canonical, w.id);
        for (const [name, t] of own) {
          if (tensors.has(name)) throw new Error(`graph cache: tensor '${name}' is in two models' weights`);
          tensors.set(name, t);
          ranges.set(name, { location, ...at.get(name)! });
        }
      }
      bytes = await build({ tensors, ranges });
    } else {
      bytes = await build();
    }
    mkdirSync(folder, { recursive: true });
    writeDurably(file, [bytes, entryTrailer(bytes)]);
    // The model is built and stored; a failure to tidy up must not fail the job that needed it.
    try {
      this.prune(file);
    } catch {
      /* the next write tries again */
    }
    return { bytes, key, file, hit: false, external };
  }

  /** Whether a graph folder's weights are whole: its own index, or every linked file at its index's size. */
  #weightsReady(folder: string, shared: readonly SharedWeights[]): boolean {
    if (shared.length === 1) return readWeightsIndex(folder) !== null;
    return shared.every((w) => {
      const index = readWeightsIndex(this.weightsDir(w.id));
      return index !== null && statOrNull(path.join(folder, linkName(w.id)))?.size === index.size;
    });
  }

  /**
   * Deletes the least recently used graphs (oldest mtime first) until the total is at most maxBytes, and a
   * weights file with the last graph of its folder; never `keep` (nor its weights). Files another process
   * deletes meanwhile are skipped. Returns the files deleted.
   */
  prune(keep?: string): string[] {
    const { graphs, weights } = this.#scan();
    let total = graphs.reduce((n, e) => n + e.size, 0) + [...weights.values()].reduce((n, w) => n + w.size, 0);
    if (total <= this.maxBytes) return [];
    const kept = keep === undefined ? undefined : path.resolve(keep);
    const keptFolder = kept && WEIGHTS_DIR_RE.test(path.basename(path.dirname(kept))) ? path.dirname(kept) : null;
    // Weights folders without a graph (a build killed after writing them) are candidates of their own.
    const candidates: { file: string; size: number; mtimeMs: number; folder: string | null }[] = [...graphs];
    for (const [folder, w] of weights)
      if (w.graphs === 0)
        candidates.push({ file: path.join(folder, WEIGHTS_BIN), size: 0, mtimeMs: w.mtimeMs, folder });
    candidates.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.file < b.file ? -1 : 1));
    const removed: string[] = [];
    for (const e of candidates) {
      if (total <= this.maxBytes) break;
      if (path.resolve(e.file) === kept) continue;
      const isWeights = path.basename(e.file) === WEIGHTS_BIN;
      if (!isWeights) {
        try {
          rmSync(e.file, { force: true }); // force: another process may have deleted it first
        } catch {
          continue; // in use (Windows) or not ours to delete: leave it counted
        }
        removed.push(e.file);
        total -= e.size;
      }
      const w = e.folder ? weights.get(e.folder) : undefined;
      if (!w || e.folder === keptFolder) continue;
      if (!isWeights) w.graphs--;
      if (w.graphs > 0) continue;
      try {
        rmSync(e.folder!, { recursive: true, force: true });
        removed.push(path.join(e.folder!, WEIGHTS_BIN));
        total -= w.size;
      } catch {
        /* left for the next prune */
      }
      weights.delete(e.folder!);
    }
    return removed;
  }

  /**
   * Every graph entry (with its weights folder, if any) and every weights folder's size and graph count. A
   * model's weights folder that multi-model folders link to counts those as users, so it is kept with them.
   */
  #scan() {
    const graphs: { file: string; size: number; mtimeMs: number; folder: string | null }[] = [];
    const weights = new Map<string, { size: number; mtimeMs: number; graphs: number }>();
    const ownBins = new Map<number, string>(); // inode of a model's weights.bin -> its folder
    const linked: number[] = []; // inodes linked from multi-model folders that hold graphs
    let sub: string[];
    try {
      sub = readdirSync(this.dir);
    } catch (e) {
      if (isGone(e)) return { graphs, weights };
      throw e;
    }
    for (const s of sub) {
      const isWeightsDir = WEIGHTS_DIR_RE.test(s);
      const isMultiDir = MULTI_DIR_RE.test(s);
      if (!isWeightsDir && !isMultiDir && !/^[0-9a-f]{2}$/.test(s)) continue;
      const folder = path.join(this.dir, s);
      let names: string[];
      try {
        names = readdirSync(folder);
      } catch {
        continue; // gone, or not a folder
      }
      const w = { size: 0, mtimeMs: 0, graphs: 0 };
      const links: number[] = [];
      for (const name of names) {
        const file = path.join(folder, name);
        if (name.endsWith('.tmp')) {
          // A temp file of a writer that was killed: an hour is far longer than any write takes.
          removeIfOlder(file, Date.now() - 3_600_000);
          continue;
        }
        const st = statOrNull(file);
        if (!st?.isFile()) continue;
        if (ENTRY_RE.test(name)) {
          graphs.push({ file, size: st.size, mtimeMs: st.mtimeMs, folder: isWeightsDir || isMultiDir ? folder : null });
          w.graphs++;
        } else if (isWeightsDir && (name === WEIGHTS_BIN || name === WEIGHTS_INDEX)) {
          w.size += st.size;
          w.mtimeMs = Math.max(w.mtimeMs, st.mtimeMs);
          if (name === WEIGHTS_BIN) ownBins.set(st.ino, folder);
        } else if (isMultiDir && name.endsWith('.bin')) {
          links.push(st.ino);
          w.mtimeMs = Math.max(w.mtimeMs, st.mtimeMs);
        }
      }
      if (isMultiDir && w.graphs > 0) linked.push(...links);
      // A multi-model folder's links cost nothing of their own: it goes with its last graph.
      if (isWeightsDir || isMultiDir) weights.set(folder, isMultiDir ? { ...w, size: 0 } : w);
    }
    for (const ino of linked) {
      const owner = ownBins.get(ino);
      if (owner) weights.get(owner)!.graphs++;
    }
    return { graphs, weights };
  }
}

interface WeightsIndex {
  format: 'fstudio-weights';
  version: 1;
  id: string;
  /** Size of weights.bin in bytes. */
  size: number;
  tensors: Record<string, { offset: number; length: number; dtype: string; dims: number[] }>;
}

/** The index of a weights folder, or null when it is missing, unreadable or does not match its .bin. */
function readWeightsIndex(folder: string): WeightsIndex | null {
  try {
    const index = JSON.parse(readFileSync(path.join(folder, WEIGHTS_INDEX), 'utf8')) as WeightsIndex;
    if (index.format !== 'fstudio-weights' || index.version !== 1) return null;
    return statSync(path.join(folder, WEIGHTS_BIN)).size === index.size ? index : null;
  } catch {
    return null;
  }
}

/**
 * The byte range of every tensor in the folder's weights.bin, writing the file first when it is missing or
 * does not hold these tensors (a new model under a reused folder name, or a torn write).
 */
function ensureWeightsFile(
  folder: string,
  id: string,
  tensors: ReadonlyMap<string, HostTensor>,
): Map<string, { offset: number; length: number }> {
  const ranges = (index: WeightsIndex) =>
    new Map(Object.entries(index.tensors).map(([n, e]) => [n, { offset: e.offset, length: e.length }]));
  const existing = readWeightsIndex(folder);
  const matches =
    existing?.id === id &&
    [...tensors].every(([name, t]) => {
      const e = existing.tensors[name];
      return e && e.length === t.data.byteLength && e.dtype === t.dtype && e.dims.join() === t.dims.join();
    });
  if (existing && matches) return ranges(existing);
  mkdirSync(folder, { recursive: true });
  // Graphs written against the file being replaced would read the wrong bytes: they go first.
  if (existing)
    for (const name of readdirSync(folder)) if (ENTRY_RE.test(name)) rmSync(path.join(folder, name), { force: true });
  const index: WeightsIndex = { format: 'fstudio-weights', version: 1, id, size: 0, tensors: {} };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const pad = (WEIGHTS_ALIGN - (offset % WEIGHTS_ALIGN)) % WEIGHTS_ALIGN;
    if (pad) chunks.push(new Uint8Array(pad));
    offset += pad;
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    chunks.push(bytes);
    index.tensors[name] = { offset, length: bytes.byteLength, dtype: t.dtype, dims: [...t.dims] };
    offset += bytes.byteLength;
  }
  index.size = offset;
  // The .bin first, then the index that vouches for it: a reader never trusts a half-written pair.
  writeDurably(path.join(folder, WEIGHTS_BIN), chunks);
  writeDurably(path.join(folder, WEIGHTS_INDEX), [Buffer.from(JSON.stringify(index))]);
  return ranges(index);
}

const hashId = (id: string) => createHash('sha256').update(id).digest('hex').slice(0, 32);
const linkName = (weightsId: string) => `w-${hashId(weightsId)}.bin`;

/**
 * Puts a model's weights.bin into a multi-model graph folder as a hard link (the same file, no copy);
 * where links are impossible (another file system, a FAT drive) as a copy. Returns its name there.
 */
function linkInto(folder: string, canonical: string, weightsId: string): string {
  const name = linkName(weightsId);
  const target = path.join(folder, name);
  const source = path.join(canonical, WEIGHTS_BIN);
  mkdirSync(folder, { recursive: true });
  if (statOrNull(target)?.ino === statOrNull(source)?.ino) return name;
  const tmp = `${target}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    try {
      linkSync(source, tmp);
    } catch {
      copyFileSync(source, tmp);
    }
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return name;
}

/** Writes the chunks to a temp file beside `file`, fsyncs it and renames it into place. */
function writeDurably(file: string, chunks: readonly Uint8Array[]): void {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      for (const c of chunks) writeAll(fd, c);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

const TRAILER_MAGIC = Buffer.from('FSGC0002', 'latin1');
/** Protobuf key of field 1000, wire type 2 (length-delimited), then the length 40: skipped as unknown by ORT. */
const TRAILER_HEAD = Buffer.from([0xc2, 0x3e, 32 + TRAILER_MAGIC.length]);
const TRAILER_BYTES = TRAILER_HEAD.length + 32 + TRAILER_MAGIC.length;

function entryTrailer(bytes: Uint8Array): Buffer {
  return Buffer.concat([TRAILER_HEAD, createHash('sha256').update(bytes).digest(), TRAILER_MAGIC]);
}

/** The model bytes of a cache entry, or null when its trailer is missing or does not match. */
export function unwrapEntry(file: Uint8Array): Uint8Array | null {
  if (file.length < TRAILER_BYTES) return null;
  const n = file.length - TRAILER_BYTES;
  const at = (off: number, len: number) => Buffer.from(file.buffer, file.byteOffset + off, len);
  if (!TRAILER_HEAD.equals(at(n, TRAILER_HEAD.length))) return null;
  if (!TRAILER_MAGIC.equals(at(file.length - TRAILER_MAGIC.length, TRAILER_MAGIC.length))) return null;
  const bytes = new Uint8Array(file.buffer, file.byteOffset, n);
  return createHash('sha256')
    .update(bytes)
    .digest()
    .equals(at(n + TRAILER_HEAD.length, 32))
    ? bytes
    : null;
}

function statOrNull(file: string) {
  try {
    return statSync(file);
  } catch {
    return null; // deleted since the listing
  }
}

function removeIfOlder(file: string, beforeMs: number): void {
  try {
    if (statSync(file).mtimeMs < beforeMs) rmSync(file, { force: true });
  } catch {
    /* gone already */
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off);
}

/** Marks a cache file as just used, for the LRU order; best effort (a read-only folder still serves hits). */
function touch(file: string): void {
  const now = new Date();
  try {
    utimesSync(file, now, now);
  } catch {
    /* not fatal */
  }
}

/** getOrBuild over a cache folder given by the caller. */
export function getOrBuild(
  dir: string,
  parts: GraphKeyParts,
  build: BuildFn,
  opts?: GraphCacheOptions & { weights?: SharedWeights | readonly SharedWeights[] },
): Promise<CacheResult> {
  return new GraphCache(dir, opts).getOrBuild(parts, build, opts);
}

/**
 * getOrBuild when a cache folder is given; without one, build() every time with the weights inline
 * (nothing is written, `file` is null).
 */
export async function cachedGraph(
  dir: string | undefined,
  parts: GraphKeyParts,
  build: BuildFn,
  opts?: GraphCacheOptions & { weights?: SharedWeights | readonly SharedWeights[] },
): Promise<{ bytes: Uint8Array; hit: boolean; file: string | null; external: boolean }> {
  if (!dir) return { bytes: await build(), hit: false, file: null, external: false };
  const r = await new GraphCache(dir, opts).getOrBuild(parts, build, opts);
  return { bytes: r.bytes, hit: r.hit, file: r.file, external: r.external };
}

// Built graphs on disk, so the second run of a job starts without rebuilding (DESIGN.md).
// The key hashes everything the bytes depend on; entries are written to a temp file and renamed
// into place, so a reader never sees half a model and two writers of one key both succeed.
// The key also holds the app's version and GRAPH_CODE_VERSION, so graphs built by older code are
// never read by newer code. Used by the CLIP embedder (nets/clip-run.ts) and `fstudio vqgan`
// (<dataDir>/cache/graphs/); a caller without a data folder passes no folder and nothing is cached.
// With weights as initializers a file can be hundreds of MB, so the folder is capped: least recently
// used first (a hit refreshes the file's mtime), files are deleted after each write until the total is
// under maxBytes (8 GB unless FSTUDIO_GRAPH_CACHE_MAX_BYTES or the option says otherwise). The file just
// written is never deleted, so one entry larger than the cap still serves its run.
//
// Public API
//   graphCacheKey(parts), GraphCache(dir).getOrBuild(parts, build), getOrBuild(dir, parts, build)
//   cachedGraph(dir | undefined, parts, build)   getOrBuild, or just build() when there is no folder
//   fileIdentity(file)                            path, device, inode, size, mtime and ctime of a weights file
//
// Each entry is the ONNX bytes followed by a 40-byte trailer (SHA-256 of the bytes + "FSGC0001"), written
// to a temp file, fsynced and renamed; a hit whose trailer does not match (a torn or damaged file) is
// deleted and rebuilt, so a bad entry heals instead of failing every later run.
//   GRAPH_CODE_VERSION, appVersion()
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
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
import { fileURLToPath } from 'node:url';
import { ortVersion } from './runtime.js';

/**
 * Bump when a graph builder or the ONNX emitter changes the bytes it emits for the same inputs (a fixed
 * op rule, a new fusion), so that graphs cached by the previous code are rebuilt. Releases change the
 * app version too, which is also in the key; this constant covers development builds between releases.
 */
export const GRAPH_CODE_VERSION = 1;

let appVersionCache: string | undefined;
/**
 * This app's version, from the nearest package.json named foundation-studio above this module (works from
 * src/ under tsx and from out/ in the built app). The same walk as studio/index.ts's appVersion, which the
 * engine may not import.
 */
export function appVersion(): string {
  if (appVersionCache) return appVersionCache;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'foundation-studio' && pkg.version) return (appVersionCache = pkg.version);
    } catch {
      /* keep walking up */
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return (appVersionCache = '0.0.0');
}

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

export interface CacheResult {
  bytes: Uint8Array;
  key: string;
  file: string;
  /** True when the bytes came from disk and build() did not run. */
  hit: boolean;
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

/** Entries are <key>.onnx; temp files of in-flight writes (<key>.onnx.<pid>.<rand>.tmp) never match. */
const ENTRY_RE = /^[0-9a-f]{64}\.onnx$/;

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

  fileFor(key: string): string {
    return path.join(this.dir, key.slice(0, 2), `${key}.onnx`);
  }

  /** The cached bytes for these parts, or the result of build(), stored for next time. */
  async getOrBuild(parts: GraphKeyParts, build: () => Uint8Array | Promise<Uint8Array>): Promise<CacheResult> {
    const key = graphCacheKey(parts);
    const file = this.fileFor(key);
    try {
      const bytes = unwrapEntry(readFileSync(file));
      if (bytes) {
        touch(file);
        return { bytes, key, file, hit: true };
      }
      rmSync(file, { force: true }); // torn or damaged: rebuild below
    } catch (e) {
      if (!isGone(e)) throw e;
    }
    const bytes = await build();
    mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      const fd = openSync(tmp, 'w');
      try {
        writeAll(fd, bytes);
        writeAll(fd, entryTrailer(bytes));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, file);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    // The model is built and stored; a failure to tidy up must not fail the job that needed it.
    try {
      this.prune(file);
    } catch {
      /* the next write tries again */
    }
    return { bytes, key, file, hit: false };
  }

  /**
   * Deletes the least recently used entries (oldest mtime first) until the total is at most maxBytes;
   * never `keep`. Files another process deletes meanwhile are skipped. Returns the files deleted.
   */
  prune(keep?: string): string[] {
    const entries: { file: string; size: number; mtimeMs: number }[] = [];
    let sub: string[];
    try {
      sub = readdirSync(this.dir);
    } catch (e) {
      if (isGone(e)) return [];
      throw e;
    }
    for (const s of sub) {
      if (!/^[0-9a-f]{2}$/.test(s)) continue;
      let names: string[];
      try {
        names = readdirSync(path.join(this.dir, s));
      } catch {
        continue; // gone, or not a folder
      }
      for (const name of names) {
        if (!ENTRY_RE.test(name)) {
          // A temp file of a writer that was killed: an hour is far longer than any write takes.
          if (name.endsWith('.tmp')) removeIfOlder(path.join(this.dir, s, name), Date.now() - 3_600_000);
          continue;
        }
        const file = path.join(this.dir, s, name);
        try {
          const st = statSync(file);
          if (st.isFile()) entries.push({ file, size: st.size, mtimeMs: st.mtimeMs });
        } catch {
          /* deleted since the listing */
        }
      }
    }
    let total = entries.reduce((n, e) => n + e.size, 0);
    if (total <= this.maxBytes) return [];
    const kept = keep === undefined ? undefined : path.resolve(keep);
    entries.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.file < b.file ? -1 : 1));
    const removed: string[] = [];
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (path.resolve(e.file) === kept) continue;
      try {
        rmSync(e.file, { force: true }); // force: another process may have deleted it first
        removed.push(e.file);
      } catch {
        continue; // in use (Windows) or not ours to delete: leave it counted
      }
      total -= e.size;
    }
    return removed;
  }
}

const TRAILER_MAGIC = Buffer.from('FSGC0001', 'latin1');
const TRAILER_BYTES = 32 + TRAILER_MAGIC.length;

function entryTrailer(bytes: Uint8Array): Buffer {
  return Buffer.concat([createHash('sha256').update(bytes).digest(), TRAILER_MAGIC]);
}

/** The model bytes of a cache entry, or null when its trailer is missing or does not match. */
export function unwrapEntry(file: Uint8Array): Uint8Array | null {
  if (file.length < TRAILER_BYTES) return null;
  const n = file.length - TRAILER_BYTES;
  if (!TRAILER_MAGIC.equals(Buffer.from(file.buffer, file.byteOffset + n + 32, TRAILER_MAGIC.length))) return null;
  const bytes = new Uint8Array(file.buffer, file.byteOffset, n);
  const want = Buffer.from(file.buffer, file.byteOffset + n, 32);
  return createHash('sha256').update(bytes).digest().equals(want) ? bytes : null;
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
  build: () => Uint8Array | Promise<Uint8Array>,
  opts?: GraphCacheOptions,
): Promise<CacheResult> {
  return new GraphCache(dir, opts).getOrBuild(parts, build);
}

/** getOrBuild when a cache folder is given; without one, build() every time (nothing is written). */
export async function cachedGraph(
  dir: string | undefined,
  parts: GraphKeyParts,
  build: () => Uint8Array | Promise<Uint8Array>,
  opts?: GraphCacheOptions,
): Promise<{ bytes: Uint8Array; hit: boolean; file: string | null }> {
  if (!dir) return { bytes: await build(), hit: false, file: null };
  const r = await new GraphCache(dir, opts).getOrBuild(parts, build);
  return { bytes: r.bytes, hit: r.hit, file: r.file };
}

// Built graphs on disk, so the second run of a job starts without rebuilding (DESIGN.md).
// The key hashes everything the bytes depend on; entries are written to a temp file and renamed
// into place, so a reader never sees half a model and two writers of one key both succeed.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ortVersion } from './runtime.js';

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

/** SHA-256 (hex) over the graph definition, weights identity, shapes, options and ORT version. */
export function graphCacheKey(parts: GraphKeyParts): string {
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

export class GraphCache {
  constructor(readonly dir: string) {}

  fileFor(key: string): string {
    return path.join(this.dir, key.slice(0, 2), `${key}.onnx`);
  }

  /** The cached bytes for these parts, or the result of build(), stored for next time. */
  async getOrBuild(parts: GraphKeyParts, build: () => Uint8Array | Promise<Uint8Array>): Promise<CacheResult> {
    const key = graphCacheKey(parts);
    const file = this.fileFor(key);
    try {
      return { bytes: new Uint8Array(readFileSync(file)), key, file, hit: true };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const bytes = await build();
    mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeFileSync(tmp, bytes);
      renameSync(tmp, file);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    return { bytes, key, file, hit: false };
  }
}

/** getOrBuild over a cache folder given by the caller. */
export function getOrBuild(
  dir: string,
  parts: GraphKeyParts,
  build: () => Uint8Array | Promise<Uint8Array>,
): Promise<CacheResult> {
  return new GraphCache(dir).getOrBuild(parts, build);
}

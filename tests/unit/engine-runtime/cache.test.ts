import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { appVersion } from '../../../src/main/base/app-version.js';
import { Builder } from '../../../src/main/engine/graph/builder.js';
import { type ExternalWeights, emitModel } from '../../../src/main/engine/graph/onnx-proto.js';
import { createSession } from '../../../src/main/engine/runtime/ort.js';
import {
  DEFAULT_GRAPH_CACHE_MAX_BYTES,
  GRAPH_CODE_VERSION,
  GraphCache,
  cachedGraph,
  fileIdentity,
  getOrBuild,
  graphCacheKey,
  graphCacheMaxBytes,
} from '../../../src/main/engine/runtime/graph-cache.js';
import { addModel } from '../../../src/main/engine/runtime/tiny-model.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'fstudio-cache-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('graph cache', () => {
  const parts = {
    graph: 'vqgan-decoder f16 v1',
    weights: 'sha256:abc',
    shapes: { z: [1, 256, 16, 16] },
    options: { loss: 'spherical', cuts: 32 },
  };

  it('builds once, then serves the bytes from disk without building', async () => {
    const dir = tempDir();
    let builds = 0;
    const build = () => {
      builds++;
      return addModel(8);
    };
    const first = await getOrBuild(dir, parts, build);
    const second = await getOrBuild(dir, parts, build);
    expect(builds).toBe(1);
    expect([first.hit, second.hit]).toEqual([false, true]);
    expect(second.bytes).toEqual(first.bytes);
    const s = await createSession(second.bytes); // what came back from disk is a loadable model
    expect(s.inputNames).toEqual(['x', 'y']);
    await s.release();
    // no temp files left behind
    expect(readdirSync(path.dirname(first.file))).toEqual([path.basename(first.file)]);
  });

  it('rebuilds an entry that was torn or damaged on disk, instead of serving it', async () => {
    const dir = tempDir();
    let builds = 0;
    const build = () => {
      builds++;
      return addModel(8);
    };
    const first = await getOrBuild(dir, parts, build);
    const whole = readFileSync(first.file);
    writeFileSync(first.file, whole.subarray(0, whole.length - 100)); // torn write
    const healed = await getOrBuild(dir, parts, build);
    expect([builds, healed.hit]).toEqual([2, false]);
    expect(healed.bytes).toEqual(first.bytes);
    const damaged = readFileSync(first.file);
    damaged[10] = damaged[10]! ^ 0xff; // one flipped byte inside the model
    writeFileSync(first.file, damaged);
    const again = await getOrBuild(dir, parts, build);
    expect([builds, again.hit]).toEqual([3, false]);
    expect((await getOrBuild(dir, parts, build)).hit).toBe(true); // and the rewritten entry serves
  });

  it('gives a weights file a new identity when it is rewritten with the same size and mtime', () => {
    const dir = tempDir();
    const f = path.join(dir, 'model.safetensors');
    writeFileSync(f, Buffer.alloc(64, 1));
    const old = new Date('2024-01-01T00:00:00Z');
    utimesSync(f, old, old);
    const before = fileIdentity(f);
    // What `cp -p` or `rsync -a` of a same-size fine-tune does: new bytes, the old mtime.
    const tmp = path.join(dir, 'incoming');
    writeFileSync(tmp, Buffer.alloc(64, 2));
    utimesSync(tmp, old, old);
    rmSync(f);
    writeFileSync(f, readFileSync(tmp));
    utimesSync(f, old, old);
    expect(statSync(f).mtimeMs).toBe(old.getTime());
    expect(fileIdentity(f)).not.toBe(before);
  });

  it('keys on every part, and not on object key order', () => {
    const k = graphCacheKey(parts);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(graphCacheKey({ ...parts, options: { cuts: 32, loss: 'spherical' } })).toBe(k);
    expect(graphCacheKey({ ...parts, graph: 'vqgan-decoder f16 v2' })).not.toBe(k);
    expect(graphCacheKey({ ...parts, weights: 'sha256:abd' })).not.toBe(k);
    expect(graphCacheKey({ ...parts, shapes: { z: [1, 256, 32, 32] } })).not.toBe(k);
    expect(graphCacheKey({ ...parts, options: { loss: 'spherical', cuts: 16 } })).not.toBe(k);
    expect(graphCacheKey({ graph: new Uint8Array([1, 2]) })).not.toBe(graphCacheKey({ graph: new Uint8Array([1, 3]) }));
  });

  it("keys on the app's version (package.json) and the graph code version", () => {
    const pkg = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../../package.json'), 'utf8')) as {
      version: string;
    };
    expect(appVersion()).toBe(pkg.version);
    const now = { app: pkg.version, code: GRAPH_CODE_VERSION };
    expect(graphCacheKey(parts)).toBe(graphCacheKey(parts, now));
    expect(graphCacheKey(parts, { ...now, app: `${pkg.version}-next` })).not.toBe(graphCacheKey(parts));
    expect(graphCacheKey(parts, { ...now, code: GRAPH_CODE_VERSION + 1 })).not.toBe(graphCacheKey(parts));
  });

  it('without a folder, cachedGraph builds every time and writes nothing', async () => {
    let builds = 0;
    const build = () => (builds++, addModel(8));
    const a = await cachedGraph(undefined, parts, build);
    const b = await cachedGraph(undefined, parts, build);
    expect([builds, a.hit, b.hit, a.file]).toEqual([2, false, false, null]);
  });

  it('concurrent builders of one key both succeed and leave one file', async () => {
    const cache = new GraphCache(tempDir());
    const [a, b] = await Promise.all([
      cache.getOrBuild(parts, () => addModel(8)),
      cache.getOrBuild(parts, async () => addModel(8)),
    ]);
    expect(a.file).toBe(b.file);
    expect(readdirSync(path.dirname(a.file))).toEqual([path.basename(a.file)]);
  });
});

describe('graph cache size cap (least recently used first)', () => {
  const KB = 1000;
  const entry = (name: string) => ({ graph: `test graph ${name}` });
  const bytes = (n: number) => () => new Uint8Array(n).fill(7);
  /** Sets a file's access and modification time to `secondsAgo` before now. */
  const age = (file: string, secondsAgo: number) => {
    const t = new Date(Date.now() - secondsAgo * 1000);
    utimesSync(file, t, t);
  };

  it('writing an entry that takes the total over the cap deletes the least recently used', async () => {
    const dir = tempDir();
    const cache = new GraphCache(dir, { maxBytes: 2.5 * KB });
    const a = await cache.getOrBuild(entry('a'), bytes(KB));
    const b = await cache.getOrBuild(entry('b'), bytes(KB));
    expect([existsSync(a.file), existsSync(b.file)]).toEqual([true, true]); // 2 KB: under the cap
    // b was written after a but used longer ago: the order is by use (mtime), not by writing.
    age(a.file, 100);
    age(b.file, 200);
    // A temp file of an in-flight write is neither counted (it would push a out too) nor deleted.
    const tmp = `${b.file}.99999.abcdef.tmp`;
    writeFileSync(tmp, new Uint8Array(10 * KB));
    const c = await cache.getOrBuild(entry('c'), bytes(KB));
    expect([existsSync(a.file), existsSync(b.file), existsSync(c.file), existsSync(tmp)]).toEqual([
      true,
      false,
      true,
      true,
    ]);
    // b comes back by building again
    let built = 0;
    const again = await cache.getOrBuild(entry('b'), () => (built++, new Uint8Array(KB)));
    expect([again.hit, built]).toEqual([false, 1]);
  });

  it('a hit counts as a use: it refreshes the mtime and protects the entry', async () => {
    const dir = tempDir();
    const cache = new GraphCache(dir, { maxBytes: 2.5 * KB });
    const a = await cache.getOrBuild(entry('a'), bytes(KB));
    const b = await cache.getOrBuild(entry('b'), bytes(KB));
    age(a.file, 200); // a is the older of the two...
    age(b.file, 100);
    const hit = await cache.getOrBuild(entry('a'), () => {
      throw new Error('a hit must not build');
    });
    expect(hit.hit).toBe(true);
    expect(statSync(a.file).mtimeMs).toBeGreaterThan(Date.now() - 60_000); // ...until it is used
    const c = await cache.getOrBuild(entry('c'), bytes(KB));
    expect([existsSync(a.file), existsSync(b.file), existsSync(c.file)]).toEqual([true, false, true]);
  });

  it('never deletes the file just written, even when it alone is over the cap', async () => {
    const dir = tempDir();
    const cache = new GraphCache(dir, { maxBytes: KB / 2 });
    const a = await cache.getOrBuild(entry('a'), bytes(KB));
    expect(existsSync(a.file)).toBe(true); // alone, over the cap, kept
    const b = await cache.getOrBuild(entry('b'), bytes(KB));
    expect([existsSync(a.file), existsSync(b.file)]).toEqual([false, true]);
    // Even when its mtime is the oldest (a coarse clock, a copied folder), the kept file stays.
    const c = await cachedGraph(dir, entry('c'), bytes(KB), { maxBytes: 10 * KB });
    age(c.file!, 500);
    age(b.file, 100);
    expect(cache.prune(c.file!)).toEqual([b.file]);
    expect([existsSync(b.file), existsSync(c.file!)]).toEqual([false, true]);
  });

  it('prune of a folder that does not exist (yet) deletes nothing', () => {
    expect(new GraphCache(path.join(tempDir(), 'none'), { maxBytes: 0 }).prune()).toEqual([]);
  });

  it('takes the cap from FSTUDIO_GRAPH_CACHE_MAX_BYTES, 8 GB by default', () => {
    expect(graphCacheMaxBytes({})).toBe(DEFAULT_GRAPH_CACHE_MAX_BYTES);
    expect(DEFAULT_GRAPH_CACHE_MAX_BYTES).toBe(8e9);
    expect(graphCacheMaxBytes({ FSTUDIO_GRAPH_CACHE_MAX_BYTES: '123456' })).toBe(123456);
    expect(graphCacheMaxBytes({ FSTUDIO_GRAPH_CACHE_MAX_BYTES: ' ' })).toBe(DEFAULT_GRAPH_CACHE_MAX_BYTES);
    expect(() => graphCacheMaxBytes({ FSTUDIO_GRAPH_CACHE_MAX_BYTES: '8GB' })).toThrow(/whole number of bytes/);
    expect(() => graphCacheMaxBytes({ FSTUDIO_GRAPH_CACHE_MAX_BYTES: '-1' })).toThrow(/whole number of bytes/);
    expect(new GraphCache(tempDir()).maxBytes).toBe(graphCacheMaxBytes());
  });
});

describe("graphs sharing their model's weights file", () => {
  // y = x · W + c for an input of `rows` rows: graphs of different shapes over the same weights.
  const W = { dtype: 'float32' as const, dims: [64, 32], data: new Float32Array(64 * 32).map((_, i) => (i % 9) - 4) };
  const c = { dtype: 'float32' as const, dims: [32], data: new Float32Array(32).map((_, i) => i / 8) };
  const weights = (id: string, loads: { n: number }) => ({
    id,
    load: async () => {
      loads.n++;
      return new Map([
        ['W', W],
        ['c', c],
      ]);
    },
  });
  const build = (rows: number) => (ext?: ExternalWeights) => {
    const b = new Builder('affine');
    const x = b.input('x', [rows, 64]);
    const y = b.add(b.matmul(x, b.param('W', ext?.tensors.get('W') ?? W)), b.param('c', ext?.tensors.get('c') ?? c));
    return emitModel(b.graph, { outputs: { y }, sharedWeights: ext });
  };
  const run = async (file: string, rows: number) => {
    const s = await createSession({ file });
    const x = new Float32Array(rows * 64).map((_, i) => ((i * 7) % 5) - 2);
    const y = (await s.run({ x: { dtype: 'float32', dims: [rows, 64], data: x } })).y!.data as Float32Array;
    await s.release();
    // By hand: row 0 of y.
    const want = Array.from({ length: 32 }, (_, j) => {
      let acc = c.data[j]!;
      for (let k = 0; k < 64; k++) acc += x[k]! * W.data[k * 32 + j]!;
      return acc;
    });
    expect(Array.from(y.subarray(0, 32))).toEqual(want);
  };

  it('writes the weights once; each graph references them and loads by path', async () => {
    const dir = tempDir();
    const cache = new GraphCache(dir);
    const loads = { n: 0 };
    const a = await cache.getOrBuild({ graph: 'affine', shapes: { x: [1, 64] } }, build(1), {
      weights: weights('model-1', loads),
    });
    const b = await cache.getOrBuild({ graph: 'affine', shapes: { x: [8, 64] } }, build(8), {
      weights: weights('model-1', loads),
    });
    expect([a.external, b.external, a.hit, b.hit]).toEqual([true, true, false, false]);
    expect(path.dirname(a.file)).toBe(path.dirname(b.file));
    const folder = readdirSync(path.dirname(a.file)).sort();
    expect(folder).toEqual([path.basename(a.file), path.basename(b.file), 'weights.bin', 'weights.json'].sort());
    // The weights (8 KB) live once, in weights.bin; each graph carries only references to them.
    const bin = statSync(path.join(path.dirname(a.file), 'weights.bin')).size;
    expect(bin).toBeGreaterThanOrEqual(W.data.byteLength + c.data.byteLength);
    for (const f of [a.file, b.file]) expect(statSync(f).size).toBeLessThan(1024);
    await run(a.file, 1);
    await run(b.file, 8);
    // A hit reads neither the weights nor builds.
    const again = await cache.getOrBuild(
      { graph: 'affine', shapes: { x: [8, 64] } },
      () => {
        throw new Error('a hit must not build');
      },
      { weights: weights('model-1', loads) },
    );
    expect([again.hit, loads.n]).toEqual([true, 2]);
    await run(again.file, 8);
  });

  it('another model gets its own folder; a damaged weights index rebuilds the graphs that use it', async () => {
    const dir = tempDir();
    const cache = new GraphCache(dir);
    const loads = { n: 0 };
    const parts = { graph: 'affine', shapes: { x: [2, 64] } };
    const a = await cache.getOrBuild(parts, build(2), { weights: weights('model-1', loads) });
    const other = await cache.getOrBuild(parts, build(2), { weights: weights('model-2', loads) });
    expect(path.dirname(other.file)).not.toBe(path.dirname(a.file));
    writeFileSync(path.join(path.dirname(a.file), 'weights.json'), '{"torn');
    const healed = await cache.getOrBuild(parts, build(2), { weights: weights('model-1', loads) });
    expect(healed.hit).toBe(false);
    await run(healed.file, 2);
  });

  it('the cap takes the weights file with the last graph of its folder, never the one just written', async () => {
    const dir = tempDir();
    const loads = { n: 0 };
    const big = new GraphCache(dir, { maxBytes: 1e9 });
    const a = await big.getOrBuild({ graph: 'affine', shapes: { x: [1, 64] } }, build(1), {
      weights: weights('model-1', loads),
    });
    const t = new Date(Date.now() - 100_000);
    utimesSync(a.file, t, t);
    // A small cap: model-2's graph (and its weights) is kept, model-1's graph goes and its weights with it.
    const small = new GraphCache(dir, { maxBytes: 1 });
    const b = await small.getOrBuild({ graph: 'affine', shapes: { x: [1, 64] } }, build(1), {
      weights: weights('model-2', loads),
    });
    expect(existsSync(path.dirname(a.file))).toBe(false);
    expect(readdirSync(path.dirname(b.file)).sort()).toEqual([path.basename(b.file), 'weights.bin', 'weights.json']);
  });
});

describe('graphs over several models’ weights (CLIP and VQGAN in one step graph)', () => {
  const A = { dtype: 'float32' as const, dims: [16, 8], data: new Float32Array(128).map((_, i) => (i % 5) - 2) };
  const B = { dtype: 'float32' as const, dims: [8], data: new Float32Array(8).map((_, i) => i / 4) };
  const modelA = { id: 'model-a', load: async () => new Map([['a.weight', A]]) };
  const modelB = { id: 'model-b', load: async () => new Map([['b.bias', B]]) };
  const build = (ext?: ExternalWeights) => {
    const b = new Builder('two-models');
    const x = b.input('x', [1, 16]);
    const y = b.add(
      b.matmul(x, b.param('a.weight', ext?.tensors.get('a.weight') ?? A)),
      b.param('b.bias', ext?.tensors.get('b.bias') ?? B),
    );
    return emitModel(b.graph, { outputs: { y }, sharedWeights: ext });
  };

  it("links each model's weights file into the graph's folder (no copy) and the graph computes with both", async () => {
    const dir = tempDir();
    const cache = new GraphCache(dir);
    const r = await cache.getOrBuild({ graph: 'two' }, build, { weights: [modelA, modelB] });
    expect(r.external).toBe(true);
    const folder = path.dirname(r.file);
    expect(path.basename(folder)).toMatch(/^m-[0-9a-f]{32}$/);
    const links = readdirSync(folder).filter((f) => f.endsWith('.bin'));
    expect(links).toHaveLength(2);
    const inodes = new Set(links.map((f) => statSync(path.join(folder, f)).ino));
    expect(inodes).toEqual(
      new Set([modelA, modelB].map((m) => statSync(path.join(cache.weightsDir(m.id), 'weights.bin')).ino)),
    );
    const s = await createSession({ file: r.file });
    const x = new Float32Array(16).map((_, i) => i - 7);
    const y = (await s.run({ x: { dtype: 'float32', dims: [1, 16], data: x } })).y!.data as Float32Array;
    await s.release();
    const want = Array.from(
      { length: 8 },
      (_, j) => B.data[j]! + x.reduce((acc, xi, k) => acc + xi * A.data[k * 8 + j]!, 0),
    );
    expect(Array.from(y)).toEqual(want);
    // A hit; and a graph of model A alone shares A's file with it.
    expect((await cache.getOrBuild({ graph: 'two' }, build, { weights: [modelA, modelB] })).hit).toBe(true);
    const alone = await cache.getOrBuild({ graph: 'a only' }, () => addModel(2), { weights: modelA });
    expect(path.dirname(alone.file)).toBe(cache.weightsDir(modelA.id));
  });

  it('a model folder linked from a multi-model folder is kept by the cap while that folder has graphs', async () => {
    const dir = tempDir();
    const r = await new GraphCache(dir).getOrBuild({ graph: 'two' }, build, { weights: [modelA, modelB] });
    const small = new GraphCache(dir, { maxBytes: 1 });
    expect(small.prune(r.file)).toEqual([]); // everything is in use by the graph being kept
    expect(existsSync(path.join(small.weightsDir(modelA.id), 'weights.bin'))).toBe(true);
    const removed = small.prune(); // nothing kept: the graph, its folder, then the models' files go
    expect(removed).toContain(r.file);
    expect(existsSync(path.dirname(r.file))).toBe(false);
    small.prune();
    expect(existsSync(small.weightsDir(modelA.id))).toBe(false);
  });
});

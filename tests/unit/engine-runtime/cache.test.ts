import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSession } from '../../../src/main/engine/graph/runtime.js';
import {
  GRAPH_CODE_VERSION,
  GraphCache,
  appVersion,
  cachedGraph,
  getOrBuild,
  graphCacheKey,
} from '../../../src/main/engine/graph/runtime-cache.js';
import { addModel } from '../../../src/main/engine/graph/runtime-tiny-model.js';

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

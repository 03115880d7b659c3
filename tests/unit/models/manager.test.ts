// The model manager over a real data folder and a local HTTP server: pull, state, partial
// downloads, import, verify, remove. Hashes computed here independently with node:crypto.
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StudioError } from '../../../src/shared/api.js';
import { parseCatalog, type Catalog } from '../../../src/main/studio/models/catalog.js';
import type { ModelProgress } from '../../../src/shared/models.js';
import { ModelManager, STATE_FILE } from '../../../src/main/studio/models/manager.js';
import { serveBytes, startServer, type TestServer } from './http-server.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const fast = {
  backoffBaseMs: 1,
  backoffMaxMs: 5,
  stallReportMs: 2_000,
  stallTimeoutMs: 5_000,
  progressIntervalMs: 0,
  freeSpace: async () => 1e12,
  reserveBytes: 0,
  // The local server's /hf/ paths stand in for huggingface.co (whose X-Linked-Etag alone is believed).
  trustLinkedEtagFrom: (u: URL) => u.pathname.includes('/hf/'),
};

const weights = randomBytes(400_000);
const config = Buffer.from(JSON.stringify({ hidden_size: 8 }));
const yaml = Buffer.from('model:\n  params:\n    embed_dim: 4\n');

let dir: string;
let server: TestServer;
let catalog: Catalog;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fstudio-models-'));
  server = await startServer({
    '/tiny-clip/config.json': serveBytes(config),
    '/hf/tiny-clip/model.bin': (_req, res) =>
      res.writeHead(302, { Location: '/cdn/model.bin', 'X-Linked-Etag': `"${sha(weights)}"` }).end(),
    '/cdn/model.bin': serveBytes(weights),
    '/vq/last.ckpt': serveBytes(weights),
    '/vq/model.yaml': serveBytes(yaml),
  });
  const u = server.url;
  catalog = parseCatalog({
    version: 1,
    models: [
      {
        id: 'tiny-clip',
        kind: 'clip',
        title: 'Tiny CLIP',
        default: true,
        description: 'test',
        licence: 'MIT',
        homepage: 'https://example.org/',
        files: [
          { name: 'config.json', urls: [u('/tiny-clip/config.json')], verify: 'record-on-first-download' },
          {
            name: 'model.bin',
            urls: [u('/hf/tiny-clip/model.bin')],
            size: { bytes: weights.length, approximate: false },
            verify: 'hf-linked-etag',
          },
          {
            name: 'extra/generation_config.json',
            urls: [u('/nowhere')],
            verify: 'record-on-first-download',
            optional: true,
          },
        ],
      },
      {
        id: 'tiny-vqgan',
        kind: 'vqgan',
        title: 'Tiny VQGAN',
        default: true,
        description: 'test',
        licence: 'MIT',
        homepage: 'https://example.org/',
        files: [
          {
            name: 'last.ckpt',
            urls: [u('/gone/last.ckpt'), u('/vq/last.ckpt')],
            sha256: sha(weights),
            verify: 'sha256',
          },
          { name: 'model.yaml', urls: [u('/vq/model.yaml')], verify: 'record-on-first-download' },
        ],
      },
      {
        id: 'tiny-lm',
        kind: 'text-lm',
        title: 'Tiny LM',
        default: true,
        description: 'test',
        licence: 'MIT',
        homepage: 'https://example.org/',
        files: [
          {
            name: 'onnx/model.onnx',
            urls: [u('/a/model.onnx'), u('/b/model.onnx')],
            verify: 'record-on-first-download',
          },
        ],
      },
    ],
  });
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const manager = () => new ModelManager(dir, { catalog, downloader: fast });
/** The error a call was refused with (a call that succeeds fails the test). */
const refusal = (p: Promise<unknown>): Promise<StudioError> =>
  p.then(
    () => {
      throw new Error('the call was accepted');
    },
    (e: unknown) => e as StudioError,
  );

describe('ModelManager', () => {
  it('pulls a model, records each file and how it was verified', async () => {
    const m = manager();
    expect((await m.info('tiny-clip')).state).toBe('missing');
    const events: ModelProgress[] = [];
    m.on('progress', (p) => events.push(p));
    const info = await m.pull('tiny-clip').done;
    expect(info.state).toBe('installed');
    const byName = Object.fromEntries(info.files.map((f) => [f.name, f]));
    expect(byName['config.json']).toMatchObject({ state: 'present', sha256: sha(config), verification: 'recorded' });
    expect(byName['model.bin']).toMatchObject({
      state: 'present',
      sha256: sha(weights),
      verification: 'hf-linked-etag',
      source: server.url('/hf/tiny-clip/model.bin'),
    });
    expect(byName['extra/generation_config.json']!.state).toBe('missing');
    expect(info.verification).toBe('recorded'); // the weakest of the present files
    expect(readFileSync(join(dir, 'models', 'tiny-clip', 'model.bin')).equals(weights)).toBe(true);
    const state = JSON.parse(readFileSync(join(dir, 'models', 'tiny-clip', STATE_FILE), 'utf8'));
    expect(state.files['model.bin'].sha256).toBe(sha(weights));
    expect(events.every((e) => e.modelId === 'tiny-clip')).toBe(true);
    expect(events.at(-1)!.state).toBe('done');

    // Pulling again asks only for the optional file that no mirror had.
    const before = server.requests.length;
    await m.pull('tiny-clip').done;
    expect(server.requests.slice(before).map((r) => r.path)).toEqual(['/nowhere']);
  });

  it('verifies against the catalog hash, moving past a 404 mirror', async () => {
    const info = await manager().pull('tiny-vqgan').done;
    expect(info.files.find((f) => f.name === 'last.ckpt')!.verification).toBe('sha256');
    expect(server.requests.map((r) => r.path)).toContain('/gone/last.ckpt');
  });

  it('fails with every mirror named and what to do next', async () => {
    const m = manager();
    const events: ModelProgress[] = [];
    m.on('progress', (p) => events.push(p));
    const err = await m.pull('tiny-lm').done.catch((e: unknown) => e as StudioError);
    expect(events.at(-1)).toMatchObject({ state: 'failed', message: (err as StudioError).message });
    expect(err).toBeInstanceOf(StudioError);
    expect((err as StudioError).code).toBe('DownloadFailed');
    const msg = (err as StudioError).message;
    expect(msg).toContain(`1. ${server.url('/a/model.onnx')} — HTTP 404`);
    expect(msg).toContain(`2. ${server.url('/b/model.onnx')} — HTTP 404`);
    // One piece of advice, after the facts, in a user's words (the CLI adds its commands).
    expect(msg.match(/download again|Try again/g)).toHaveLength(1);
    expect(msg).not.toMatch(/pull|`/);
  });

  it('uses an extra mirror first when one is configured', async () => {
    server.route('/mirror/tiny-lm/onnx/model.onnx', serveBytes(weights));
    const m = new ModelManager(dir, { catalog, downloader: fast, extraMirrors: [server.url('/mirror/')] });
    const info = await m.pull('tiny-lm').done;
    expect(info.state).toBe('installed');
    expect(info.files[0]!.source).toBe(server.url('/mirror/tiny-lm/onnx/model.onnx'));
  });

  it("never believes an extra mirror's X-Linked-Etag, even from a host that would be trusted", async () => {
    // /mirror/hf/... passes the test's host rule, but it is not one of the catalog's URLs.
    server.route(
      '/mirror/hf/tiny-clip/model.bin',
      serveBytes(weights, { headers: { 'X-Linked-Etag': `"${sha(weights)}"` } }),
    );
    const m = new ModelManager(dir, { catalog, downloader: fast, extraMirrors: [server.url('/mirror/hf')] });
    const info = await m.pull('tiny-clip').done;
    const bin = info.files.find((f) => f.name === 'model.bin')!;
    expect(bin.source).toBe(server.url('/mirror/hf/tiny-clip/model.bin'));
    expect(bin.verification).toBe('recorded');
  });

  it('with mirrorsOnly never asks the catalog URLs', async () => {
    // The catalog's URLs for tiny-lm are on this server too (/a, /b): none of them may be requested.
    const m = new ModelManager(dir, {
      catalog,
      downloader: fast,
      extraMirrors: [server.url('/mirror/')],
      mirrorsOnly: true,
    });
    const err = await m.pull('tiny-lm').done.catch((e: unknown) => e as StudioError);
    expect(err).toBeInstanceOf(Error);
    const asked = server.requests.map((r) => r.path);
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((u) => u.startsWith('/mirror/'))).toBe(true);
  });

  it('shows a cancelled pull as partial and resumes it', async () => {
    const N = 100_000;
    let hang = true;
    server.route('/cdn/model.bin', (req, res, hit) => serveBytes(weights, hang ? { hangAfter: N } : {})(req, res, hit));
    const m = new ModelManager(dir, {
      catalog,
      downloader: { ...fast, stallReportMs: 60_000, stallTimeoutMs: 60_000 },
    });
    m.on('progress', (p) => {
      const f = p.files.find((x) => x.name === 'model.bin');
      if (hang && f && f.bytes >= N && f.state === 'downloading') m.cancel('tiny-clip');
    });
    const err = await m.pull('tiny-clip').done.catch((e: unknown) => e as StudioError);
    expect((err as StudioError).code).toBe('Cancelled');
    const info = await m.info('tiny-clip');
    expect(info.state).toBe('partial');
    expect(info.files.find((f) => f.name === 'model.bin')).toMatchObject({ state: 'partial', bytes: N });

    hang = false;
    const done = await m.pull('tiny-clip').done;
    expect(done.state).toBe('installed');
    expect(server.requests.filter((r) => r.path === '/cdn/model.bin').at(-1)!.headers.range).toBe(`bytes=${N}-`);
  });

  it('imports a folder from the imports folder, checking catalog hashes and recording the rest', async () => {
    const src = join(dir, 'imports', 'src');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'last.ckpt'), weights);
    writeFileSync(join(src, 'model.yaml'), yaml);
    const m = manager();
    expect(m.importsDir).toBe(join(dir, 'imports'));
    const r = await m.import('tiny-vqgan', 'src');
    expect(r.missing).toEqual([]);
    expect(r.model.state).toBe('installed');
    expect(r.imported.map((i) => [i.name, i.sha256, i.verification])).toEqual([
      ['last.ckpt', sha(weights), 'sha256'],
      ['model.yaml', sha(yaml), 'recorded'],
    ]);
    expect(server.requests).toHaveLength(0);
  });

  it('imports a single file by its extension and refuses one whose hash is wrong', async () => {
    const m = manager();
    const ok = join(dir, 'vqgan_imagenet_f16_16384.ckpt');
    writeFileSync(ok, weights);
    const r = await m.importLocal('tiny-vqgan', ok);
    expect(r.imported[0]).toMatchObject({ name: 'last.ckpt', verification: 'sha256' });
    expect(r.missing).toEqual(['model.yaml']);
    expect(r.model.state).toBe('partial');

    await m.remove('tiny-vqgan');
    const bad = join(dir, 'other.ckpt');
    writeFileSync(bad, randomBytes(1000));
    const err = await m.importLocal('tiny-vqgan', bad).catch((e: unknown) => e as StudioError);
    expect((err as StudioError).code).toBe('ChecksumMismatch');
    expect((err as StudioError).message).toContain(sha(readFileSync(bad)));
    expect(existsSync(join(dir, 'models', 'tiny-vqgan', 'last.ckpt'))).toBe(false);

    const unknown = join(dir, 'weights.pt');
    writeFileSync(unknown, 'x');
    await expect(m.importLocal('tiny-vqgan', unknown)).rejects.toThrow(/--as/);
  });

  it('imports through the API only from inside the imports folder, and says nothing about outside paths', async () => {
    const m = manager();
    const imports = join(dir, 'imports');
    mkdirSync(imports, { recursive: true });
    // Outside the data folder: a real file and a path that does not exist.
    const outside = mkdtempSync(join(tmpdir(), 'fstudio-outside-'));
    try {
      writeFileSync(join(outside, 'config.json'), '{"secret": true}');
      writeFileSync(join(outside, 'last.ckpt'), weights);
      const refuse = async (name: string, as?: string) => {
        const err = await refusal(m.import('tiny-clip', name, as));
        expect(err).toBeInstanceOf(StudioError);
        expect(err.message).toContain(imports);
        return err;
      };
      for (const name of [
        '/etc/passwd',
        join(outside, 'config.json'),
        'C:\\Windows\\win.ini',
        '../x',
        'a/../../x',
        '..',
      ]) {
        const err = await refuse(name, 'config.json');
        expect(err.code).toBe('BadRequest');
      }
      // An outside path that exists and one that does not get the same answer.
      const real = await refuse(join(outside, 'config.json'), 'config.json');
      const none = await refuse(join(outside, 'nothing-here'), 'config.json');
      expect(none.message.replace('nothing-here', 'config.json')).toBe(real.message);
      // Links that lead out, to a file or a folder, and to something that exists or not: one answer.
      symlinkSync(join(outside, 'config.json'), join(imports, 'link.json'));
      symlinkSync(join(outside, 'nothing-here'), join(imports, 'dangling.json'));
      symlinkSync(outside, join(imports, 'dirlink'));
      mkdirSync(join(imports, 'mixed'));
      symlinkSync(join(outside, 'last.ckpt'), join(imports, 'mixed', 'last.ckpt'));
      writeFileSync(join(imports, 'mixed', 'model.yaml'), yaml);
      const a = await refuse('link.json', 'config.json');
      const b = await refuse('dangling.json', 'config.json');
      expect(a.code).toBe('BadRequest');
      expect(b.message.replace('dangling.json', 'link.json')).toBe(a.message);
      expect((await refuse('dirlink')).code).toBe('BadRequest');
      mkdirSync(join(imports, 'mixed2'));
      symlinkSync(join(outside, 'nothing-here'), join(imports, 'mixed2', 'last.ckpt'));
      for (const folder of ['mixed', 'mixed2']) {
        const err = await refusal(m.import('tiny-vqgan', folder));
        expect(err.code).toBe('BadRequest');
        expect(err.message).toContain('leads outside');
      }
      // Nothing was copied.
      expect(existsSync(join(dir, 'models', 'tiny-clip', 'config.json'))).toBe(false);
      expect(existsSync(join(dir, 'models', 'tiny-vqgan', 'last.ckpt'))).toBe(false);
      // A missing name inside the imports folder says where to put the files.
      const missing = await refuse('nope');
      expect(missing.code).toBe('NotFound');
      // A link that stays inside is fine.
      writeFileSync(join(imports, 'cfg.json'), config);
      symlinkSync(join(imports, 'cfg.json'), join(imports, 'inner.json'));
      const r = await m.import('tiny-clip', 'inner.json', 'config.json');
      expect(r.imported[0]).toMatchObject({ name: 'config.json', sha256: sha(config) });
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("rm also deletes the model's converted weights in the cache and counts them", async () => {
    const m = manager();
    const src = join(dir, 'last.ckpt');
    writeFileSync(src, weights);
    await m.importLocal('tiny-vqgan', src);
    const folderBytes = weights.length + statSync(join(dir, 'models', 'tiny-vqgan', STATE_FILE)).size;
    const cache = join(dir, 'cache', 'weights');
    mkdirSync(cache, { recursive: true });
    const key = createHash('sha256')
      .update(join(dir, 'models', 'tiny-vqgan'))
      .digest('hex')
      .slice(0, 16);
    const mine = [
      `tiny-vqgan.safetensors`,
      `vqgan-${key}.safetensors`,
      `folder-${key}.safetensors`,
      `.vqgan-${key}.safetensors.123.abcd.tmp`,
    ];
    const others = ['tiny-clip.safetensors', 'tiny-vqgan-2.safetensors', `vqgan-${'0'.repeat(16)}.safetensors`];
    for (const f of [...mine, ...others]) writeFileSync(join(cache, f), Buffer.alloc(1000));
    const { removedBytes } = await m.remove('tiny-vqgan');
    expect(removedBytes).toBe(folderBytes + mine.length * 1000);
    for (const f of mine) expect(existsSync(join(cache, f))).toBe(false);
    for (const f of others) expect(existsSync(join(cache, f))).toBe(true);
  });

  it('verify finds a damaged file; rm deletes the folder', async () => {
    const m = manager();
    await m.pull('tiny-clip').done;
    let report = await m.verify('tiny-clip');
    expect(report.ok).toBe(true);
    expect(report.files.map((f) => f.result)).toEqual(['ok', 'ok', 'missing']);

    const p = join(dir, 'models', 'tiny-clip', 'model.bin');
    const damaged = Buffer.from(weights);
    damaged[7] = damaged[7]! ^ 0xff;
    writeFileSync(p, damaged);
    report = await m.verify('tiny-clip');
    expect(report.ok).toBe(false);
    const f = report.files.find((x) => x.name === 'model.bin')!;
    expect(f).toMatchObject({ result: 'mismatch', sha256: sha(damaged), expected: sha(weights) });
    expect(f.message).toContain('Delete the model and download it again.');

    const { removedBytes } = await m.remove('tiny-clip');
    expect(removedBytes).toBeGreaterThanOrEqual(weights.length + config.length);
    expect(existsSync(join(dir, 'models', 'tiny-clip'))).toBe(false);
    expect((await m.info('tiny-clip')).state).toBe('missing');
  });

  it('records a hash on verify when nothing was recorded (a file put there by hand)', async () => {
    const m = manager();
    mkdirSync(join(dir, 'models', 'tiny-vqgan'), { recursive: true });
    writeFileSync(join(dir, 'models', 'tiny-vqgan', 'model.yaml'), yaml);
    expect((await m.info('tiny-vqgan')).files[1]!.verification).toBeNull();
    const report = await m.verify('tiny-vqgan');
    expect(report.files[1]).toMatchObject({ result: 'recorded', sha256: sha(yaml) });
    expect((await m.info('tiny-vqgan')).files[1]!.verification).toBe('recorded');
  });

  it('refuses to pull or remove a model another live process is downloading', async () => {
    const modelDir = join(dir, 'models', 'tiny-vqgan');
    mkdirSync(modelDir, { recursive: true });
    writeFileSync(join(modelDir, 'studio.lock'), `${process.ppid}\n`); // a live process that is not us
    const m = manager();
    const events: ModelProgress[] = [];
    m.on('progress', (p) => events.push(p));
    const err = await m.pull('tiny-vqgan').done.catch((e: unknown) => e as StudioError);
    expect((err as StudioError).code).toBe('Busy');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ modelId: 'tiny-vqgan', state: 'failed', message: (err as StudioError).message });
    expect((err as StudioError).message).toContain(`pid ${process.ppid}`);
    await expect(m.remove('tiny-vqgan')).rejects.toMatchObject({ code: 'Busy' });
    expect(server.requests).toHaveLength(0);

    // A lock left by a process that is gone is stale and taken over.
    writeFileSync(join(modelDir, 'studio.lock'), '999999999\n');
    expect((await m.pull('tiny-vqgan').done).state).toBe('installed');
    expect(existsSync(join(modelDir, 'studio.lock'))).toBe(false);
  });

  it('locates --model as a catalog id or a path, and says how to install a missing one', async () => {
    const m = manager();
    await expect(m.locate('tiny-vqgan')).rejects.toThrow(
      /\(tiny-vqgan\) is not installed: download it on the Models page \(or: fstudio models pull tiny-vqgan\)/,
    );
    await m.pull('tiny-vqgan').done;
    expect(await m.locate('tiny-vqgan')).toMatchObject({ path: join(dir, 'models', 'tiny-vqgan') });
    expect(await m.locate(dir)).toEqual({ path: dir, entry: null });
    await expect(m.locate(join(dir, 'nope'))).rejects.toThrow(/neither a catalog model .* nor an existing file/);
  });

  it('names the known models for an unknown id', async () => {
    expect(() => manager().pull('nope')).toThrow(
      /No model "nope" in the catalog. Known models: tiny-clip, tiny-vqgan, tiny-lm/,
    );
  });
});

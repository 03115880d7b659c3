// `fstudio models ...` end to end over commander, a real data folder and a local HTTP server.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mirrorsFrom, modelsTable, progressLine, registerModelsCommands } from '../../../src/main/cli/models.js';
import { parseCatalog, type Catalog } from '../../../src/main/studio/models/catalog.js';
import type { ModelInfo, ModelProgress } from '../../../src/shared/models.js';
import { ModelManager } from '../../../src/main/studio/models/manager.js';
import { serveBytes, startServer, type TestServer } from './http-server.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ckpt = randomBytes(200_000);
const yaml = Buffer.from('model: {}\n');

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void) {
    this.text += chunk.toString();
    cb();
  }
}

let dir: string;
let server: TestServer;
let catalog: Catalog;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fstudio-cli-models-'));
  server = await startServer({ '/b/last.ckpt': serveBytes(ckpt), '/b/model.yaml': serveBytes(yaml) });
  const base = {
    description: 'd',
    licence: 'MIT',
    homepage: 'https://example.org/',
    default: true,
  };
  catalog = parseCatalog({
    version: 1,
    models: [
      {
        ...base,
        id: 'tiny-vqgan',
        kind: 'vqgan',
        title: 'Tiny VQGAN',
        files: [
          {
            name: 'last.ckpt',
            urls: [server.url('/a/last.ckpt'), server.url('/b/last.ckpt')],
            size: { bytes: ckpt.length, approximate: false },
            sha256: sha(ckpt),
            verify: 'sha256',
          },
          { name: 'model.yaml', urls: [server.url('/b/model.yaml')], verify: 'record-on-first-download' },
        ],
      },
      {
        ...base,
        id: 'c',
        kind: 'clip',
        title: 'C',
        files: [{ name: 'x', urls: ['https://e.org/x'], verify: 'sha256', sha256: sha(yaml) }],
      },
      {
        ...base,
        id: 't',
        kind: 'text-lm',
        title: 'T',
        files: [{ name: 'x', urls: ['https://e.org/x'], verify: 'record-on-first-download' }],
      },
    ],
  });
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function fstudio(...args: string[]) {
  const out = new Sink();
  const err = new Sink();
  let code = -1;
  const program = new Command('fstudio').exitOverride().configureOutput({
    writeOut: (s) => out.write(s),
    writeErr: (s) => err.write(s),
  });
  registerModelsCommands(program, () => dir, {
    manager: (d, o) =>
      new ModelManager(d, {
        ...o,
        catalog,
        downloader: { backoffBaseMs: 1, backoffMaxMs: 2, progressIntervalMs: 0, freeSpace: async () => 1e12 },
      }),
    stdout: out,
    stderr: err,
    setExit: (c) => (code = c),
  });
  let thrown: Error | null = null;
  try {
    await program.parseAsync(['node', 'fstudio', ...args]);
  } catch (e) {
    thrown = e as Error;
  }
  return { out: out.text, err: err.text, code, thrown };
}

describe('fstudio models', () => {
  it('list, pull, verify, rm', async () => {
    let r = await fstudio('models', 'list', '--json');
    expect((JSON.parse(r.out) as ModelInfo[]).map((m) => [m.id, m.state])).toEqual([
      ['tiny-vqgan', 'missing'],
      ['c', 'missing'],
      ['t', 'missing'],
    ]);

    r = await fstudio('models', 'pull', 'tiny-vqgan');
    expect(r.thrown).toBeNull();
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^tiny-vqgan: installed, 20\d KB in .*tiny-vqgan \(recorded, not verified\)\n$/);
    // Not a terminal: one line per state change, the 404 mirror included.
    expect(r.err).toContain(`tiny-vqgan/last.ckpt: retrying — HTTP 404 Not Found — trying the next mirror`);
    expect(r.err).toContain('tiny-vqgan/last.ckpt: done');
    expect(r.err).toContain('tiny-vqgan/model.yaml: done');

    r = await fstudio('models', 'list');
    expect(r.out).toMatch(/tiny-vqgan \*\s+vqgan\s+installed\s+20\d KB\s+recorded, not verified\s+Tiny VQGAN/);

    r = await fstudio('models', 'verify', 'tiny-vqgan');
    expect(r.code).toBe(0);
    expect(r.out).toContain('ok        last.ckpt: matches the published SHA-256');
    expect(r.out).toContain('tiny-vqgan: ok');

    r = await fstudio('models', 'rm', 'tiny-vqgan', '--json');
    expect(JSON.parse(r.out)).toMatchObject({ id: 'tiny-vqgan' });
    expect(JSON.parse(r.out).removedBytes).toBeGreaterThanOrEqual(ckpt.length + yaml.length);
  });

  it('refuses an unknown id with the known ones, and a bad mirror URL', async () => {
    let r = await fstudio('models', 'pull', 'nope');
    expect(r.thrown?.message).toMatch(/No model "nope" in the catalog. Known models: tiny-vqgan, c, t/);
    r = await fstudio('models', 'pull', 'tiny-vqgan', '--mirror', 'ftp://x');
    expect(r.thrown?.message).toMatch(/http\(s\) base URL/);
    expect(server.requests).toHaveLength(0);
  });

  it('has help with examples', async () => {
    const r = await fstudio('models', 'pull', '--help');
    expect(r.out).toContain('Examples:');
    expect(r.out).toContain('fstudio models pull clip-vit-base-patch32');
  });
});

describe('progress line', () => {
  const p = (over: Partial<ModelProgress>, file: Partial<ModelProgress['files'][number]> = {}): ModelProgress => ({
    modelId: 'm',
    jobId: 'j',
    state: 'running',
    bytes: 500_000_000,
    total: 1_000_000_000,
    speed: 10_000_000,
    etaSeconds: 50,
    stalled: false,
    message: null,
    files: [
      {
        name: 'last.ckpt',
        state: 'downloading',
        bytes: 500_000_000,
        total: 1_000_000_000,
        speed: 10_000_000,
        etaSeconds: 50,
        url: 'u',
        mirror: 1,
        mirrors: 2,
        attempt: 1,
        maxAttempts: 5,
        message: null,
        ...file,
      },
    ],
    ...over,
  });
  it('shows percent, bytes, speed and ETA', () => {
    expect(progressLine(p({}), 200)).toBe(
      'm [##########..........]  50%  500 MB / 1.0 GB  10 MB/s  ETA 50 s  last.ckpt',
    );
  });
  it('says stalled, and what the retry is', () => {
    expect(progressLine(p({ stalled: true }, { state: 'stalled', message: 'no data for 10 s' }), 200)).toContain(
      'last.ckpt: stalled (no data for 10 s) — waiting, will retry',
    );
    expect(progressLine(p({}, { state: 'retrying', message: 'stalled — retrying (attempt 2/5)' }), 200)).toContain(
      'last.ckpt: stalled — retrying (attempt 2/5)',
    );
  });
  it('fits the terminal', () => {
    expect(progressLine(p({}), 40)).toHaveLength(40);
  });
});

describe('helpers', () => {
  it('reads mirrors from the flag and FSTUDIO_MODEL_MIRROR', () => {
    expect(mirrorsFrom(['http://a/'], { FSTUDIO_MODEL_MIRROR: 'https://b, https://c' })).toEqual([
      'http://a/',
      'https://b',
      'https://c',
    ]);
  });
  it('marks defaults in the table', () => {
    expect(modelsTable([])).toContain('* default of its kind');
  });
});

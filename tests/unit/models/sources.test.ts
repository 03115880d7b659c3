// Where a model's files come from: every server named with who runs it (the catalog's hosts), the
// publisher's first, third-party mirrors used only while the user allows them, and a model whose only
// source is a third party's refused with what to do when they are off. The local server stands in for
// both hosts: 127.0.0.1 as the publisher's, localhost as a third party's mirror.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StudioError } from '../../../src/shared/api.js';
import { sourceLabel, urlSourceLabel } from '../../../src/shared/models.js';
import { parseCatalog, type Catalog } from '../../../src/main/studio/models/catalog.js';
import { ModelManager } from '../../../src/main/studio/models/manager.js';
import { sourcesLine } from '../../../src/main/cli/models.js';
import { serveBytes, startServer, type TestServer } from './http-server.js';

const fast = { backoffBaseMs: 1, backoffMaxMs: 5, progressIntervalMs: 0, freeSpace: async () => 1e12, reserveBytes: 0 };
const weights = randomBytes(50_000);

let dir: string;
let server: TestServer;
let catalog: Catalog;
const mirrorUrl = (p: string) => server.url(p).replace('127.0.0.1', 'localhost');

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fstudio-sources-'));
  server = await startServer({ '/tp/w.bin': serveBytes(weights), '/tp/only.bin': serveBytes(weights) });
  const model = (id: string, kind: string, urls: string[]) => ({
    id,
    kind,
    title: id.toUpperCase(),
    default: true,
    description: 'test',
    licence: 'MIT',
    homepage: 'https://example.org/',
    files: [{ name: 'w.bin', urls, verify: 'record-on-first-download' }],
  });
  catalog = parseCatalog({
    version: 1,
    hosts: [
      { host: '127.0.0.1', name: 'the publisher', thirdParty: false, about: 'where the models are published' },
      { host: 'localhost', name: 'a mirror', thirdParty: true, about: 'run by someone else' },
    ],
    models: [
      // The publisher's server has lost the file; the mirror has it.
      model('a', 'clip', [server.url('/gone/w.bin'), mirrorUrl('/tp/w.bin')]),
      model('b', 'vqgan', [mirrorUrl('/tp/only.bin')]),
      model('c', 'text-lm', [server.url('/gone/c.bin')]),
    ],
  });
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('model sources', () => {
  it('names every server in the order tried, and which ones are turned off', async () => {
    let allowed = true;
    const m = new ModelManager(dir, { catalog, downloader: fast, thirdPartyMirrors: () => allowed });
    const { sources } = await m.info('a');
    expect(sources.map((s) => [s.host, s.thirdParty, s.enabled])).toEqual([
      ['127.0.0.1', false, true],
      ['localhost', true, true],
    ]);
    expect(sources.map(sourceLabel)).toEqual(['127.0.0.1 (the publisher)', 'localhost (third-party mirror)']);
    expect(urlSourceLabel(mirrorUrl('/tp/w.bin'), sources)).toBe('localhost (third-party mirror)');
    expect(sourcesLine(sources)).toBe('from 127.0.0.1 (the publisher); if that fails, localhost (third-party mirror).');
    allowed = false;
    const off = (await m.info('a')).sources;
    expect(off.find((s) => s.host === 'localhost')!.enabled).toBe(false);
    expect(sourcesLine(off)).toBe(
      'from 127.0.0.1 (the publisher). Not used: localhost (third-party mirrors are turned off).',
    );
  });

  it('uses a third-party mirror only while allowed', async () => {
    let allowed = false;
    const m = new ModelManager(dir, { catalog, downloader: fast, thirdPartyMirrors: () => allowed });
    const err = await m.pull('a').done.catch((e: unknown) => e as StudioError);
    expect((err as StudioError).code).toBe('DownloadFailed');
    expect(server.requests.some((r) => r.path.startsWith('/tp/'))).toBe(false);
    allowed = true;
    const info = await m.pull('a').done;
    expect(info.state).toBe('installed');
    expect(info.files[0]!.source).toBe(mirrorUrl('/tp/w.bin'));
  });

  it('says what to do when a model has no source but a third party, and they are off', async () => {
    const m = new ModelManager(dir, { catalog, downloader: fast, thirdPartyMirrors: () => false });
    const err = await m.pull('b').done.catch((e: unknown) => e as StudioError);
    expect(err).toBeInstanceOf(StudioError);
    expect((err as StudioError).code).toBe('NoMirror');
    expect((err as StudioError).message).toMatch(
      /^B can be downloaded only from a mirror, which is a third-party host .*turn them on \(Settings, Model downloads; or fstudio models pull --third-party-mirrors\)/,
    );
    expect(server.requests).toHaveLength(0);
  });

  it('refuses a catalog whose hosts leave one of its servers unnamed', () => {
    expect(() =>
      parseCatalog({
        version: 1,
        hosts: [{ host: 'example.org', name: 'x', thirdParty: false, about: 'x' }],
        models: ['clip', 'vqgan', 'text-lm'].map((kind) => ({
          id: kind,
          kind,
          title: kind,
          default: true,
          description: 'd',
          licence: 'MIT',
          homepage: 'https://example.org/',
          files: [{ name: 'w', urls: ['https://elsewhere.example/w'], verify: 'record-on-first-download' }],
        })),
      }),
    ).toThrow(/the host of https:\/\/elsewhere\.example\/w is not in "hosts"/);
  });
});

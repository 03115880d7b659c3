// models/catalog.json against its schema, and the schema against catalogs it must refuse.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  builtinCatalog,
  defaultModel,
  findModel,
  ModelKind,
  parseCatalog,
} from '../../../src/main/studio/models/catalog.js';

const raw = JSON.parse(readFileSync(new URL('../../../models/catalog.json', import.meta.url), 'utf8')) as {
  models: Record<string, unknown>[];
};

describe('models/catalog.json', () => {
  it('validates against the schema', () => {
    expect(() => parseCatalog(raw)).not.toThrow();
    expect(builtinCatalog().models.length).toBe(raw.models.length);
  });

  it('has one default per kind, and the defaults the studio expects', () => {
    const c = builtinCatalog();
    for (const kind of ModelKind.options) expect(findModel(c, defaultModel(c, kind).id)).toBeDefined();
    expect(defaultModel(c, 'clip').id).toBe('clip-vit-base-patch32');
    expect(defaultModel(c, 'vqgan').id).toBe('vqgan_imagenet_f16_16384');
    expect(defaultModel(c, 'text-lm').id).toBe('smollm2-135m-instruct');
  });

  it("lists the studio's models with their real files", () => {
    const c = builtinCatalog();
    const ids = c.models.map((m) => m.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        'clip-vit-base-patch32',
        'clip-vit-base-patch16',
        'clip-vit-large-patch14',
        'vqgan_imagenet_f16_16384',
        'vqgan_imagenet_f16_1024',
        'wikiart_16384',
        'gpt2',
        'distilgpt2',
        'smollm2-135m-instruct',
        'smollm2-360m-instruct',
        'qwen2.5-0.5b-instruct',
      ]),
    );
    const clip = findModel(c, 'clip-vit-base-patch32')!;
    expect(clip.files.map((f) => f.name)).toEqual(['config.json', 'tokenizer.json', 'pytorch_model.bin']);
    expect(clip.files[2]!.urls[0]).toBe(
      'https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/pytorch_model.bin',
    );
    expect(clip.files[2]!.verify).toBe('hf-linked-etag');
    const vq = findModel(c, 'vqgan_imagenet_f16_16384')!;
    expect(vq.files.find((f) => f.name === 'last.ckpt')!.urls[0]).toBe(
      'https://heibox.uni-heidelberg.de/d/a7530b09fed84f80a887/files/?p=%2Fckpts%2Flast.ckpt&dl=1',
    );
    // No hash is published for these files: none may be claimed.
    for (const m of c.models) for (const f of m.files) expect(f.sha256).toBeUndefined();
  });

  it('gives a size for every file, so every model shows one, and names the server of every URL', () => {
    const c = builtinCatalog();
    for (const m of c.models) for (const f of m.files) expect(f.size, `${m.id}/${f.name}`).toBeDefined();
    const hosts = new Map(c.hosts.map((h) => [h.host, h]));
    for (const u of c.models.flatMap((m) => m.files.flatMap((f) => f.urls)))
      expect(hosts.has(new URL(u).hostname), u).toBe(true);
    // Mirrors run by others than the publisher are marked, so the user can turn them off.
    expect(hosts.get('hf-mirror.com')!.thirdParty).toBe(true);
    expect(hosts.get('huggingface.co')!.thirdParty).toBe(false);
    expect(hosts.get('heibox.uni-heidelberg.de')!.thirdParty).toBe(false);
    // The recommended set (one default per kind) is about 1.8 GB; Generate's pair about 1.6 GB.
    const size = (ids: string[]) =>
      ids.reduce((a, id) => a + findModel(c, id)!.files.reduce((b, f) => b + f.size!.bytes, 0), 0);
    const all = size(ModelKind.options.map((k) => defaultModel(c, k).id));
    expect(all / 1e9).toBeCloseTo(1.79, 1);
    expect(size([defaultModel(c, 'clip').id, defaultModel(c, 'vqgan').id]) / 1e9).toBeCloseTo(1.59, 1);
  });

  it('says mirrors are wanted where only one host is known', () => {
    for (const m of builtinCatalog().models.filter((x) => x.kind === 'vqgan'))
      expect(m.notes).toMatch(/mirrors are wanted/);
  });
});

describe('catalog schema', () => {
  const model = (over: Record<string, unknown> = {}) => ({
    id: 'a',
    kind: 'clip',
    title: 'A',
    default: true,
    description: 'd',
    licence: 'MIT',
    homepage: 'https://example.org/',
    files: [{ name: 'w.bin', urls: ['https://example.org/w.bin'], verify: 'record-on-first-download' }],
    ...over,
  });
  const catalog = (...models: unknown[]) => ({
    version: 1,
    models: [...models, model({ id: 'v', kind: 'vqgan' }), model({ id: 't', kind: 'text-lm' })],
  });

  it('accepts a minimal catalog', () => {
    expect(() => parseCatalog(catalog(model()))).not.toThrow();
  });
  it.each([
    ['a duplicate id', catalog(model(), model({ default: false })), /duplicate model id "a"/],
    ['two defaults of a kind', catalog(model(), model({ id: 'b' })), /clip has 2 \(a, b\)/],
    ['no default of a kind', catalog(model({ default: false })), /clip has 0 \(none\)/],
    [
      'a file name that leaves the folder',
      catalog(model({ files: [{ name: '../x', urls: ['https://e.org/x'], verify: 'record-on-first-download' }] })),
      /relative path/,
    ],
    [
      'verify sha256 without a hash',
      catalog(model({ files: [{ name: 'x', urls: ['https://e.org/x'], verify: 'sha256' }] })),
      /verify is "sha256" exactly when/,
    ],
    [
      'a hash that is not 64 hex digits',
      catalog(model({ files: [{ name: 'x', urls: ['https://e.org/x'], verify: 'sha256', sha256: 'abc' }] })),
      /64 lower-case hex/,
    ],
    [
      'a non-http mirror',
      catalog(model({ files: [{ name: 'x', urls: ['file:///etc/passwd'], verify: 'record-on-first-download' }] })),
      /http\(s\)/,
    ],
    ['an id that is a path', catalog(model({ id: '../evil' })), /ids are lower-case/],
  ])('refuses %s', (_what, json, message) => {
    expect(() => parseCatalog(json)).toThrow(message);
  });

  it('marks every plain http:// download in the built-in catalog as unverified over http', () => {
    for (const m of builtinCatalog().models) {
      const plain = m.files.flatMap((f) => f.urls).filter((u) => u.startsWith('http://'));
      if (plain.length) expect(m.notes ?? '', m.id).toMatch(/unverified over http/);
    }
  });
});

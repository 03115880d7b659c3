// Argument validation as every transport applies it: the zod schemas of src/shared/api.ts.
import { describe, expect, it } from 'vitest';
import { apiCalls, type CallName } from '../../../src/shared/api.js';

const ok = (name: CallName, args: unknown) =>
  expect(apiCalls[name].args.safeParse(args).success, JSON.stringify(args)).toBe(true);
const bad = (name: CallName, args: unknown, path?: string) => {
  const r = apiCalls[name].args.safeParse(args);
  expect(r.success, `${name} ${JSON.stringify(args)?.slice(0, 80)} should be refused`).toBe(false);
  if (path !== undefined && !r.success) expect(r.error.issues.map((i) => i.path.join('.'))).toContain(path);
};

describe('api argument schemas', () => {
  it('ids must be positive integers', () => {
    ok('getItem', { id: 1 });
    for (const id of [0, -1, 1.5, '1', null, Number.NaN, Infinity]) bad('getItem', { id }, 'id');
    bad('getItem', {}, 'id');
    bad('deleteItems', { ids: [] }, 'ids');
    bad('deleteItems', { ids: [1, -2] }, 'ids.1');
    bad('deleteItems', { ids: Array.from({ length: 10_001 }, (_, i) => i + 1) }, 'ids');
  });

  it('unknown keys are refused, not ignored', () => {
    bad('getItem', { id: 1, extra: true });
    bad('galleryQuery', { text: 'x', where: '1=1' });
    bad('updateSettings', { dataDir: '/elsewhere' }); // the data folder is not a patchable setting
    bad('getSettings', { x: 1 });
    bad('importImages', { files: [{ name: 'a.png', data: new Uint8Array(1) }], path: '/etc' });
  });

  it('oversize strings and lists are refused', () => {
    ok('setNote', { id: 1, note: 'x'.repeat(10_000) });
    bad('setNote', { id: 1, note: 'x'.repeat(10_001) }, 'note');
    bad('galleryQuery', { text: 'x'.repeat(501) }, 'text');
    bad('setTags', { id: 1, tags: ['x'.repeat(65)] }, 'tags.0');
    bad('setTags', { id: 1, tags: [''] }, 'tags.0');
    bad('setTags', { id: 1, tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }, 'tags');
    bad('undoDelete', { undoToken: 'x'.repeat(201) }, 'undoToken');
    bad('undoDelete', { undoToken: '' }, 'undoToken');
    bad('importImages', { files: [{ name: 'x'.repeat(1025), data: new Uint8Array(1) }] }, 'files.0.name');
    bad('importImages', { files: [] }, 'files');
  });

  it('types and enums are checked', () => {
    bad('importImages', { files: [{ name: 'a.png', data: 'aGVsbG8=' }] }, 'files.0.data');
    bad('importImages', { files: [{ name: 'a.png', data: [1, 2, 3] }] }, 'files.0.data');
    ok('importImages', { files: [{ name: 'a.png', data: Buffer.from([1]) }] }); // a Buffer is a Uint8Array
    bad('galleryQuery', { kind: 'video' }, 'kind');
    bad('galleryQuery', { sort: 'random' }, 'sort');
    bad('galleryQuery', { limit: 0 }, 'limit');
    bad('galleryQuery', { limit: 501 }, 'limit');
    bad('galleryQuery', { offset: -1 }, 'offset');
    bad('galleryQuery', { from: 1.5 }, 'from');
    bad('updateSettings', { theme: 'neon' }, 'theme');
    bad('updateSettings', { preferredProvider: 'tpu' }, 'preferredProvider');
    bad('setFavourite', { id: 1, favourite: 'yes' }, 'favourite');
    bad('getSystemInfo', { probeProviders: 1 }, 'probeProviders');
  });

  it('fills defaults so handlers see complete arguments', () => {
    expect(apiCalls.galleryQuery.args.parse({})).toEqual({ sort: 'newest', offset: 0, limit: 100 });
    expect(apiCalls.getSystemInfo.args.parse({})).toEqual({ probeProviders: false });
  });
});

// modelImport copies the file it checked: a link (or a parent folder) swapped for one that leads
// outside the imports folder between the check and the copy is not followed. The swap is made by a
// hook on node:fs/promises that runs just before the first open or copy of a file in the imports folder.
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import type * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const hook: { under: string | null; run: (() => void) | null } = { under: null, run: null };
/** Runs the hook once, when `p` is a path in the watched folder. */
function beforeUse(p: unknown): void {
  if (hook.run && hook.under && typeof p === 'string' && p.startsWith(hook.under)) {
    const run = hook.run;
    hook.run = null;
    run();
  }
}
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof fsp>();
  return {
    ...real,
    open: (p: Parameters<typeof real.open>[0], ...rest: unknown[]) => {
      beforeUse(p);
      return (real.open as (...a: unknown[]) => unknown)(p, ...rest);
    },
    copyFile: (p: Parameters<typeof real.copyFile>[0], ...rest: unknown[]) => {
      beforeUse(p);
      return (real.copyFile as (...a: unknown[]) => unknown)(p, ...rest);
    },
  };
});

const { StudioError } = await import('../../../src/shared/api.js');
const { parseCatalog } = await import('../../../src/main/studio/models/catalog.js');
const { ModelManager } = await import('../../../src/main/studio/models/manager.js');

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const config = Buffer.from('{"hidden_size": 8}');
const secret = Buffer.from('{"secret": true}');
const catalog = parseCatalog({
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
      files: [{ name: 'config.json', urls: ['https://example.org/config.json'], verify: 'record-on-first-download' }],
    },
    // The catalog wants one default model of each kind.
    ...(['vqgan', 'text-lm'] as const).map((kind) => ({
      id: `tiny-${kind}`,
      kind,
      title: kind,
      default: true,
      description: 'test',
      licence: 'MIT',
      homepage: 'https://example.org/',
      files: [{ name: 'model.bin', urls: ['https://example.org/model.bin'], verify: 'record-on-first-download' }],
    })),
  ],
});

let dir: string;
let outside: string;
let imports: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fstudio-import-race-'));
  outside = mkdtempSync(join(tmpdir(), 'fstudio-outside-'));
  imports = join(dir, 'imports');
  mkdirSync(imports, { recursive: true });
  writeFileSync(join(outside, 'config.json'), secret);
  hook.under = imports;
});
afterEach(() => {
  hook.run = null;
  rmSync(dir, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

const imported = () => join(dir, 'models', 'tiny-clip', 'config.json');

describe('modelImport between the check and the copy', () => {
  it('copies the real path it checked, not a link swapped to lead outside', async () => {
    writeFileSync(join(imports, 'cfg.json'), config);
    symlinkSync(join(imports, 'cfg.json'), join(imports, 'inner.json'));
    let swapped = false;
    hook.run = () => {
      unlinkSync(join(imports, 'inner.json'));
      symlinkSync(join(outside, 'config.json'), join(imports, 'inner.json'));
      swapped = true;
    };
    const m = new ModelManager(dir, { catalog });
    const r = await m.import('tiny-clip', 'inner.json', 'config.json');
    expect(swapped).toBe(true);
    expect(r.imported[0]).toMatchObject({ name: 'config.json', sha256: sha(config) });
    expect(readFileSync(imported()).equals(config)).toBe(true);
  });

  it('refuses a file whose parent folder was swapped for a link that leads outside', async () => {
    mkdirSync(join(imports, 'gpt'));
    writeFileSync(join(imports, 'gpt', 'config.json'), config);
    let swapped = false;
    hook.run = () => {
      renameSync(join(imports, 'gpt'), join(imports, 'gpt-old'));
      symlinkSync(outside, join(imports, 'gpt'));
      swapped = true;
    };
    const m = new ModelManager(dir, { catalog });
    const err = await m.import('tiny-clip', 'gpt').then(
      () => null,
      (e: unknown) => e,
    );
    expect(swapped).toBe(true);
    expect(err).toBeInstanceOf(StudioError);
    expect((err as InstanceType<typeof StudioError>).code).toBe('BadRequest');
    expect((err as Error).message).toContain('leads outside');
    expect(existsSync(imported())).toBe(false);
  });
});

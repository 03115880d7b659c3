// modelImport through the studio's API handlers, as `curl /api/modelImport` reaches them: no path
// outside the data folder can be read, and the answer never says whether one exists.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { apiCalls, StudioError } from '../../../src/shared/api.js';
import { openStudio, type StudioService } from '../../../src/main/studio/index.js';

let dataDir: string;
let outside: string;
let s: StudioService;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fstudio-api-import-'));
  outside = mkdtempSync(join(tmpdir(), 'fstudio-outside-'));
  s = await openStudio({ dataDir });
});
afterEach(async () => {
  await s.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

/** The error the call is refused with; a call that succeeds fails the test. */
async function refused(args: unknown): Promise<StudioError> {
  const parsed = apiCalls.modelImport.args.parse(args);
  return s.handlers.modelImport(parsed).then(
    () => {
      throw new Error(`modelImport ${JSON.stringify(args)} was accepted`);
    },
    (e: unknown) => e as StudioError,
  );
}

describe('modelImport over the API', () => {
  it('refuses /etc/passwd, absolute paths, .. and links that lead outside the imports folder', async () => {
    const imports = join(dataDir, 'imports');
    mkdirSync(imports, { recursive: true });
    writeFileSync(join(outside, 'config.json'), '{}');
    symlinkSync(join(outside, 'config.json'), join(imports, 'link.json'));
    const cases = ['/etc/passwd', join(outside, 'config.json'), join(outside, 'missing.json'), '../x', 'link.json'];
    const messages: string[] = [];
    for (const path of cases) {
      const err = await refused({ id: 'gpt2', path, as: 'config.json' });
      expect(err, path).toBeInstanceOf(StudioError);
      expect(err.code, path).toBe('BadRequest');
      expect(err.message, path).toContain(imports);
      messages.push(err.message.replace(path, '<name>'));
    }
    // An outside file that exists and one that does not: the same answer.
    expect(messages[1]).toBe(messages[2]);
    const gpt2 = (await s.handlers.modelsList({})).find((m) => m.id === 'gpt2')!;
    expect(gpt2.files.find((f) => f.name === 'config.json')!.state).toBe('missing');
  });

  it('imports a file put in the imports folder', async () => {
    mkdirSync(join(dataDir, 'imports', 'gpt2'), { recursive: true });
    writeFileSync(join(dataDir, 'imports', 'gpt2', 'config.json'), '{"n_layer": 12}');
    const r = await s.handlers.modelImport({ id: 'gpt2', path: 'gpt2' });
    expect(r.imported.map((f) => f.name)).toEqual(['config.json']);
  });
});

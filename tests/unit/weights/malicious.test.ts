// Hostile files: a pickle that names os.system (and friends) loads nothing, says which global it
// named, and runs nothing (the command would have created the marker file).
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { convertToSafetensors, loadCheckpoint, openCheckpoint } from '../../../src/main/engine/weights/load.js';
import { DangerousGlobalError, PyObject, unpickle } from '../../../src/main/engine/weights/torch-pickle.js';
import { TorchCheckpoint } from '../../../src/main/engine/weights/torch-zip.js';
import { Pickle, pickleTensorDict, writeTorchZip } from '../../fixtures/weights/torch-zip-writer.js';
import { expected, fixture, tempDir } from './helpers.js';

const MARKER = expected.marker;
const CASES: [file: string, global: string][] = [
  ['malicious.ckpt', 'posix.system'],
  ['malicious.pkl', 'posix.system'],
  ['malicious-eval.pkl', 'builtins.eval'],
  ['malicious-popen.pt', 'subprocess.Popen'],
];

describe('malicious pickles', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    rmSync(MARKER, { force: true });
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it.each(CASES)('%s loads nothing and names %s', async (file, global) => {
    const err = await loadCheckpoint(fixture(file)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DangerousGlobalError);
    expect((err as DangerousGlobalError).global).toBe(global);
    expect((err as Error).message).toContain(`dangerous global '${global}'`);
    expect((err as Error).message).toContain(file);
    expect(existsSync(MARKER)).toBe(false);
  });

  it('every entry point refuses: open, load, convert (no output file is left)', async () => {
    const dst = path.join(tmp.dir, 'out.safetensors');
    await expect(openCheckpoint(fixture('malicious.ckpt'))).rejects.toThrow(DangerousGlobalError);
    await expect(TorchCheckpoint.open(fixture('malicious.ckpt'))).rejects.toThrow(DangerousGlobalError);
    await expect(convertToSafetensors(fixture('malicious.ckpt'), dst)).rejects.toThrow(/posix\.system/);
    expect(readdirSync(tmp.dir)).toEqual([]);
    expect(existsSync(MARKER)).toBe(false);
  });

  it('refuses a dangerous global named but never called, and one named through INST (protocol 0)', () => {
    const named = new Pickle().proto(2).global('os', 'system').stop().bytes();
    expect(() => unpickle(named)).toThrow(/dangerous global 'os\.system'/);
    const inst = new Pickle()
      .mark()
      .str('echo pwned')
      .op(0x69)
      .raw(new TextEncoder().encode('os\nsystem\n'))
      .stop()
      .bytes();
    expect(() => unpickle(inst)).toThrow(/dangerous global 'os\.system'/);
    const stackGlobal = new Pickle().proto(4).str('builtins').str('exec').op(0x93).stop().bytes();
    expect(() => unpickle(stackGlobal)).toThrow(/dangerous global 'builtins\.exec'/);
    const py2 = new Pickle().proto(2).global('__builtin__', 'open').stop().bytes();
    expect(() => unpickle(py2)).toThrow(/dangerous global '__builtin__\.open'/);
  });

  it('a bare pickle file is read far enough to find a dangerous global past its first 64 KiB', async () => {
    const file = path.join(tmp.dir, 'long.pkl');
    const p = new Pickle().proto(2).str('x'.repeat(100_000)).op(0x30).global('os', 'system');
    writeFileSync(file, p.mark().str(`touch ${MARKER}`).op(0x74).reduce().stop().bytes());
    await expect(loadCheckpoint(file)).rejects.toThrow(/dangerous global 'os\.system' \(at byte 100008\)/);
    writeFileSync(file, new Pickle().proto(2).emptyDict().stop().bytes());
    await expect(loadCheckpoint(file)).rejects.toThrow(/a bare pickle \(dict\(0\)\), not a torch zip checkpoint/);
    expect(existsSync(MARKER)).toBe(false);
  });

  it('globals that legitimate hyper-parameters use are tolerated as inert placeholders', () => {
    for (const [m, n] of [
      ['functools', 'partial'],
      ['types', 'SimpleNamespace'],
      ['builtins', 'getattr'],
      ['argparse', 'Namespace'],
      ['omegaconf.dictconfig', 'DictConfig'],
    ]) {
      const p = new Pickle().proto(2).global(m!, n!).mark().str('arg').op(0x74).reduce().stop();
      expect((unpickle(p.bytes()) as PyObject).cls).toBe(`${m}.${n}`);
    }
  });

  it('a global off the deny-list is still never run: calling it yields an inert record', () => {
    // Not on any list, so nothing refuses it; it still cannot do anything.
    const p = new Pickle()
      .proto(2)
      .global('somepackage.shell', 'run')
      .mark()
      .str(`touch ${MARKER}`)
      .op(0x74)
      .reduce()
      .stop();
    const v = unpickle(p.bytes());
    expect(v).toBeInstanceOf(PyObject);
    expect([(v as PyObject).cls, (v as PyObject).args]).toEqual(['somepackage.shell.run', [`touch ${MARKER}`]]);
    expect(existsSync(MARKER)).toBe(false);
  });

  it('a torch zip written from TS whose state dict sits beside os.system is refused as a whole', async () => {
    const file = path.join(tmp.dir, 'evil.ckpt');
    const p = new Pickle().proto(2).emptyDict().mark().str('state_dict');
    pickleTensorDict(p, [{ name: 'w', dtype: 'F32', key: '0', storageNumel: 2, shape: [2] }]);
    p.str('x').global('os', 'system').mark().str(`touch ${MARKER}`).op(0x74).reduce().setitems().stop();
    writeTorchZip(file, 'archive', p.bytes(), [['0', new Uint8Array(8)]]);
    await expect(loadCheckpoint(file)).rejects.toThrow(/dangerous global 'os\.system'/);
    expect(existsSync(MARKER)).toBe(false);
  });
});

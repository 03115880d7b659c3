// Format sniffing, conversion to the safetensors cache, and the state-dict assertion.
import { copyFileSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  convertToSafetensors,
  detectFormat,
  loadCheckpoint,
  openCached,
} from '../../../src/main/engine/weights/load.js';
import { SafetensorsReader } from '../../../src/main/engine/weights/safetensors.js';
import {
  assertStateDict,
  composeMaps,
  prefixMap,
  renameKeys,
  splitDim0,
  StateDictMismatchError,
  transpose2d,
} from '../../../src/main/engine/weights/state-dict.js';
import { toFloat32 } from '../../../src/main/engine/weights/tensor.js';
import { expected, expectMatchesTorch, fixture, tempDir } from './helpers.js';

describe('loadCheckpoint and conversion', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());
  const at = (name: string) => path.join(tmp.dir, name);

  it('sniffs the format from the bytes, not the extension', async () => {
    copyFileSync(fixture('lightning.ckpt'), at('misnamed.safetensors'));
    copyFileSync(fixture('torch-written.safetensors'), at('misnamed.ckpt'));
    expect(await detectFormat(at('misnamed.safetensors'))).toBe('torch-zip');
    expect(await detectFormat(at('misnamed.ckpt'))).toBe('safetensors');
    expect(await detectFormat(fixture('legacy.pt'))).toBe('pickle');
    expectMatchesTorch(await loadCheckpoint(at('misnamed.safetensors')), expected.fixtures['lightning.ckpt']!);
    expectMatchesTorch(await loadCheckpoint(at('misnamed.ckpt')), expected.fixtures['torch-written.safetensors']!);
  });

  it('recognises a safetensors file cut inside its header, so the reader says it is truncated', async () => {
    const whole = readFileSync(fixture('torch-written.safetensors'));
    const headerEnd = 8 + Number(whole.readBigUInt64LE(0));
    for (const cut of [9, 10, 40, headerEnd - 1]) {
      writeFileSync(at('cut.safetensors'), whole.subarray(0, cut));
      expect(await detectFormat(at('cut.safetensors')), `cut at ${cut}`).toBe('safetensors');
      await expect(loadCheckpoint(at('cut.safetensors')), `cut at ${cut}`).rejects.toThrow(/file is truncated/);
    }
    // Eight bytes of length then `{` and anything but JSON's next character is still not safetensors.
    const fake = Buffer.concat([whole.subarray(0, 8), Buffer.from('{\x01\x02')]);
    writeFileSync(at('fake.bin'), fake);
    expect(await detectFormat(at('fake.bin'))).toBe('unknown');
  });

  it('says what an empty or unknown file is', async () => {
    writeFileSync(at('empty.bin'), '');
    writeFileSync(at('text.bin'), 'hello, world');
    await expect(loadCheckpoint(at('empty.bin'))).rejects.toThrow(/empty file/);
    await expect(loadCheckpoint(at('text.bin'))).rejects.toThrow(/unknown weight format/);
  });

  it('converts a .ckpt to safetensors preserving every tensor, with provenance metadata', async () => {
    const dst = at('lightning.safetensors');
    const r = await convertToSafetensors(fixture('lightning.ckpt'), dst);
    expect(r.tensors).toBe(Object.keys(expected.fixtures['lightning.ckpt']!).length);
    expect(r.bytes).toBe(statSync(dst).size);
    expectMatchesTorch(await loadCheckpoint(dst), expected.fixtures['lightning.ckpt']!);
    const st = await SafetensorsReader.open(dst);
    expect(st.metadata).toMatchObject({
      format: 'pt',
      converted_from: 'torch-zip',
      source_size: String(statSync(fixture('lightning.ckpt')).size),
      'source_pytorch-lightning_version': '1.9.0',
    });
    await st.close();
  });

  it('renames and filters while loading', async () => {
    const sd = await loadCheckpoint(fixture('pytorch_model.bin'), {
      rename: prefixMap([
        ['vision_model.', 'visual.'],
        ['text_model.', null],
      ]),
      filter: (n) => n !== 'logit_scale',
    });
    expect([...sd.keys()].sort()).toEqual([
      'visual.embeddings.class_embedding',
      'visual.embeddings.patch_embedding.weight',
      'visual.encoder.layers.0.self_attn.q_proj.bias',
      'visual.encoder.layers.0.self_attn.q_proj.weight',
      'visual_projection.weight',
    ]);
  });

  it('openCached converts once, then reuses the cache until the source changes', async () => {
    const src = at('model.ckpt');
    const cache = at('cache/clip/model.safetensors'); // folders created on demand
    copyFileSync(fixture('lightning.ckpt'), src);

    const first = await openCached(src, cache);
    expect([first.fromCache, first.converted]).toEqual([true, true]);
    expect(first.source.format).toBe('safetensors');
    await first.source.close();
    const mtime = statSync(cache).mtimeMs;

    const second = await openCached(src, cache);
    expect([second.fromCache, second.converted]).toEqual([true, false]);
    expect(statSync(cache).mtimeMs).toBe(mtime);
    expect(second.source.names().length).toBe(Object.keys(expected.fixtures['lightning.ckpt']!).length);
    await second.source.close();

    utimesSync(src, new Date(), new Date(Date.now() + 5000));
    const third = await openCached(src, cache);
    expect(third.converted).toBe(true);
    await third.source.close();

    const direct = await openCached(fixture('torch-written.safetensors'), at('unused.safetensors'));
    expect([direct.fromCache, direct.converted, direct.source.path]).toEqual([
      false,
      false,
      fixture('torch-written.safetensors'),
    ]);
    await direct.source.close();
  });
});

describe('assertStateDict and name maps', () => {
  it('passes when names and shapes match exactly', () => {
    expect(() =>
      assertStateDict(
        { a: [2, 3], b: [] },
        new Map([
          ['a', [2, 3]],
          ['b', []],
        ]),
      ),
    ).not.toThrow();
  });

  it('lists every missing, unexpected and mis-shaped name in one error', () => {
    const actual = new Map([
      ['a', { shape: [2, 3] }],
      ['b', { shape: [4] }],
      ['extra.weight', { shape: [1] }],
      ['loss.disc', { shape: [1] }],
    ]);
    let err: unknown;
    try {
      assertStateDict({ a: [3, 2], b: [4], c: [5] }, actual, {
        ignore: (n) => n.startsWith('loss.'),
        what: 'vqgan.ckpt',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateDictMismatchError);
    const e = err as StateDictMismatchError;
    expect(e.missing).toEqual(['c']);
    expect(e.unexpected).toEqual(['extra.weight']);
    expect(e.misshaped).toEqual([{ name: 'a', expected: [3, 2], actual: [2, 3] }]);
    expect(e.message).toBe(
      [
        'vqgan.ckpt does not match the model:',
        '  missing (1):',
        '    c',
        '  unexpected (1):',
        '    extra.weight',
        '  wrong shape (1):',
        '    a: expected [3, 2], got [2, 3]',
      ].join('\n'),
    );
  });

  it('renameKeys refuses two names mapped to one; composeMaps drops on null', () => {
    const m = new Map([
      ['x.a', 1],
      ['y.a', 2],
    ]);
    expect(() =>
      renameKeys(
        m,
        prefixMap([
          ['x.', ''],
          ['y.', ''],
        ]),
      ),
    ).toThrow(/sends both 'x\.a' and 'y\.a' to 'a'/);
    const map = composeMaps(prefixMap([['model.', '']]), (n) => (n.startsWith('loss.') ? null : n));
    expect([map('model.encoder.w'), map('model.loss.d'), map('loss.d')]).toEqual(['encoder.w', null, null]);
  });

  it('splitDim0 and transpose2d reshape tensors for name tables (OpenAI in_proj_weight, proj)', () => {
    const f32 = (a: number[]) => new Uint8Array(new Float32Array(a).buffer);
    const t = { dtype: 'F32' as const, shape: [3, 2], data: f32([1, 2, 3, 4, 5, 6]) };
    expect(splitDim0(t, 3).map((p) => [p.shape, Array.from(toFloat32(p))])).toEqual([
      [
        [1, 2],
        [1, 2],
      ],
      [
        [1, 2],
        [3, 4],
      ],
      [
        [1, 2],
        [5, 6],
      ],
    ]);
    expect(() => splitDim0(t, 2)).toThrow(/cannot split shape \[3, 2\] into 2/);
    const tt = transpose2d(t);
    expect([tt.shape, Array.from(toFloat32(tt))]).toEqual([
      [2, 3],
      [1, 3, 5, 2, 4, 6],
    ]);
  });
});

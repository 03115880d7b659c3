// Checkpoints written by real torch.save load to exactly what PyTorch recorded in expected.json.
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../../src/main/engine/weights/load.js';
import { toFloat32 } from '../../../src/main/engine/weights/tensor.js';
import { PyObject, type TorchDType } from '../../../src/main/engine/weights/torch-pickle.js';
import { TorchCheckpoint } from '../../../src/main/engine/weights/torch-zip.js';
import { expected, expectMatchesTorch, fixture } from './helpers.js';

describe('torch zip checkpoints written by torch.save', () => {
  it('a Lightning .ckpt loads its state_dict exactly: dtypes, shapes, bytes, views copied contiguous', async () => {
    const sd = await loadCheckpoint(fixture('lightning.ckpt'));
    expectMatchesTorch(sd, expected.fixtures['lightning.ckpt']!);
    // The views PyTorch saved non-contiguous really were (so the copies above were exercised).
    const want = expected.fixtures['lightning.ckpt']!;
    expect(['transposed.weight', 'expanded', 'shared.col'].map((n) => want[n]!.contiguous)).toEqual([
      false,
      false,
      false,
    ]);
    expect(Array.from(toFloat32(sd.get('shared.col')!))).toEqual([2, 7, 12, 17]);
    expect(Array.from(toFloat32(sd.get('expanded')!))).toEqual([1.5, -2, 3.25, 1.5, -2, 3.25]);
  });

  it('a pytorch_model.bin (archive folder named after the file, a Parameter inside) loads exactly', async () => {
    const sd = await loadCheckpoint(fixture('pytorch_model.bin'));
    expectMatchesTorch(sd, expected.fixtures['pytorch_model.bin']!);
    // in the order torch.save wrote them (reads run concurrently; the order must not depend on it)
    expect([...sd.keys()]).toEqual([
      'vision_model.embeddings.class_embedding',
      'vision_model.embeddings.patch_embedding.weight',
      'vision_model.encoder.layers.0.self_attn.q_proj.weight',
      'vision_model.encoder.layers.0.self_attn.q_proj.bias',
      'text_model.embeddings.position_ids',
      'logit_scale',
      'visual_projection.weight',
    ]);
  });

  it('a zip whose entries are deflated loads the same tensors', async () => {
    expectMatchesTorch(await loadCheckpoint(fixture('deflated.pt')), expected.fixtures['deflated.pt']!);
  });

  it('converts F16 and BF16 to F32 on request', async () => {
    const sd = await loadCheckpoint(fixture('lightning.ckpt'), { float32: true });
    for (const t of sd.values()) expect(t.dtype).toBe('F32');
    expect(Array.from(toFloat32(sd.get('scale.bf16')!))).toEqual(
      expected.fixtures['lightning.ckpt']!['scale.bf16']!.first,
    );
    expect(Array.from(toFloat32(sd.get('norm.weight')!))).toEqual(
      expected.fixtures['lightning.ckpt']!['norm.weight']!.first,
    );
  });

  it('keeps Lightning metadata and hyper-parameter objects as inert records', async () => {
    const ck = await TorchCheckpoint.open(fixture('lightning.ckpt'));
    try {
      expect(ck.metadata).toMatchObject({
        archive: 'lightning',
        epoch: '3',
        global_step: '1234',
        'pytorch-lightning_version': '1.9.0',
      });
      expect(ck.skipped.size).toBe(0);
      const root = ck.root as Map<string, unknown>;
      const hp = root.get('hyper_parameters') as PyObject;
      expect(hp).toBeInstanceOf(PyObject);
      expect(hp.cls).toBe('__main__.AttributeDict');
      expect(hp.dictItems.get('lr')).toBe(4.5e-6);
      const obj = hp.dictItems.get('obj') as PyObject;
      expect(obj.cls).toBe('__main__.HParams');
      expect(((obj.state as Map<string, unknown>).get('ddconfig') as Map<string, unknown>).get('ch_mult')).toEqual([
        1, 1, 2, 2, 4,
      ]);
      expect((hp.dictItems.get('ns') as PyObject).cls).toBe('argparse.Namespace');
      const p = hp.dictItems.get('path') as PyObject;
      expect([p.cls, p.args]).toEqual(['pathlib.PurePosixPath', ['/', 'data', 'imagenet']]);
      expect((hp.dictItems.get('dtype') as TorchDType).dtype).toBe('F16');
      expect(hp.dictItems.get('size')).toEqual([2, 3]);
      const mc = (root.get('callbacks') as Map<string, Map<string, unknown>>).get('ModelCheckpoint')!;
      expect((mc.get('best_model_score') as PyObject).cls).toBe('numpy.core.multiarray.scalar');
      expect(mc.get('kth')).toEqual(new Set([1, 2]));
      expect(mc.get('big')).toBe(2n ** 70n);
      expect(mc.get('raw')).toEqual(new Uint8Array([0, 1]));
      // Placeholders are data: the numpy scalar's constructor is recorded, never resolved.
      expect((mc.get('best_model_score') as PyObject).args[0]).toBeInstanceOf(PyObject);
      expect(((mc.get('best_model_score') as PyObject).args[0] as PyObject).args[0]).toBe('f8');
      const bytes = (mc.get('best_model_score') as PyObject).args[1] as Uint8Array;
      expect(new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true)).toBe(0.25);
    } finally {
      await ck.close();
    }
  });

  it('reads one tensor lazily by name and knows infos before reading', async () => {
    const ck = await TorchCheckpoint.open(fixture('lightning.ckpt'));
    try {
      expect(ck.info('transposed.weight')).toEqual({ dtype: 'F32', shape: [5, 3] });
      expect(ck.has('nope')).toBe(false);
      await expect(ck.read('nope')).rejects.toThrow(/no tensor named 'nope'/);
      const t = await ck.read('transposed.weight');
      expect(Array.from(toFloat32(t).slice(0, 6))).toEqual(
        expected.fixtures['lightning.ckpt']!['transposed.weight']!.first,
      );
    } finally {
      await ck.close();
    }
  });

  it('picks another sub-dict with stateDictKey, and says when there is none', async () => {
    const sd = await loadCheckpoint(fixture('lightning.ckpt'), { stateDictKey: 'state_dict' });
    expect(sd.size).toBe(Object.keys(expected.fixtures['lightning.ckpt']!).length);
    await expect(loadCheckpoint(fixture('lightning.ckpt'), { stateDictKey: 'model' })).rejects.toThrow(
      /no dict under 'model'/,
    );
  });

  it('names unsupported dtypes', async () => {
    await expect(loadCheckpoint(fixture('complex.pt'))).rejects.toThrow(
      /'z' has unsupported dtype torch\.ComplexFloatStorage/,
    );
  });

  it('a TorchScript archive (torch.jit.save) yields the state_dict() names and tensors', async () => {
    const sd = await loadCheckpoint(fixture('scripted.pt'));
    expectMatchesTorch(sd, expected.fixtures['scripted.pt']!);
    const ck = await TorchCheckpoint.open(fixture('scripted.pt'));
    expect(ck.metadata.torchscript).toBe('true');
    await ck.close();
  });

  it('refuses the legacy (pre-1.6) format and truncated files with clear errors', async () => {
    await expect(loadCheckpoint(fixture('legacy.pt'))).rejects.toThrow(
      /legacy torch format .*re-save it with torch>=1\.6.*or convert it to safetensors/,
    );
    await expect(loadCheckpoint(fixture('truncated.ckpt'))).rejects.toThrow(/not a complete zip.*truncated/);
  });
});

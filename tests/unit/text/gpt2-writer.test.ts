// The GPT-2 writer: the committed tiny model is what the writer makes (deterministic for its seed), its
// tokenizer is GPT-2's byte-level BPE (every string survives encode -> decode, spaces included, and the
// learnt merges are used), and its dims are named so transformers.js may feed any batch and length.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeModel } from '../../../src/main/engine/graph/onnx-proto.js';
import { byteToChar, writeGpt2Folder } from '../../../src/main/engine/text/gpt2-writer.js';
import { TINY_GPT2_DIR, TINY_GPT2_SEED } from '../../fixtures/text/make-tiny-gpt2.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'fstudio-gpt2-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('the tiny GPT-2 folder', () => {
  it('is byte for byte what the writer makes for its seed (regenerate with make-tiny-gpt2.ts)', async () => {
    const r = await writeGpt2Folder(tmp, { seed: TINY_GPT2_SEED });
    for (const f of r.files) {
      const [a, b] = await Promise.all([readFile(path.join(tmp, f)), readFile(path.join(TINY_GPT2_DIR, f))]);
      expect(a.equals(b), f).toBe(true);
    }
  });

  it('names the batch and sequence dims of every input and output', async () => {
    const m = decodeModel(await readFile(path.join(TINY_GPT2_DIR, 'onnx/model.onnx')));
    const dims = (v: { type: { tensor_type: { shape: { dim: { dim_param?: string; dim_value?: number }[] } } } }) =>
      v.type.tensor_type.shape.dim.map((d) => d.dim_param ?? d.dim_value);
    const io = Object.fromEntries([...m.graph.input!, ...m.graph.output!].map((v) => [v.name, dims(v as never)]));
    expect(io.input_ids).toEqual(['batch_size', 'sequence_length']);
    expect(io.attention_mask).toEqual(['batch_size', 'total_sequence_length']);
    expect(io['past_key_values.0.key']).toEqual(['batch_size', 4, 'past_sequence_length', 8]);
    expect(io['present.1.value']).toEqual(['batch_size', 4, 'total_sequence_length', 8]);
    expect(io.logits).toEqual(['batch_size', 'sequence_length', 332]);
  });
});

describe('the byte-level tokenizer', () => {
  it("maps the 256 bytes to GPT-2's characters (printable ASCII as itself, space as Ġ, newline as Ċ)", () => {
    const t = byteToChar();
    expect(new Set(t).size).toBe(256);
    expect(t[65]).toBe('A');
    expect(t[32]).toBe('Ġ');
    expect(t[10]).toBe('Ċ');
  });

  it('round-trips any text and uses its merges', async () => {
    const tf = await import('@huggingface/transformers');
    tf.env.allowRemoteModels = false;
    tf.env.localModelPath = path.dirname(TINY_GPT2_DIR) + path.sep;
    const tok = await tf.AutoTokenizer.from_pretrained(path.basename(TINY_GPT2_DIR));
    for (const s of ['Q: Capital of India? A: Delhi', '  two  spaces\nand a line', 'émoji 🙂 and 日本語']) {
      const ids = tok.encode(s, { add_special_tokens: false });
      expect(tok.decode(ids, { skip_special_tokens: true })).toBe(s);
    }
    // "The review is positive" is in the corpus: merged into fewer tokens than its 22 bytes.
    expect(tok.encode('The review is positive', { add_special_tokens: false }).length).toBeLessThan(12);
  });
});

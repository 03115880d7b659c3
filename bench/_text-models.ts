// The inputs of the text benchmark (bench/text.ts): a GPT-2-small-sized random causal LM written by the
// studio's writer (engine/text/gpt2-writer.ts: transformers.js folder + model.safetensors under GPT-2's names,
// the same weights), a CLIP ViT-B/32 with random weights (bench/_generate-models.ts, Hugging Face's layout),
// 224x224 PNG images, and the few-shot prompts and labels it scores.
//
// Public API
//   writeBenchModels(dir) -> { gpt2Dir, clipDir, eosId }     <dir>/gpt2 and <dir>/clip
//   writeBenchImages(dir, n) -> string[]                      n PNG files (224x224, smooth random colour waves)
//   scoringPrompts(n) -> string[]                             few-shot sentiment prompts of about 60 tokens
//   LABEL_SETS                                                the scored continuations: single- and multi-token
//   GENERATION_PROMPT                                         31 tokens, for greedy generation
//   CLASS_LABELS                                              the zero-shot classes
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { GPT2_SMALL, writeGpt2Folder } from '../src/main/engine/text/gpt2-writer.js';
import { CLIP, writeClip, writeClipWeights } from './_generate-models.js';

export async function writeBenchModels(dir: string): Promise<{ gpt2Dir: string; clipDir: string; eosId: number }> {
  const gpt2Dir = path.join(dir, 'gpt2');
  const clipDir = path.join(dir, 'clip');
  const { eosId } = await writeGpt2Folder(gpt2Dir, { shape: GPT2_SMALL, seed: 1 });
  // CLIP's config and a byte-level BPE tokenizer (the tests' tiny one; its ids are valid for the real vocabulary).
  writeClip(clipDir, path.join(import.meta.dirname, '../tests/fixtures/clip/tiny/tokenizer.json'));
  await writeClipWeights(clipDir);
  return { gpt2Dir, clipDir, eosId };
}

/** n images of CLIP's input size: per channel a sine wave of its own direction, frequency and phase. */
export async function writeBenchImages(dir: string, n: number): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const S = CLIP.vision.imageSize;
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const px = Buffer.alloc(S * S * 3);
    const wave = (c: number) => ({
      fx: 0.01 + ((i * 7 + c * 3) % 11) * 0.013,
      fy: ((i * 5 + c) % 9) * 0.011,
      ph: i + c,
    });
    const waves = [0, 1, 2].map(wave);
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        for (let c = 0; c < 3; c++) {
          const w = waves[c]!;
          px[(y * S + x) * 3 + c] = Math.round(127.5 + 120 * Math.sin(x * w.fx + y * w.fy + w.ph));
        }
      }
    }
    const file = path.join(dir, `image-${String(i).padStart(3, '0')}.png`);
    await sharp(px, { raw: { width: S, height: S, channels: 3 } })
      .png()
      .toFile(file);
    files.push(file);
  }
  return files;
}

const SUBJECTS = ['food', 'service', 'movie', 'story', 'acting', 'music', 'room', 'staff'];
const VERDICTS = ['lovely', 'slow', 'great', 'boring', 'too long', 'moving', 'average', 'terrible', 'fine'];

/** Few-shot sentiment prompts (two examples, then the review to label), about 60 tokens each. */
export function scoringPrompts(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const a = `the ${SUBJECTS[i % SUBJECTS.length]} was ${VERDICTS[i % VERDICTS.length]}`;
    const b =
      i % 3 === 0 ? '' : ` and the ${SUBJECTS[(i + 3) % SUBJECTS.length]} was ${VERDICTS[(i + 4) % VERDICTS.length]}`;
    return `I: Great acting and a moving story O: Positive\nI: Boring and too long O: Negative\nI: ${a}${b} O:`;
  });
}

/** Two single-token labels, and two of several tokens (a second pass over the prompts' caches). */
export const LABEL_SETS: Record<'single' | 'multi', string[]> = {
  single: [' Positive', ' Negative'],
  multi: [' Very positive', ' Very negative'],
};

export const GENERATION_PROMPT = 'Q: Capital of India? A: Delhi. Q: Capital of France? A:';

export const CLASS_LABELS = ['cat', 'dog', 'car', 'tree', 'house', 'boat', 'bird', 'flower', 'mountain', 'city'];

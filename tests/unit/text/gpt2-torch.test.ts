// The studio's GPT-2 graph (engine/text/gpt2-writer.ts) is GPT-2: its ONNX model, run here directly with
// onnxruntime, gives the logits of an independent PyTorch GPT-2 (tests/fixtures/text/gpt2_torch.py, through
// make_torch_reference.py, committed as tiny-gpt2-torch.json) for the same weights and token ids: whole
// sequences, a second pass over the first pass's key/value cache, and a batch whose cache has a padded row.
// The same checks run on the fixture's weights with its matrices scaled up (the reference's `scaled` case),
// where activations are of order 1 and a wrong GELU, LayerNorm epsilon or mask would show.
// When the fixture is rewritten, run `/usr/bin/python3 tests/fixtures/text/make_torch_reference.py` again.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '../../../src/main/engine/graph/ir.js';
import { createSession, type RuntimeSession } from '../../../src/main/engine/runtime/ort.js';
import { buildGpt2Onnx } from '../../../src/main/engine/text/gpt2-writer.js';
import { readSafetensors } from '../../../src/main/engine/weights/safetensors.js';
import { TINY_GPT2_DIR } from '../../fixtures/text/make-tiny-gpt2.js';

interface Cases {
  sequences: { ids: number[]; logits: number[][] }[];
  cached: { ids: number[]; past: number; logits: number[][] };
}
type Reference = Cases & { vocab: number; weights_sha256: string; scaled: Cases & { factor: number; names: string[] } };

const reference = (await import('../../fixtures/text/tiny-gpt2-torch.json', { with: { type: 'json' } }))
  .default as Reference;
const config = (await import('../../fixtures/text/tiny-gpt2/config.json', { with: { type: 'json' } })).default;
const { n_layer: L, n_head: H, n_embd: C, vocab_size: V } = config;
const D = C / H;
/** float32 against float32 through different kernels (measured: 1.2e-7 on the fixture, 3.3e-6 scaled up). */
const TOLERANCE = 1e-4;

type Feed = HostTensor;
const ints = (rows: number[][]): Feed => ({
  dtype: 'int64',
  dims: [rows.length, rows[0]!.length],
  data: BigInt64Array.from(rows.flat(), BigInt),
});
const emptyPast = (batch: number): Record<string, Feed> => {
  const feeds: Record<string, Feed> = {};
  for (let l = 0; l < L; l++) {
    for (const kv of ['key', 'value']) {
      feeds[`past_key_values.${l}.${kv}`] = { dtype: 'float32', dims: [batch, H, 0, D], data: new Float32Array(0) };
    }
  }
  return feeds;
};
/** A run's present.* outputs as the next run's past_key_values.* inputs. */
const pastOf = (out: Record<string, HostTensor>): Record<string, Feed> =>
  Object.fromEntries(
    Object.entries(out)
      .filter(([name]) => name.startsWith('present.'))
      .map(([name, t]) => [name.replace('present.', 'past_key_values.'), t]),
  );

/** Row `t` of batch row `b` of logits [B, T, V]. */
const row = (logits: HostTensor, b: number, t: number): Float32Array => {
  const T = logits.dims[1]!;
  return (logits.data as Float32Array).subarray((b * T + t) * V, (b * T + t + 1) * V);
};

/** The largest |got - want| over the rows given. */
function maxError(got: Float32Array[], want: number[][]): number {
  expect(got).toHaveLength(want.length);
  let worst = 0;
  got.forEach((g, t) => {
    expect(g.length).toBe(want[t]!.length);
    g.forEach((x, k) => (worst = Math.max(worst, Math.abs(x - want[t]![k]!))));
  });
  return worst;
}

function checks(name: string, session: () => RuntimeSession, ref: () => Cases) {
  describe(name, () => {
    it('gives the logits of the PyTorch GPT-2 for whole sequences (empty cache)', async () => {
      for (const { ids, logits } of ref().sequences) {
        const T = ids.length;
        const out = await session().run({
          input_ids: ints([ids]),
          attention_mask: ints([ids.map(() => 1)]),
          position_ids: ints([ids.map((_, k) => k)]),
          ...emptyPast(1),
        });
        expect(out.logits!.dims).toEqual([1, T, V]);
        expect(
          maxError(
            ids.map((_, t) => row(out.logits!, 0, t)),
            logits,
          ),
        ).toBeLessThan(TOLERANCE);
      }
    });

    it('gives the same logits for new tokens fed after the key/value cache of a first pass', async () => {
      const { ids, past: P, logits } = ref().cached;
      const first = await session().run({
        input_ids: ints([ids.slice(0, P)]),
        attention_mask: ints([ids.slice(0, P).map(() => 1)]),
        position_ids: ints([ids.slice(0, P).map((_, k) => k)]),
        ...emptyPast(1),
      });
      expect(first['present.0.key']!.dims).toEqual([1, H, P, D]);
      const next = ids.slice(P);
      const out = await session().run({
        input_ids: ints([next]),
        attention_mask: ints([ids.map(() => 1)]),
        position_ids: ints([next.map((_, k) => P + k)]),
        ...pastOf(first),
      });
      expect(
        maxError(
          next.map((_, t) => row(out.logits!, 0, t)),
          logits,
        ),
      ).toBeLessThan(TOLERANCE);
    });

    it('ignores a padded key in a batch cache, as label scoring relies on', async () => {
      // Row 0: the cached case. Row 1: sequence 1's first 2 ids and a padding id in the first pass, then its
      // third id (at position 2) after the padded key: its logits are the whole sequence's at position 2.
      const { ids: a, past: P, logits: aWant } = ref().cached;
      const b = ref().sequences[1]!;
      const PAD = 0;
      const first = await session().run({
        input_ids: ints([a.slice(0, P), [...b.ids.slice(0, 2), PAD]]),
        attention_mask: ints([
          [1, 1, 1],
          [1, 1, 0],
        ]),
        position_ids: ints([
          [0, 1, 2],
          [0, 1, 1],
        ]),
        ...emptyPast(2),
      });
      const out = await session().run({
        input_ids: ints([a.slice(P, P + 2), [b.ids[2]!, PAD]]),
        attention_mask: ints([
          [1, 1, 1, 1, 1],
          [1, 1, 0, 1, 0],
        ]),
        position_ids: ints([
          [P, P + 1],
          [2, 2],
        ]),
        ...pastOf(first),
      });
      expect(maxError([row(out.logits!, 0, 0), row(out.logits!, 0, 1)], aWant)).toBeLessThan(TOLERANCE);
      expect(maxError([row(out.logits!, 1, 0)], [b.logits[2]!])).toBeLessThan(TOLERANCE);
      // The padded key is really there and would change the answer if it were seen.
      const seen = await session().run({
        input_ids: ints([[b.ids[2]!]]),
        attention_mask: ints([[1, 1, 1, 1]]),
        position_ids: ints([[2]]),
        ...Object.fromEntries(
          Object.entries(pastOf(first)).map(([k, t]) => {
            const per = (t.data as Float32Array).length / 2;
            return [k, { ...t, dims: [1, ...t.dims.slice(1)], data: (t.data as Float32Array).slice(per) }];
          }),
        ),
      });
      expect(maxError([row(seen.logits!, 0, 0)], [b.logits[2]!])).toBeGreaterThan(TOLERANCE);
    });
  });
}

let plain: RuntimeSession;
let scaled: RuntimeSession;

beforeAll(async () => {
  const sha = createHash('sha256')
    .update(await readFile(path.join(TINY_GPT2_DIR, 'model.safetensors')))
    .digest('hex');
  expect(sha, 'tiny-gpt2 changed: run /usr/bin/python3 tests/fixtures/text/make_torch_reference.py').toBe(
    reference.weights_sha256,
  );
  expect(reference.vocab).toBe(V);
  plain = await createSession({ file: path.join(TINY_GPT2_DIR, 'onnx/model.onnx') });
  // The scaled model: the fixture's own weights file, the reference's names times its factor, built into a
  // graph by the studio's builder.
  const dict = await readSafetensors(path.join(TINY_GPT2_DIR, 'model.safetensors'));
  const weights = new Map<string, HostTensor>();
  for (const [name, t] of dict) {
    const data = new Float32Array(t.data.slice().buffer);
    if (reference.scaled.names.includes(name))
      for (let k = 0; k < data.length; k++) data[k]! *= reference.scaled.factor;
    weights.set(name, { dtype: 'float32', dims: [...t.shape], data });
  }
  expect(reference.scaled.names.length).toBe(4 * L + 2);
  const shape = { vocabSize: V, nPositions: config.n_positions, nEmbd: C, nLayer: L, nHead: H };
  scaled = await createSession(buildGpt2Onnx(shape, weights));
});
afterAll(async () => {
  await plain?.release();
  await scaled?.release();
});

checks(
  'the tiny GPT-2 fixture against PyTorch',
  () => plain,
  () => reference,
);
checks(
  'the tiny GPT-2 with its matrices scaled up against PyTorch',
  () => scaled,
  () => reference.scaled,
);

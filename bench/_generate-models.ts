// The random real-size models of the generation benchmarks (bench/generate.ts on the CPU,
// tools/device/bench.ts on a GPU): a CLIP ViT-B/32 in Hugging Face's layout and the ImageNet f/16 16384
// VQGAN as a Lightning checkpoint, with random weights of a trained layer's spread, and the FLOPs of the
// step graph they make.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Builder } from '../src/main/engine/graph/builder.js';
import { countFlops } from '../src/main/engine/graph/flops.js';
import { type Tensor } from '../src/main/engine/graph/ir.js';
import { CLIP_VARIANTS, type ClipConfig, expectedStateDict as clipState } from '../src/main/engine/nets/clip.js';
import {
  VQGAN_PRESETS,
  type VqganConfig,
  expectedStateDict as vqganState,
  vqganParams,
} from '../src/main/engine/nets/vqgan.js';
import { emitModel } from '../src/main/engine/graph/onnx-proto.js';
import { type ProviderName } from '../src/main/engine/runtime/ort.js';
import type { DeviceRunner } from '../src/main/engine/runtime/runner.js';
import { type GenerateTaskArgs } from '../src/main/engine/vqclip/index.js';
import { buildStepGraph, type StepSpec } from '../src/main/engine/vqclip/step-graph.js';
import { writeSafetensors } from '../src/main/engine/weights/safetensors.js';
import { type WeightTensor } from '../src/main/engine/weights/tensor.js';
import { pickleStateDict, type TensorView, writeTorchZip } from '../tests/fixtures/weights/torch-zip-writer.js';

export const CLIP: ClipConfig = CLIP_VARIANTS['ViT-B/32'];
export const VQ: VqganConfig = VQGAN_PRESETS.vqgan_imagenet_f16_16384;

/** Random float32 values with the spread a trained layer has (weights ~ fan_in^-1/2, norms ~ 1). */
export function randomTensor(name: string, shape: number[], seed: number): WeightTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const f = new Float32Array(n);
  const fanIn = shape.length >= 2 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1;
  const isNormScale =
    /(norm|layer_norm\d?|layrnorm|layernorm)[^.]*\.weight$/.test(name) || /norm\d?\.weight$/.test(name);
  const spread = name.endsWith('.bias')
    ? 0.02
    : isNormScale
      ? 0.05
      : name.includes('embedding') && !name.includes('patch')
        ? 0.5
        : Math.sqrt(3 / fanIn);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    f[i] = (isNormScale ? 1 : 0) + (s / 2 ** 32 - 0.5) * 2 * spread;
  }
  return { dtype: 'F32', shape, data: new Uint8Array(f.buffer) };
}

/** CLIP's config and tokenizer (`tokenizer`: a tokenizer.json to copy) in `dir`. */
export function writeClip(dir: string, tokenizer: string): void {
  mkdirSync(dir, { recursive: true });
  const v = CLIP.vision;
  const t = CLIP.text;
  const config = {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: CLIP.projectionDim,
    vision_config: {
      hidden_size: v.hiddenSize,
      num_hidden_layers: v.layers,
      num_attention_heads: v.heads,
      intermediate_size: v.intermediateSize,
      image_size: v.imageSize,
      patch_size: v.patchSize,
      hidden_act: 'quick_gelu',
    },
    text_config: {
      hidden_size: t.hiddenSize,
      num_hidden_layers: t.layers,
      num_attention_heads: t.heads,
      intermediate_size: t.intermediateSize,
      vocab_size: t.vocabSize,
      max_position_embeddings: t.maxPositions,
      eos_token_id: 2,
    },
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 1));
  // A small byte-level BPE tokenizer in HF's format (the fixture's; its ids are valid for the real vocabulary).
  copyFileSync(tokenizer, path.join(dir, 'tokenizer.json'));
}

export async function writeClipWeights(dir: string): Promise<void> {
  const shapes = clipState(CLIP);
  const names = [...shapes.keys()];
  await writeSafetensors(path.join(dir, 'model.safetensors'), {
    names: () => names,
    info: (n) => ({ dtype: 'F32', shape: shapes.get(n)! }),
    read: async (n) => randomTensor(n, shapes.get(n)!, names.indexOf(n) + 1),
  });
}

export function writeVqgan(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const c = VQ;
  const yaml = [
    'model:',
    '  target: taming.models.vqgan.VQModel',
    '  params:',
    `    embed_dim: ${c.embedDim}`,
    `    n_embed: ${c.nEmbed}`,
    '    ddconfig:',
    '      double_z: false',
    `      z_channels: ${c.zChannels}`,
    `      resolution: ${c.resolution}`,
    `      in_channels: ${c.inChannels}`,
    `      out_ch: ${c.outCh}`,
    `      ch: ${c.ch}`,
    `      ch_mult: [${c.chMult.join(', ')}]`,
    `      num_res_blocks: ${c.numResBlocks}`,
    `      attn_resolutions: [${c.attnResolutions.join(', ')}]`,
    '      dropout: 0.0',
    '',
  ].join('\n');
  writeFileSync(path.join(dir, 'model.yaml'), yaml);
  const shapes = vqganState(c);
  const views: TensorView[] = [...shapes].map(([name, shape], i) => ({
    name,
    dtype: 'F32',
    key: String(i),
    storageNumel: shape.reduce((a, b) => a * b, 1),
    shape,
  }));
  function* storages(): Generator<[string, Uint8Array]> {
    for (const v of views) yield [v.key, randomTensor(v.name, v.shape, 7919 * Number(v.key) + 1).data];
  }
  writeTorchZip(path.join(dir, 'last.ckpt'), 'last', pickleStateDict(views, 'lightning'), storages());
}

/** FLOPs of the step graph (weights as graph inputs: only shapes matter). */
export function stepFlops(size: number, cuts: number): { total: number; byOp: Record<string, number> } {
  const spec: StepSpec = {
    clip: CLIP,
    vqgan: VQ,
    width: size,
    height: size,
    cuts,
    cutMethod: 'original',
    targets: 2,
    prompts: 2,
    optimizer: 'adam',
    initTerm: false,
  };
  const b = new Builder('flops');
  const shapes = clipState(CLIP);
  const made = new Map<string, Tensor>();
  const pc = (name: string) => {
    let t = made.get(name);
    if (!t) made.set(name, (t = b.input(name, shapes.get(name)!)));
    return t;
  };
  const outs = buildStepGraph(b, spec, pc, vqganParams(b, VQ));
  return countFlops(b.graph, [outs.loss, outs.z_next, outs.rgb, outs.tokens, outs.losses]);
}

/** The benchmark's run: the models written by the functions above in `dir`, a two-prompt step at `size`. */
export function benchTaskArgs(
  dir: string,
  o: { size: number; cuts: number; steps: number; provider: ProviderName },
): GenerateTaskArgs {
  return {
    clip: { dir: path.join(dir, 'clip'), graphCacheDir: path.join(dir, 'graphs') },
    vqgan: { location: path.join(dir, 'vqgan'), name: 'f16-16384', graphCacheDir: path.join(dir, 'graphs') },
    provider: o.provider,
    settings: {
      prompts: 'a lighthouse at dawn | fog:-0.5',
      imagePrompts: [],
      noisePrompts: [],
      init: { kind: 'random' },
      initWeight: 0,
      width: o.size,
      height: o.size,
      steps: o.steps,
      seed: 1,
      cuts: o.cuts,
      cutPow: 1,
      cutMethod: 'original',
      lr: 0.1,
      optimizer: 'adam',
      stepDecay: null,
    },
    previewEvery: 1,
    snapshotEvery: 0,
  };
}

/**
 * A reference rate for the step: the best of a few N³ fp32 MatMuls per size on this runner's provider,
 * in GFLOP/s (its inputs filled before the clock starts: only the run is timed).
 */
export async function matmulPeak(runner: DeviceRunner, provider: ProviderName, sizes: number[]): Promise<number> {
  let best = 0;
  for (const N of sizes) {
    const b = new Builder('peak');
    const y = b.matmul(b.input('x', [N, N]), b.input('w', [N, N]));
    const s = await runner.load(emitModel(b.graph, { outputs: { y } }), { provider });
    const fill = () => ({ dtype: 'float32' as const, dims: [N, N], data: new Float32Array(N * N).fill(0.5) });
    await runner.run(s, { x: fill(), w: fill() });
    for (let i = 0; i < (N > 1024 ? 4 : 8); i++) {
      const [x, w] = [fill(), fill()];
      const t = performance.now();
      await runner.run(s, { x, w });
      best = Math.max(best, (2 * N ** 3) / ((performance.now() - t) / 1000) / 1e9);
    }
    await runner.release(s);
  }
  return best;
}

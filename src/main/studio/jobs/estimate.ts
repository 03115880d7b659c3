// What a generation step costs, before anything runs: the VQGAN decoder and the CLIP image tower built
// as graphs without weights (shapes only, milliseconds), their forward FLOPs counted, twice that for a
// step (the gradient for the input costs about one more forward), and the memory the activations take
// on top of the weights. With the device's measured matmul speed, seconds per step.
import { totalmem } from 'node:os';
import { Builder } from '../../engine/graph/builder.js';
import { countFlops } from '../../engine/graph/flops.js';
import { sizeOf, type Graph } from '../../engine/graph/ir.js';
import { buildVisionTower, expectedStateDict as clipStateDict, type ClipConfig } from '../../engine/nets/clip.js';
import { decode, embedCode, vqganParams, type VqganConfig } from '../../engine/nets/vqgan.js';

/** Bytes the activations of a forward graph take (every node output, as float32), an upper bound of what backward keeps. */
function activationBytes(g: Graph): number {
  let bytes = 0;
  for (const n of g.nodes) for (const t of n.outputs) bytes += sizeOf(t.shape) * 4;
  return bytes;
}

export interface StepEstimate {
  gflopPerStep: number;
  /** Weights of the image tower and the decoder, and activations of a step with its gradient. */
  memoryBytes: number;
}

export function estimateStep(
  clip: ClipConfig,
  vqgan: VqganConfig,
  width: number,
  height: number,
  cuts: number,
): StepEstimate {
  const f = 2 ** (vqgan.chMult.length - 1);
  const dec = new Builder('estimate-decoder');
  const p = vqganParams(dec, vqgan);
  decode(dec, p, embedCode(dec, p, dec.input('tokens', [1, height / f, width / f], 'int64')));
  const vis = new Builder('estimate-clip');
  const shapes = clipStateDict(clip);
  const made = new Map<string, ReturnType<Builder['input']>>();
  const params = (name: string) => {
    let t = made.get(name);
    if (!t) made.set(name, (t = vis.input(name, shapes.get(name)!)));
    return t;
  };
  const S = clip.vision.imageSize;
  buildVisionTower(vis, clip, params, vis.input('pixels', [cuts, 3, S, S]));
  const forward = countFlops(dec.graph).total + countFlops(vis.graph).total;
  const weights = [...dec.graph.inputs, ...vis.graph.inputs].reduce((n, t) => n + sizeOf(t.shape) * 4, 0);
  // Backward keeps about the forward's activations (the sum of every node's output is an upper bound: ORT
  // reuses buffers); the weights are held by the session and, while it is made, once more.
  const activations = activationBytes(dec.graph) + activationBytes(vis.graph);
  return { gflopPerStep: (2 * forward) / 1e9, memoryBytes: 2 * weights + activations };
}

/** Why a step this big cannot run on this machine, or null: refused above 80% of the memory it has. */
export function memoryRefusal(e: StepEstimate, width: number, height: number, cuts: number): string | null {
  const limit = 0.8 * totalmem();
  if (e.memoryBytes <= limit) return null;
  const gb = (b: number) => `${(b / 1e9).toFixed(1)} GB`;
  return (
    `${width}x${height} with ${cuts} cutouts needs about ${gb(e.memoryBytes)} of memory and this machine has ` +
    `${gb(totalmem())}: choose a smaller size or fewer cutouts.`
  );
}

// A compute worker whose 'vqclip.generate' is a stand-in with the real task's contract, for the tests of
// the generation jobs (queue, pause, resume, cancel, fork, restart, a dying worker) without the cost of
// the real loop. Its picture of a step depends only on its tokens, as the real one's does; its tokens
// depend only on the seed and the step. Settings:
//   prompts containing "crash at N": the worker thread exits with code 3 at step N (a dying worker)
//   prompts containing "slow": each step takes 40 ms (time to pause or cancel it mid-run)
import { parentPort, workerData } from 'node:worker_threads';
import { serveDevice, type TaskContext } from '../../../src/main/engine/runtime/worker-core.js';
import { tasks } from '../../../src/main/engine/tasks.js';

interface Args {
  settings: { prompts: string; width: number; height: number; steps: number; seed: number };
  snapshotEvery: number;
  from?: { step: number; tokens?: Int32Array };
  keepKey?: string;
}

const FACTOR = 2;

function tokensAt(seed: number, step: number, n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (seed + step * 7 + i * 3) % 16);
}

function picture(tokens: Int32Array, gw: number, gh: number): Uint8Array {
  const w = gw * FACTOR;
  const h = gh * FACTOR;
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const t = tokens[Math.floor(y / FACTOR) * gw + Math.floor(x / FACTOR)]!;
      rgb.set([t * 16, 255 - t * 16, (t * 37) % 256], (y * w + x) * 3);
    }
  return rgb;
}

const kept = new Map<string, { step: number; tokens: Int32Array }>();

async function generate(a: Args, ctx: TaskContext) {
  const s = a.settings;
  if (s.width % FACTOR || s.height % FACTOR) throw new Error(`the size must be a multiple of ${FACTOR}`);
  const gw = s.width / FACTOR;
  const gh = s.height / FACTOR;
  const resumed = a.keepKey ? kept.get(a.keepKey) : undefined;
  let step = resumed?.step ?? a.from?.step ?? 0;
  let tokens = resumed?.tokens ?? a.from?.tokens ?? tokensAt(s.seed, 0, gw * gh);
  const crash = /crash at (\d+)/.exec(s.prompts);
  const first = step;
  const picture$ = () => picture(tokens, gw, gh);
  ctx.emit({ type: 'status', message: 'warming up' });
  // As the real task: step k is the state after k updates; a run reports steps first ... steps.
  for (;;) {
    ctx.emit({ type: 'step', step, loss: 1 / (step + 1), losses: [1 / (step + 1)], ms: 5, phrase: 0 });
    ctx.emit({ type: 'frame', step, width: s.width, height: s.height, rgb: picture$() });
    if (step > first && (step % a.snapshotEvery === 0 || step === s.steps))
      ctx.emit({ type: 'snapshot', step, tokens: tokens.slice() });
    if (step >= s.steps) break;
    await ctx.checkpoint().catch(() => undefined);
    if (ctx.signal.aborted) {
      // As the real task: the state after this step's update is kept, so a resume goes on at the next step.
      if (a.keepKey) kept.set(a.keepKey, { step: step + 1, tokens: tokensAt(s.seed, step + 1, gw * gh) });
      return { step, stopped: true, tokens, width: s.width, height: s.height, rgb: picture$(), prompts: [] };
    }
    step++;
    if (crash && step === Number(crash[1])) process.exit(3);
    if (s.prompts.includes('slow')) await new Promise((r) => setTimeout(r, 40));
    tokens = tokensAt(s.seed, step, gw * gh);
  }
  if (a.keepKey) kept.delete(a.keepKey);
  const prompts = [{ text: s.prompts, weight: 1, stop: -Infinity, kind: 'text' }];
  return { step, stopped: false, tokens, width: s.width, height: s.height, rgb: picture$(), prompts };
}

serveDevice(parentPort!, { ...tasks, 'vqclip.generate': generate }, (workerData as { epoch: number }).epoch);

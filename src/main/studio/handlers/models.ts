// Model calls: the catalog and what is installed, downloads (each one a job too), imports of files a
// user already has, verification and removal.
import { type modelCalls, type Handlers, type ModelProgress } from '../../../shared/api.js';
import { formatBytes } from '../../../shared/format.js';
import type { StudioContext } from '../context.js';

/** A download's progress as its job's: bytes as the steps, speed as a value, the state at the end. */
function followPull(ctx: StudioContext, p: ModelProgress): void {
  const job = ctx.jobs.track(p.jobId, 'model-pull', `Download ${p.modelId}`, () => ctx.models.cancel(p.modelId));
  if (p.state === 'done') job.finish('done', p.message ?? `${p.modelId} is installed.`);
  else if (p.state === 'cancelled') job.finish('cancelled', p.message ?? 'Cancelled.');
  else if (p.state === 'failed')
    job.finish('failed', p.message ?? 'The download failed.', new Error(p.message ?? 'The download failed.'));
  else
    job.progress({
      state: p.state,
      step: p.bytes,
      total: p.total,
      values: { bytesPerSecond: p.speed, ...(p.etaSeconds !== null ? { etaSeconds: p.etaSeconds } : {}) },
      message: p.message ?? (p.total ? `${formatBytes(p.bytes)} of ${formatBytes(p.total)}` : formatBytes(p.bytes)),
    });
}

export function modelHandlers(ctx: StudioContext): Handlers<typeof modelCalls> {
  ctx.models.on('progress', (p) => {
    ctx.emit('modelProgress', p);
    followPull(ctx, p);
  });
  ctx.models.on('changed', (c) => ctx.emit('modelsChanged', c));
  return {
    modelsList: () => ctx.models.list(),
    async modelPull({ id }) {
      const { jobId, done } = ctx.models.pull(id);
      done.catch(() => {}); // the outcome, in words, is the last modelProgress event
      return { jobId };
    },
    modelCancel: async ({ id, discard }) => ({ cancelled: ctx.models.cancel(id, discard) }),
    modelImport: ({ id, path, as }) => ctx.models.import(id, path, as),
    modelVerify: ({ id }) => ctx.models.verify(id),
    modelRemove: ({ id }) => ctx.models.remove(id),
  };
}

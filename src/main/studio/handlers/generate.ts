// Generate calls: queue a run (or fork one from a snapshot), the queue and its controls, a run's detail
// and trajectory, and what a size costs here.
import type { generateCalls, Handlers } from '../../../shared/api.js';
import type { StudioContext } from '../context.js';
import type { GenerationService } from '../jobs/generation.js';

export function generateHandlers(ctx: StudioContext, gen: GenerationService): Handlers<typeof generateCalls> {
  return {
    async generate({ settings, from }) {
      ctx.live();
      return gen.enqueue(settings, { from });
    },
    async generateQueue() {
      ctx.live();
      return gen.list();
    },
    async generateMove({ runId, before }) {
      return gen.move(runId, before);
    },
    async generatePause({ runId }) {
      ctx.live();
      return gen.pause(runId);
    },
    async generateResume({ runId }) {
      ctx.live();
      return gen.resume(runId);
    },
    async generateCancel({ runId }) {
      ctx.live();
      return gen.cancel(runId);
    },
    async generateContinue({ runId, steps }) {
      ctx.live();
      return gen.continueRun(runId, steps);
    },
    async getRun({ runId }) {
      ctx.live();
      return gen.detail(runId);
    },
    async exportTrajectory({ runId, format }) {
      ctx.live();
      return gen.exportTrajectory(runId, format);
    },
    async generateWarmup({ settings }) {
      ctx.live();
      return gen.warmup(settings);
    },
    async generateEstimate(o) {
      ctx.live();
      return gen.estimate(o);
    },
  };
}

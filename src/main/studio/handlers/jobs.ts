// Job calls: the state of the jobs a client follows (after a reconnect), and cancel.
import { type jobCalls, type Handlers } from '../../../shared/api.js';
import type { StudioContext } from '../context.js';

export function jobHandlers(ctx: StudioContext): Handlers<typeof jobCalls> {
  return {
    async jobList({ ids }) {
      ctx.live();
      return ctx.jobs.list(ids);
    },
    async jobCancel({ jobId }) {
      ctx.live();
      return { cancelled: ctx.jobs.cancel(jobId) };
    },
  };
}

// History calls: every run of every kind, newest first, searchable (LabStore.searchRuns).
import { type historyCalls, type Handlers } from '../../../shared/api.js';
import type { StudioContext } from '../context.js';

export function historyHandlers(ctx: StudioContext): Handlers<typeof historyCalls> {
  return {
    async historyRuns({ text, kinds, limit, offset }) {
      ctx.live();
      // One more than asked: whether there is a next page.
      const rows = ctx.lab.searchRuns({ text, kinds, limit: limit + 1, offset });
      return {
        runs: rows.slice(0, limit).map((r) => ({
          id: r.id,
          kind: r.kind,
          status: r.status,
          title: r.title,
          createdAt: r.createdAt,
          finishedAt: r.finishedAt,
          error: r.error,
          count: r.count,
          imageId: r.imageId,
        })),
        more: rows.length > limit,
      };
    },
  };
}

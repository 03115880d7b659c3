// Prompt Lab calls: saved prompt-made models, one input tried, runs over a file (jobs whose rows stream as
// promptRows), the history of prompt runs, compare, export, and the uncertainty explorer. Models are named by
// catalog id or folder under models/ (never a path: that is the CLI's and the SDK's); input files may be
// anywhere on this machine and are only read.
import type { Handlers, promptCalls } from '../../../shared/api.js';
import type { StudioContext } from '../context.js';
import type { PromptService } from '../prompt/service.js';

export function promptHandlers(ctx: StudioContext, prompt: PromptService): Handlers<typeof promptCalls> {
  const lib = prompt.library;
  const live = <T>(fn: () => T): T => {
    ctx.live();
    return fn();
  };
  return {
    promptTextModels: async () => live(() => prompt.textModels()),
    promptModelsList: async () => live(() => lib.list()),
    promptModelGet: async (ref) => live(() => lib.get(ref)),
    promptModelSave: async ({ spec }) => live(() => lib.save(spec)),
    promptModelDelete: async ({ name }) => live(() => lib.remove(name)),
    promptModelExport: async (ref) => live(() => lib.exportFile(ref)),
    promptModelImport: async ({ data, name }) => live(() => lib.importFile(data, name)),
    promptTry: async (a) => live(() => prompt.tryOne(a)),
    async promptRun(a) {
      const { runId, jobId } = await live(() => prompt.run(a));
      return { runId, jobId };
    },
    promptRunRows: async ({ runId, offset, limit }) => live(() => prompt.rows(runId, { offset, limit })),
    promptRuns: async (q) => live(() => prompt.runs(q)),
    promptRunGet: async ({ runId }) => live(() => prompt.get(runId)),
    promptCompare: async ({ a, b, offset, limit }) => live(() => prompt.compare(a, b, { offset, limit })),
    promptExportRun: async ({ runId, format }) => live(() => prompt.exportRun(runId, format)),
    async promptExplore(a) {
      const { runId, jobId } = await live(() => prompt.explore(a));
      return { runId, jobId };
    },
    promptExploreGet: async ({ runId }) => live(() => prompt.exploreGet(runId)),
  };
}

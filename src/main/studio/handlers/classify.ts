// Classify calls: the template sets, reading a template file, starting a run (a job) over a folder or the
// gallery, its rows, past runs, the threshold fitted to the user's marks, the wording / order explorer,
// and acting on the results (CSV, copy by label, gallery tags, thumbnails). The work is in ../classify/.
import { StudioError, type classifyCalls, type Handlers } from '../../../shared/api.js';
import { parseTemplateText, TEMPLATE_SETS } from '../../engine/classify/templates.js';
import type { ClassifyService } from '../classify/service.js';
import type { StudioContext } from '../context.js';

export function classifyHandlers(ctx: StudioContext, svc: ClassifyService): Handlers<typeof classifyCalls> {
  return {
    async classifyTemplateSets() {
      return Object.values(TEMPLATE_SETS).map((s) => ({ id: s.id, name: s.name, templates: [...s.templates] }));
    },
    async classifyParseTemplates({ text }) {
      try {
        return { templates: parseTemplateText(text) };
      } catch (e) {
        throw new StudioError('BadTemplates', (e as Error).message);
      }
    },
    async classifyStart(args) {
      ctx.live();
      return svc.start(args);
    },
    async classifyRun({ runId }) {
      ctx.live();
      return svc.run(runId);
    },
    async classifyRows({ runId, offset, limit }) {
      ctx.live();
      return svc.rows(runId, { offset, limit });
    },
    async classifyRuns(q) {
      ctx.live();
      return svc.runs(q);
    },
    async classifyCalibrate({ runId, marks }) {
      ctx.live();
      return svc.calibrate(runId, marks);
    },
    async classifyExplore({ runId }) {
      ctx.live();
      return svc.explore(runId);
    },
    async classifyExport({ runId, decision }) {
      ctx.live();
      return svc.exportCsv(runId, decision);
    },
    async classifyCopy({ runId, decision }) {
      ctx.live();
      return svc.copy(runId, decision);
    },
    async classifyTag({ runId, decision }) {
      ctx.live();
      return svc.tag(runId, decision);
    },
    async classifyThumb({ runId, idx }) {
      ctx.live();
      return svc.thumb(runId, idx);
    },
  };
}

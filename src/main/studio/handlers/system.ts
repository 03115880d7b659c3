// System and settings calls: versions, providers (probed in the compute worker), the data folder's
// health, the settings, and the gradient check as a job.
import { statfs } from 'node:fs/promises';
import { type systemCalls, type Handlers } from '../../../shared/api.js';
import { appVersion } from '../../base/app-version.js';
import { ortVersion } from '../../engine/runtime/ort.js';
import type { StudioContext } from '../context.js';
import { openReportProblems } from '../open-report.js';

export function systemHandlers(ctx: StudioContext): Handlers<typeof systemCalls> {
  return {
    async getSystemInfo({ probeProviders: probe }) {
      ctx.live();
      let freeDiskBytes: number | null = null;
      try {
        const s = await statfs(ctx.dataDir);
        freeDiskBytes = Number(s.bavail) * Number(s.bsize);
      } catch {
        freeDiskBytes = null;
      }
      const host = ctx.options.host;
      return {
        appVersion: appVersion(),
        node: process.versions.node,
        electron: host?.electron ?? process.versions.electron ?? null,
        chrome: host?.chrome ?? process.versions.chrome ?? null,
        onnxruntime: ortVersion(),
        platform: process.platform,
        arch: process.arch,
        dataDir: ctx.dataDir,
        freeDiskBytes,
        dataFolderProblems: openReportProblems(ctx.report),
        dataFolderChecking: ctx.checking(),
        // In the GPU device's worker: never beside its WebGPU sessions, never on this thread.
        providers: probe ? await ctx.compute.runners.for('gpu').probeProviders() : [],
      };
    },

    async getSettings() {
      ctx.live();
      return ctx.settings.get();
    },

    async updateSettings(patch) {
      ctx.live();
      const s = await ctx.settings.update(patch);
      ctx.emit('settingsChanged', s);
      return s;
    },

    async checkGradients({ provider }) {
      ctx.live();
      const job = ctx.jobs.start('gradcheck', `Gradient check on ${provider}`, async (handle) => {
        const report = await ctx.compute.gradcheck({
          provider,
          signal: handle.signal,
          onProgress: (p) => handle.progress({ step: p.done, total: p.total, message: `checked ${p.op}` }),
        });
        const worst = Math.max(...report.ops.map((o) => o.worstRelError));
        const failed = report.ops.filter((o) => !o.pass);
        if (failed.length > 0) {
          const names = failed.map((o) => (o.error ? `${o.op} (${o.error})` : o.op)).join(', ');
          const message =
            `${failed.length} of ${report.ops.length} ops disagree with finite differences on ${report.provider}: ` +
            `${names}. Update the graphics driver, or choose another provider in Settings.`;
          throw Object.assign(new Error(message), { name: 'GradcheckFailed' });
        }
        return (
          `All ${report.ops.length} ops agree with finite differences on ${report.provider} ` +
          `(worst relative error ${worst.toExponential(1)}, tolerance ${report.tolerance}).`
        );
      });
      return { jobId: job.jobId };
    },
  };
}

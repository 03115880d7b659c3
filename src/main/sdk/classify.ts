// The TypeScript API of Classify: `createClipClassifier({ labels }).run(images)` classifies image files (or a
// folder, recursively) with the studio's CLIP zero-shot, through the same service as the app and the CLI, so
// each run is in the history. It opens the studio on a data folder (default: as the CLI, $FSTUDIO_DATA_DIR or
// the app's folder) on the first run and keeps it until close().
//
// Public API
//   createClipClassifier({ labels, templates?, model?, provider?, dataDir? }) -> ClipClassifier
//     .run(images: string[] | folder: string) -> { runId, results: { path, label, probs, margin }[], skipped }
//     .close()
//
//   const clf = createClipClassifier({ labels: ['is photoshopped', 'is not photoshopped'] });
//   const { results } = await clf.run(['a.jpg', 'b.png']);   // results[0].probs['is photoshopped']
//   await clf.close();
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { StudioError, type Provider, type TemplateSetId } from '../../shared/api.js';
import { resolveDataDir } from '../cli/data-dir.js';
import type { StudioService } from '../studio/index.js';

export interface ClipClassifierOptions {
  labels: string[];
  /** A built-in set (default imagenet7) or templates with `{}` where the label goes. */
  templates?: TemplateSetId | string[];
  /** Catalog id or a CLIP folder (default: the catalog's default CLIP). */
  model?: string;
  provider?: Provider;
  dataDir?: string;
}

export interface ClipClassification {
  path: string;
  /** The most probable label. */
  label: string;
  /** Probability of every label. */
  probs: Record<string, number>;
  /** The top probability minus the second. */
  margin: number;
}

export interface ClipClassifier {
  run(images: string | readonly string[]): Promise<{
    runId: number;
    results: ClipClassification[];
    skipped: { path: string; error: string }[];
  }>;
  close(): Promise<void>;
}

export function createClipClassifier(o: ClipClassifierOptions): ClipClassifier {
  let studio: Promise<StudioService> | null = null;
  const open = () =>
    (studio ??= import('../studio/index.js').then(({ openStudio }) =>
      openStudio({ dataDir: resolveDataDir(o.dataDir), runQueue: false, watchFolders: false }),
    ));
  const templates =
    o.templates === undefined
      ? undefined
      : typeof o.templates === 'string'
        ? { set: o.templates }
        : { custom: o.templates };
  return {
    async run(images) {
      const s = await open();
      const svc = s.classify;
      const isFolder = typeof images === 'string' && (await stat(images).catch(() => null))?.isDirectory();
      if (typeof images === 'string' && !isFolder) images = [images];
      const source = isFolder
        ? { folder: path.resolve(images as string) }
        : { files: (images as readonly string[]).map((f) => path.resolve(f)) };
      const { runId } = await svc.start(
        { labels: o.labels, source, ...(templates ? { templates } : {}), model: o.model, provider: o.provider },
        { allowPaths: true },
      );
      const run = await svc.done(runId);
      if (run.state !== 'done') throw new StudioError('RunFailed', run.error ?? `the run ended ${run.state}`);
      const rows = svc.rows(runId, { offset: 0, limit: -1 }).rows;
      return {
        runId,
        results: rows.map((r) => ({
          path: r.path,
          label: run.labels[r.top]!,
          probs: Object.fromEntries(run.labels.map((l, i) => [l, r.probs[i]!])),
          margin: r.margin,
        })),
        skipped: run.skipped,
      };
    },
    async close() {
      const s = studio;
      studio = null;
      await (await s)?.close();
    },
  };
}

// Which models a run with this form needs that are not installed yet: the catalog's default CLIP and
// VQGAN unless the form names others. A name the catalog does not know is a folder the user put under
// models/ (the run says so if it is not there).
import type { ModelInfo } from '../../../shared/api.js';

export interface MissingModels {
  models: ModelInfo[];
  /** Bytes still to download (the catalog's sizes less what is on disk), and whether that is approximate. */
  bytes: number;
  approximate: boolean;
}

export function neededModel(list: readonly ModelInfo[], kind: 'clip' | 'vqgan', named: string): ModelInfo | undefined {
  const id = named.trim();
  return id ? list.find((m) => m.id === id && m.kind === kind) : list.find((m) => m.kind === kind && m.default);
}

export function missingModels(list: readonly ModelInfo[], clip: string, vqgan: string): MissingModels {
  const models = [neededModel(list, 'clip', clip), neededModel(list, 'vqgan', vqgan)].filter(
    (m): m is ModelInfo => m !== undefined && m.state !== 'installed',
  );
  return {
    models,
    bytes: models.reduce((a, m) => a + Math.max(0, (m.expectedBytes ?? 0) - m.bytesOnDisk), 0),
    approximate: models.some((m) => m.expectedApproximate || m.expectedBytes === null),
  };
}

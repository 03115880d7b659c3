// Model runs for one CLI command: the studio's compute service over the data folder's models, so
// `fstudio embed-*`, `vqgan` and `doctor --gradcheck` resolve models and run them exactly as the app does.
import { RunnerSet } from '../engine/runtime/runner.js';
import { StudioCompute } from '../studio/compute.js';
import { ModelManager } from '../studio/models/manager.js';

export async function withCompute<T>(dataDir: string, fn: (compute: StudioCompute) => Promise<T>): Promise<T> {
  const models = new ModelManager(dataDir);
  const runners = new RunnerSet();
  try {
    return await fn(new StudioCompute(models, runners));
  } finally {
    await runners.close();
    await models.close();
  }
}

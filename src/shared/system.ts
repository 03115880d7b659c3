// System and settings: versions, providers, the data folder's health, the user's settings.
import { z } from 'zod';
import { Void } from './common.js';
import { Provider, ProviderReport } from './providers.js';

export const Theme = z.enum(['system', 'dark', 'light']);
export type Theme = z.infer<typeof Theme>;

// ---------- settings ----------
export const Settings = z.object({
  dataDir: z.string(),
  preferredProvider: Provider,
  theme: Theme,
  /** Model downloads may use mirrors run by others than the model's publisher (hf-mirror.com). */
  thirdPartyMirrors: z.boolean(),
  /** Exported images carry the user's note and tags (off: only the prompt and parameters leave). */
  exportNoteAndTags: z.boolean(),
});
export type Settings = z.infer<typeof Settings>;
export const SettingsPatch = Settings.omit({ dataDir: true }).partial().strict();
export type SettingsPatch = z.infer<typeof SettingsPatch>;

export const SystemInfo = z.object({
  appVersion: z.string(),
  node: z.string(),
  electron: z.string().nullable(),
  chrome: z.string().nullable(),
  onnxruntime: z.string().nullable(),
  platform: z.string(),
  arch: z.string(),
  dataDir: z.string(),
  freeDiskBytes: z.number().nullable(),
  /** Findings of the data-folder check at open (missing files, orphans moved, sweep skipped), in words. */
  dataFolderProblems: z.array(z.string()),
  /** The check runs in the background after open: true until it has finished (then `dataFolderChecked`). */
  dataFolderChecking: z.boolean(),
  providers: z.array(ProviderReport),
});
export type SystemInfo = z.infer<typeof SystemInfo>;

export const systemCalls = {
  getSystemInfo: { args: z.object({ probeProviders: z.boolean().default(false) }).strict(), result: SystemInfo },
  getSettings: { args: Void, result: Settings },
  updateSettings: { args: SettingsPatch, result: Settings },
  /**
   * Checks every gradient rule against finite differences on a provider, as a job (`jobProgress` per op
   * checked); the job's final message is the verdict.
   */
  checkGradients: {
    args: z.object({ provider: Provider.exclude(['auto']) }).strict(),
    result: z.object({ jobId: z.string() }),
  },
} as const;

export const systemEvents = {
  settingsChanged: Settings,
  /** The background check of the data folder has finished: its findings, in words (as dataFolderProblems). */
  dataFolderChecked: z.object({ problems: z.array(z.string()) }),
} as const;

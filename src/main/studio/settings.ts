// User settings in <dataDir>/settings.json, written atomically. The data folder itself is
// not stored here (it is where this file lives); it is filled in from the open options.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { Provider, Theme, type Settings, type SettingsPatch } from '../../shared/api.js';
import { writeFileAtomic } from './assets.js';

export const SETTINGS_FILE = 'settings.json';

const Stored = z.object({
  preferredProvider: Provider.catch('auto').default('auto'),
  theme: Theme.catch('system').default('system'),
  thirdPartyMirrors: z.boolean().catch(true).default(true),
  exportNoteAndTags: z.boolean().catch(false).default(false),
});
type Stored = z.infer<typeof Stored>;

export class SettingsStore {
  private current: Stored;

  private constructor(
    private readonly dataDir: string,
    stored: Stored,
  ) {
    this.current = stored;
  }

  /** Reads settings.json; a missing, unreadable or invalid file (or field) falls back to the defaults. */
  static async load(dataDir: string): Promise<SettingsStore> {
    let parsed: unknown = {};
    try {
      parsed = JSON.parse(await readFile(join(dataDir, SETTINGS_FILE), 'utf8'));
    } catch {
      parsed = {};
    }
    const r = Stored.safeParse(parsed && typeof parsed === 'object' ? parsed : {});
    return new SettingsStore(dataDir, r.success ? r.data : Stored.parse({}));
  }

  get(): Settings {
    return { dataDir: this.dataDir, ...this.current };
  }

  async update(patch: SettingsPatch): Promise<Settings> {
    const next: Stored = { ...this.current };
    if (patch.preferredProvider !== undefined) next.preferredProvider = patch.preferredProvider;
    if (patch.theme !== undefined) next.theme = patch.theme;
    if (patch.thirdPartyMirrors !== undefined) next.thirdPartyMirrors = patch.thirdPartyMirrors;
    if (patch.exportNoteAndTags !== undefined) next.exportNoteAndTags = patch.exportNoteAndTags;
    await writeFileAtomic(join(this.dataDir, SETTINGS_FILE), JSON.stringify(next, null, 2) + '\n');
    this.current = next;
    return this.get();
  }
}

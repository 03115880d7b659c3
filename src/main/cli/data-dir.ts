// Where the studio keeps its data when run from the CLI: --data-dir, else FSTUDIO_DATA_DIR,
// else the folder the Electron app uses (app.getPath('userData') for productName
// "Foundation Studio"), so the CLI and the app see the same gallery.
import { homedir } from 'node:os';
import path from 'node:path';

export const PRODUCT_NAME = 'Foundation Studio';

export function defaultDataDir(
  platform: NodeJS.Platform = process.platform,
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): string {
  if (platform === 'darwin') return path.posix.join(home, 'Library', 'Application Support', PRODUCT_NAME);
  if (platform === 'win32')
    return path.win32.join(env.APPDATA || path.win32.join(home, 'AppData', 'Roaming'), PRODUCT_NAME);
  return path.posix.join(env.XDG_CONFIG_HOME || path.posix.join(home, '.config'), PRODUCT_NAME);
}

export function resolveDataDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return path.resolve(flag);
  if (env.FSTUDIO_DATA_DIR) return path.resolve(env.FSTUDIO_DATA_DIR);
  return defaultDataDir(process.platform, env);
}

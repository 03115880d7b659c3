// The app's version, for provenance, the graph cache's keys and reports: read from the nearest
// package.json named foundation-studio above this module, so it works from src/ under tsx and from
// out/ in the built app. The lowest layer of the main process: imports nothing of the app.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const APP_PACKAGE_NAME = 'foundation-studio';

let cached: string | undefined;

/** This app's version ('0.0.0' when no package.json of the app is found above this module). */
export function appVersion(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === APP_PACKAGE_NAME && pkg.version) return (cached = pkg.version);
    } catch {
      /* keep walking up */
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return (cached = '0.0.0');
}

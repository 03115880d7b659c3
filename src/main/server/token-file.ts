// The server's token, kept in the data folder (`server-token`, readable by its owner only) so a
// restarted `fstudio serve` lets the browser tabs it served before back in. `--new-token` replaces it.
import { chmod, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeAtomically } from '../engine/weights/file-io.js';
import { newToken } from './auth.js';

export const TOKEN_FILE = 'server-token';

/** A token we wrote: 32 random bytes as base64url (43 characters); anything else in the file is replaced. */
const STORED_TOKEN = /^[A-Za-z0-9_-]{43}$/;

export interface StoredToken {
  token: string;
  file: string;
  /** Why a new token was written: none was stored, the stored one was unreadable, or --new-token. */
  created: 'new' | 'replaced-invalid' | 'rotated' | null;
  /** Set when the file was readable by others and its permissions were narrowed to the owner. */
  narrowed: boolean;
}

/** Written whole or not at all (temp file, fsync, rename), readable by its owner only. */
function writeOwnerOnly(file: string, text: string): Promise<void> {
  return writeAtomically(file, async (fh) => {
    await fh.chmod(0o600); // the umask can only narrow the mode; chmod says it exactly
    await fh.writeFile(text);
  });
}

/**
 * The token of `<dataDir>/server-token`: read when it is there (its permissions narrowed to the owner
 * when they were wider), written when it is not, or replaced when `rotate`.
 */
export async function loadServerToken(dataDir: string, opts: { rotate?: boolean } = {}): Promise<StoredToken> {
  const file = path.join(dataDir, TOKEN_FILE);
  let stored: string | null = null;
  try {
    stored = (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (stored !== null && STORED_TOKEN.test(stored) && !opts.rotate) {
    let narrowed = false;
    if (process.platform !== 'win32' && ((await stat(file)).mode & 0o077) !== 0) {
      await chmod(file, 0o600);
      narrowed = true;
    }
    return { token: stored, file, created: null, narrowed };
  }
  const token = newToken();
  await writeOwnerOnly(file, `${token}\n`);
  return {
    token,
    file,
    created: opts.rotate ? 'rotated' : stored === null ? 'new' : 'replaced-invalid',
    narrowed: false,
  };
}

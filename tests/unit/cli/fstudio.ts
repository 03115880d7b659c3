// Runs the `fstudio` CLI as a user would (bin/fstudio.js through tsx), for the CLI tests.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = fileURLToPath(new URL('../../../', import.meta.url));
export const bin = path.join(repo, 'bin/fstudio.js');

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  /** True when the command was killed after `timeoutMs`. */
  timedOut: boolean;
}

/** Runs `fstudio args...`; with `timeoutMs`, a command that hangs is killed and reported as timed out. */
export function fstudio(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: opts.cwd ?? repo,
      env: { ...process.env, FSTUDIO_DATA_DIR: '', ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

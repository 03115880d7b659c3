// How the CLI talks: results on stdout (JSON with --json), progress and errors on stderr,
// errors as one line unless --verbose.
import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StudioError } from '../../shared/api.js';
import { formatBytes } from '../../shared/format.js';

export { formatBytes };
import { encodeWire } from '../../shared/wire.js';
import { type ProviderChoice } from '../engine/runtime/providers.js';

/** A failure the user can fix; printed as one line, exit code as given. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function printJson(value: unknown): void {
  // Bytes never belong in a terminal; wire encoding at least keeps them valid JSON.
  process.stdout.write(`${JSON.stringify(JSON.parse(encodeWire(value)), null, 2)}\n`);
}

export function errorLine(e: unknown, verbose: boolean): string {
  if (verbose && e instanceof Error && e.stack) return e.stack;
  if (e instanceof CliError) return `fstudio: ${e.message}`;
  if (e instanceof StudioError) return `fstudio: ${e.message} (${e.code})`;
  if (e instanceof Error) return `fstudio: ${e.message.split('\n')[0]} (run again with --verbose for details)`;
  return `fstudio: ${String(e)}`;
}

const exists = (file: string) => `${file} already exists. Choose another name with -o, or add --force to replace it.`;
const noFolder = (file: string) => {
  const dir = path.dirname(file);
  return `cannot write ${file}: the folder ${dir} does not exist. Create it first, or choose another -o.`;
};

/**
 * The checks writeOutputFile makes, before any work is done: refuses an existing file without --force, and a
 * file whose folder does not exist. `file` as the user gave it (messages repeat it).
 */
export function checkOutputFile(file: string, force?: boolean): void {
  if (existsSync(file)) {
    if (statSync(file).isDirectory()) throw new CliError(`cannot write ${file}: it is a folder. Name a file with -o.`);
    if (!force) throw new CliError(exists(file));
  }
  const dir = path.dirname(path.resolve(file));
  if (!existsSync(dir)) throw new CliError(noFolder(file));
  if (!statSync(dir).isDirectory()) throw new CliError(`cannot write ${file}: ${path.dirname(file)} is not a folder.`);
}

/** Writes an output file; an existing one only with force. Failures are CliErrors that say what to do. */
export async function writeOutputFile(file: string, data: string | Uint8Array, force?: boolean): Promise<void> {
  try {
    await writeFile(file, data, { flag: force ? 'w' : 'wx' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new CliError(exists(file));
    if (code === 'ENOENT') throw new CliError(noFolder(file));
    if (code === 'EISDIR') throw new CliError(`cannot write ${file}: it is a folder. Name a file with -o.`);
    if (code === 'ENOTDIR') throw new CliError(`cannot write ${file}: ${path.dirname(file)} is not a folder.`);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
      throw new CliError(`cannot write ${file}: permission denied (${code}). Choose a folder you can write to.`);
    throw new CliError(`cannot write ${file}: ${(e as Error).message}`);
  }
}

/** "provider: cpu (auto; cuda: <why not>)": what ran, and for auto why the better ones did not. */
export function providerLine(choice: ProviderChoice): string {
  if (choice.requested !== 'auto') return `provider: ${choice.provider}`;
  const skipped = choice.considered.filter((r) => r.name !== choice.provider && !r.available);
  const why = skipped.map((r) => `${r.name}: ${r.reason}`).join('; ');
  return `provider: ${choice.provider} (auto${why ? `; ${why}` : ''})`;
}

/** A one-line progress bar on a terminal; on a pipe, nothing until the end (logs stay clean). */
export class ProgressBar {
  private readonly tty: boolean;
  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(done: number, label: string): void {
    if (!this.tty) return;
    const width = 28;
    const filled = Math.round((done / Math.max(1, this.total)) * width);
    const cols = this.stream.columns ?? 100;
    const head = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} `;
    const room = Math.max(0, cols - head.length - 1);
    const name = label.length > room ? `…${label.slice(label.length - room + 1)}` : label;
    this.stream.write(`\r${head}${name}\x1b[K`);
  }

  /** Prints a line above the bar (a failure, say) without breaking it. */
  log(line: string): void {
    this.stream.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  finish(): void {
    if (this.tty) this.stream.write('\r\x1b[K');
  }
}

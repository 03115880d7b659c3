// How the CLI talks: results on stdout (JSON with --json), progress and errors on stderr,
// errors as one line unless --verbose.
import { StudioError } from '../../shared/api.js';
import { encodeWire } from '../../shared/wire.js';

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

export function formatBytes(n: number | null): string {
  if (n === null) return 'unknown';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
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

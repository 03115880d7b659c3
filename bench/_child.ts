// A benchmark's measurement in a child process of its own (a fresh heap, its own peak RSS): the child prints
// one `REPORT <json>` line on stdout when it is done; the parent runs it and reads that line back.
import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

/** In the child: the report, as the one line runReportingChild looks for. */
export function printReport(report: unknown): void {
  process.stdout.write(`\nREPORT ${JSON.stringify(report)}\n`);
}

/** Runs `node --import tsx script ...args` from the repository root and resolves with its report. */
export function runReportingChild<R>(script: string, args: readonly string[], what: string): Promise<R> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('REPORT '));
      if (code !== 0 || !line) reject(new Error(`${what} failed (exit ${code}):\n${out.slice(-2000)}`));
      else resolve(JSON.parse(line.slice(7)) as R);
    });
  });
}

// `fstudio doctor`: versions, execution providers tried for real, data folder, free disk;
// `--gradcheck` also checks every gradient rule against finite differences on a provider.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SystemInfo } from '../../shared/api.js';
import { CliError, formatBytes, printJson } from './output.js';
import { callStudio, withStudio } from './studio-session.js';

export interface DoctorOptions {
  json?: boolean;
  gradcheck?: boolean;
  provider?: string;
}

export function formatSystemInfo(info: SystemInfo): string {
  const rows: [string, string][] = [
    ['App', `Foundation Studio ${info.appVersion}`],
    ['Node', info.node],
    ['Electron', info.electron ?? 'not running in Electron'],
    ['Chrome', info.chrome ?? '-'],
    ['onnxruntime', info.onnxruntime ?? 'not found (is onnxruntime-node installed?)'],
    ['Platform', `${info.platform} ${info.arch}`],
    ['Data folder', info.dataDir],
    ['Free disk', formatBytes(info.freeDiskBytes)],
  ];
  const lines = rows.map(([k, v]) => `${k.padEnd(12)} ${v}`);
  lines.push('', 'Execution providers');
  for (const p of info.providers) {
    const state = p.available ? 'available  ' : 'unavailable';
    const ms = p.ms === null ? '' : ` (${p.ms.toFixed(1)} ms)`;
    lines.push(`  ${p.name.padEnd(7)} ${state} ${p.reason}${ms}`);
  }
  if (info.providers.length === 0) lines.push('  (none reported)');
  return lines.join('\n');
}

const GRADCHECK = '../engine/graph/gradcheck.js';

interface GradcheckModule {
  runGradcheck(opts: { provider?: string }): Promise<unknown>;
}

async function gradcheck(opts: DoctorOptions): Promise<unknown> {
  const source = fileURLToPath(new URL('../engine/graph/gradcheck.ts', import.meta.url));
  if (!existsSync(source) && !existsSync(source.replace(/\.ts$/, '.js')))
    throw new CliError(
      'The gradient check is not available yet in this build (src/main/engine/graph/gradcheck.ts).',
      2,
    );
  // A variable specifier: the engine module is optional while it is being written.
  const mod = (await import(/* @vite-ignore */ GRADCHECK)) as GradcheckModule;
  if (typeof mod.runGradcheck !== 'function') throw new CliError('gradcheck.ts does not export runGradcheck().', 2);
  return mod.runGradcheck({ provider: opts.provider });
}

function describeReport(report: unknown): string {
  if (report && typeof report === 'object' && typeof (report as { summary?: unknown }).summary === 'string')
    return (report as { summary: string }).summary;
  return JSON.stringify(report, null, 2);
}

export async function doctor(dataDir: string, opts: DoctorOptions): Promise<number> {
  const info = await withStudio(dataDir, (studio) => callStudio(studio, 'getSystemInfo', { probeProviders: true }));
  if (!opts.gradcheck) {
    if (opts.json) printJson(info);
    else process.stdout.write(`${formatSystemInfo(info)}\n`);
    return 0;
  }
  if (!opts.json) process.stdout.write(`${formatSystemInfo(info)}\n`);
  const report = await gradcheck(opts);
  if (opts.json) printJson({ system: info, gradcheck: report });
  else
    process.stdout.write(`\nGradient check${opts.provider ? ` on ${opts.provider}` : ''}\n${describeReport(report)}\n`);
  const failed = Boolean(report && typeof report === 'object' && (report as { ok?: unknown }).ok === false);
  return failed ? 1 : 0;
}

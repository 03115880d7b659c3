// `fstudio doctor`: versions, execution providers tried for real, data folder, free disk;
// `--gradcheck` also checks every gradient rule against finite differences on a provider.
import { EXPLICIT_PROVIDERS, Provider, type SystemInfo } from '../../shared/api.js';
import { formatGradcheckReport } from '../engine/graph/gradcheck.js';
import { withCompute } from './compute-session.js';
import { CliError, formatBytes, printJson } from './output.js';
import { callStudio, openReportProblems, withStudio } from './studio-session.js';
import type { OpenReport } from '../studio/types.js';

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
    const state = p.available ? (p.software ? 'software   ' : 'available  ') : 'unavailable';
    const ms = p.ms === null ? '' : ` (${p.ms.toFixed(1)} ms)`;
    lines.push(`  ${p.name.padEnd(7)} ${state} ${p.reason}${ms}`);
  }
  if (info.providers.length === 0) lines.push('  (none reported)');
  if (info.providers.some((p) => p.available && p.software))
    lines.push('  WebGPU runs in software here (no GPU found): it works, but slowly; the CPU provider is faster.');
  return lines.join('\n');
}

/** The open-time check of the data folder, for `fstudio doctor`. */
export function formatOpenReport(r: OpenReport): string {
  const lines = ['', 'Data folder check'];
  const problems = openReportProblems(r);
  if (r.sweep === 'done') {
    const fixed: string[] = [];
    if (r.tempFilesRemoved) fixed.push(`${r.tempFilesRemoved} temp file(s) of interrupted writes removed`);
    if (r.thumbsRebuilt) fixed.push(`${r.thumbsRebuilt} thumbnail(s) rebuilt`);
    if (r.restoredFromTrash) fixed.push(`${r.restoredFromTrash} file(s) brought back from the trash`);
    if (r.trashPurged) fixed.push(`${r.trashPurged} trash batch(es) older than 30 days emptied`);
    if (fixed.length) lines.push(`  Repaired: ${fixed.join('; ')}.`);
  }
  if (problems.length === 0) lines.push('  ok');
  for (const p of problems) lines.push(`  ${p}`);
  return lines.join('\n');
}

export async function doctor(dataDir: string, opts: DoctorOptions): Promise<number> {
  const { info, openReport } = await withStudio(dataDir, async (studio) => ({
    info: await callStudio(studio, 'getSystemInfo', { probeProviders: true }),
    // The check of the data folder runs in the background after open: the doctor waits for it.
    openReport: await studio.checked,
  }));
  const text = `${formatSystemInfo(info)}${openReport ? `\n${formatOpenReport(openReport)}` : ''}`;
  if (!opts.gradcheck) {
    if (opts.json) printJson({ ...info, openReport });
    else process.stdout.write(`${text}\n`);
    return 0;
  }
  if (!opts.json) process.stdout.write(`${text}\n`);
  const provider = Provider.exclude(['auto']).safeParse(opts.provider ?? 'cpu');
  if (!provider.success)
    throw new CliError(`Unknown provider "${opts.provider}": use one of ${EXPLICIT_PROVIDERS.join(', ')}.`, 2);
  const report = await withCompute(dataDir, (c) => c.gradcheck({ provider: provider.data }));
  if (opts.json) printJson({ system: { ...info, openReport }, gradcheck: report });
  else process.stdout.write(`\nGradient check on ${report.provider}\n${formatGradcheckReport(report)}\n`);
  const failed = !report.passed;
  return failed ? 1 : 0;
}

// How the Models page says things: verification, sizes, states and progress in plain words.
// Kept apart from the components so each phrase has one home (and a unit test).
import {
  sourceLabel,
  unusedSourcesWords,
  urlSourceLabel,
  type FileVerification,
  type ModelInfo,
  type ModelProgress,
  type ModelSource,
} from '../../../shared/models.js';
import { formatBytes } from '../lib/format.js';

export type ModelKind = ModelInfo['kind'];
export type FileProgress = ModelProgress['files'][number];

export const kindOrder: readonly { kind: ModelKind; title: string; blurb: string; usedBy: string }[] = [
  {
    kind: 'clip',
    title: 'CLIP',
    blurb: 'Scores images against text: guides image generation and classifies zero-shot.',
    usedBy: 'Generate and Classify need one.',
  },
  {
    kind: 'vqgan',
    title: 'VQGAN',
    blurb: 'Turns a grid of tokens into an image: the canvas VQGAN+CLIP paints on.',
    usedBy: 'Generate needs one.',
  },
  {
    kind: 'text-lm',
    title: 'Text LMs',
    blurb: 'Small language models for few-shot prompts and prompt-made models.',
    usedBy: 'Prompt Lab needs one.',
  },
];

export const verificationWords: Record<FileVerification, string> = {
  sha256: 'SHA-256 verified',
  'hf-linked-etag': "verified against Hugging Face's hash",
  recorded: 'recorded, not verified',
};

export function verificationTitle(v: FileVerification): string {
  return {
    sha256: 'The file matches the SHA-256 published in the catalog.',
    'hf-linked-etag': 'The file matches the SHA-256 Hugging Face sent (X-Linked-Etag) when it was downloaded.',
    recorded:
      'No published hash to check against: its SHA-256 was recorded when it arrived, so later changes are caught by Verify.',
  }[v];
}

export const modelStateWords: Record<ModelInfo['state'], string> = {
  installed: 'Installed',
  partial: 'Partly downloaded',
  missing: 'Not installed',
};

export const fileStateWords: Record<FileProgress['state'], string> = {
  queued: 'Queued',
  connecting: 'Connecting',
  downloading: 'Downloading',
  stalled: 'Stalled',
  retrying: 'Retrying',
  verifying: 'Checking',
  done: 'Done',
  failed: 'Failed',
  skipped: 'Skipped',
  cancelled: 'Stopped',
};

/** "about 577 MB", "12 MB", or "size unknown"; small files the catalog gives no size for are counted. */
export function modelSizeWords(
  m: Pick<ModelInfo, 'expectedBytes' | 'expectedApproximate' | 'expectedUnknownFiles'>,
): string {
  if (m.expectedBytes === null) return 'size unknown';
  const size = `${m.expectedApproximate ? 'about ' : ''}${formatBytes(m.expectedBytes)}`;
  const extra = m.expectedUnknownFiles;
  return extra > 0 ? `${size} + ${extra} small file${extra === 1 ? '' : 's'}` : size;
}

export function fileSizeWords(f: ModelInfo['files'][number]): string {
  const expected =
    f.expectedBytes === null ? null : `${f.expectedApproximate ? 'about ' : ''}${formatBytes(f.expectedBytes)}`;
  if (f.state === 'present') return formatBytes(f.bytes);
  if (f.state === 'partial')
    return expected ? `${formatBytes(f.bytes)} of ${expected}` : `${formatBytes(f.bytes)} so far`;
  return expected ?? 'size unknown';
}

/** "about 40 s left", "about 3 min left", "about 1 h 5 min left". */
export function etaWords(seconds: number | null): string | null {
  if (seconds === null || !Number.isFinite(seconds)) return null;
  const s = Math.max(1, Math.round(seconds));
  if (s < 60) return `about ${s} s left`;
  const min = Math.round(s / 60);
  if (min < 60) return `about ${min} min left`;
  return `about ${Math.floor(min / 60)} h ${min % 60} min left`;
}

export function speedWords(bytesPerSecond: number): string | null {
  return bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : null;
}

/** "1.2 MB of 4.0 MB", or "1.2 MB" while the total is unknown. */
export function bytesWords(bytes: number, total: number | null): string {
  return total !== null && total > 0 ? `${formatBytes(bytes)} of ${formatBytes(total)}` : formatBytes(bytes);
}

/** Bytes, speed and time left joined with middle dots, leaving out what is not known. */
export function progressLine(p: {
  bytes: number;
  total: number | null;
  speed: number;
  etaSeconds: number | null;
}): string {
  return [bytesWords(p.bytes, p.total), speedWords(p.speed), etaWords(p.etaSeconds)].filter(Boolean).join(' · ');
}

export type PullPhase = 'queued' | 'waiting' | 'downloading' | 'stalled' | 'retrying' | 'done' | 'failed' | 'cancelled';

/** Where a pull stands, for its headline: a stall or a retry outranks plain downloading. */
export function pullPhase(p: ModelProgress): PullPhase {
  if (p.state === 'done' || p.state === 'failed' || p.state === 'cancelled') return p.state;
  if (p.state === 'queued') return 'queued';
  if (p.stalled || p.files.some((f) => f.state === 'stalled')) return 'stalled';
  if (p.files.some((f) => f.state === 'retrying')) return 'retrying';
  const open = p.files.filter((f) => !['done', 'failed', 'skipped', 'cancelled'].includes(f.state));
  if (open.length > 0 && open.every((f) => f.state === 'queued')) return 'waiting';
  return 'downloading';
}

export function pullHeadline(p: ModelProgress): string {
  switch (pullPhase(p)) {
    case 'queued':
      return 'Queued: checking free space';
    case 'waiting':
      return 'Queued: waiting for other downloads to finish';
    case 'downloading':
      return 'Downloading';
    case 'stalled':
      return 'Stalled — no data is arriving; it is retried automatically';
    case 'retrying': {
      const f = p.files.find((x) => x.state === 'retrying');
      return `Retrying${f?.message ? `: ${f.name}: ${f.message}` : ''}`;
    }
    case 'done': {
      const got = p.files.filter((f) => f.state === 'done');
      const skipped = p.files.filter((f) => f.state === 'skipped');
      const n = got.length;
      return (
        `Downloaded ${n} file${n === 1 ? '' : 's'} (${formatBytes(p.bytes)}); each was hashed and moved into place.` +
        (skipped.length ? ` Skipped optional: ${skipped.map((f) => f.name).join(', ')}.` : '')
      );
    }
    case 'failed':
      return p.message ?? 'The download failed; every mirror was tried.';
    case 'cancelled':
      return 'Download stopped. What arrived is kept: Resume continues from there.';
  }
}

/** One file's status line: its state, then where it comes from, then why (a stall, a retry). */
export function fileLine(f: FileProgress, sources: readonly ModelSource[] = []): string {
  const parts: string[] = [fileStateWords[f.state]];
  if (f.state === 'downloading' || f.state === 'stalled' || f.state === 'verifying') parts.push(progressLine(f));
  if (f.url && !['done', 'skipped', 'queued', 'failed', 'cancelled'].includes(f.state))
    parts.push(`from ${urlSourceLabel(f.url, sources)}`);
  if (f.message && f.state !== 'done') parts.push(f.message);
  return parts.filter(Boolean).join(' · ');
}

/** "huggingface.co (Hugging Face), then hf-mirror.com (third-party mirror)", and what is turned off. */
export function sourcesWords(sources: readonly ModelSource[]): { tried: string; off: string | null } {
  const on = sources.filter((s) => s.enabled);
  return {
    tried: on.map(sourceLabel).join(', then ') || 'no server (every one is turned off)',
    off: unusedSourcesWords(sources, 'turned off in Settings'),
  };
}

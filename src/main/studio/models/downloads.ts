// Downloads of model files that survive real networks: a queue (two files at a time), per-file
// and total progress (bytes, speed over a moving window, ETA), resume with HTTP Range into
// <dest>.part, retries with exponential backoff and jitter, a stall detector that says so, cancel,
// a free-space check before the first byte is asked for, SHA-256 computed while streaming,
// Hugging Face's X-Linked-Etag checked, atomic rename into place, and the next mirror when one
// fails, with every mirror's reason in the final message.
//
// LM Studio's most reported download problems are silent stalls and lost partial files; hence
// the `stalled` state (shown after stallReportMs, the attempt aborted after stallTimeoutMs) and
// the .part files that outlive a cancel, a crash or an update.
import { createHash, type Hash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { dirname, sep } from 'node:path';
import { formatBytes } from '../../../shared/format.js';
import { hashPrefixInto } from './hash.js';

export type FileState =
  | 'queued'
  | 'connecting'
  | 'downloading'
  | 'stalled'
  | 'retrying'
  | 'verifying'
  | 'done'
  | 'failed'
  | 'skipped'
  | 'cancelled';

export interface DownloadSpec {
  /** Unique within a job; shown in progress (e.g. "pytorch_model.bin"). */
  name: string;
  /** Mirrors, tried in order. */
  urls: string[];
  /** Final path; the download goes to `${dest}.part` and is renamed here once verified. */
  dest: string;
  /** Published SHA-256: the file must match it. */
  sha256?: string;
  /**
   * Check the SHA-256 Hugging Face sends in X-Linked-Etag (LFS files) when a response has one. It is
   * trusted only from a Hugging Face host (see DownloaderOptions.trustLinkedEtagFrom), and only on
   * the mirrors listed in `linkedEtagUrls` when that is given (an organisation's own mirror is not
   * Hugging Face, whatever headers it sends).
   */
  linkedEtag?: boolean;
  linkedEtagUrls?: string[];
  /**
   * Size from the catalog, for the free-space check before starting; a download whose size is far
   * from it (exact: any difference; approximate, of 16 MiB or more: outside 50%..150%) is refused as not the file.
   */
  size?: { bytes: number; approximate: boolean };
  /** Failing on every mirror does not fail the job (the file is reported as skipped). */
  optional?: boolean;
}

export type VerifiedBy = 'sha256' | 'hf-linked-etag' | 'none';

export interface FileResult {
  name: string;
  dest: string;
  sha256: string;
  bytes: number;
  /** The mirror it came from. */
  url: string;
  /** What the hash was checked against; 'none' means recorded, not verified. */
  verifiedBy: VerifiedBy;
}

export interface MirrorFailure {
  url: string;
  reason: string;
  /** Set when the mirror's host name did not resolve. */
  unresolvedHost?: string;
}

export interface FileProgress {
  name: string;
  state: FileState;
  /** Bytes on disk (resumed prefix included). */
  bytes: number;
  /** Total size when known (Content-Length / Content-Range / catalog). */
  total: number | null;
  /** Bytes per second over the moving window. */
  speed: number;
  etaSeconds: number | null;
  url: string | null;
  /** 1-based mirror index and count. */
  mirror: number;
  mirrors: number;
  /** Consecutive failed attempts on this mirror + 1, and the limit. */
  attempt: number;
  maxAttempts: number;
  /** Why it is stalled / retrying / failed, in words. */
  message: string | null;
}

export interface JobProgress {
  jobId: string;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  files: FileProgress[];
  bytes: number;
  /** Sum of the file totals; null while any is unknown. */
  total: number | null;
  speed: number;
  etaSeconds: number | null;
  /** True while any file is stalled. */
  stalled: boolean;
  message: string | null;
}

/** cancelled; disk-full (before or while writing); io: the local file cannot be written; failed: every mirror failed. */
export type DownloadErrorCode = 'cancelled' | 'disk-full' | 'io' | 'failed';

export class DownloadError extends Error {
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
    /** Per file, what each mirror said (code 'failed'). */
    readonly failures: { name: string; mirrors: MirrorFailure[] }[] = [],
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

export interface DownloaderOptions {
  /** Files downloaded at once across all jobs. */
  concurrency?: number;
  /** Attempts per mirror before moving to the next (attempts that received bytes do not count). */
  maxAttempts?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** No bytes for this long: progress says `stalled`. */
  stallReportMs?: number;
  /** No bytes for this long: the attempt is aborted and retried. */
  stallTimeoutMs?: number;
  speedWindowMs?: number;
  /** Minimum time between progress events (state changes are always sent). */
  progressIntervalMs?: number;
  maxRedirects?: number;
  /** Free bytes on the volume holding `dir` (a test injects a full disk). */
  freeSpace?: (dir: string) => Promise<number>;
  /** Bytes to leave free beyond what the files need. */
  reserveBytes?: number;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  userAgent?: string;
  /** Hosts whose X-Linked-Etag is believed (default: huggingface.co, hf.co and their subdomains, over https). */
  trustLinkedEtagFrom?: (url: URL) => boolean;
}

/** Hugging Face's own hosts: the only ones whose X-Linked-Etag is a published hash. */
export function isHuggingFaceUrl(url: URL): boolean {
  const h = url.hostname.toLowerCase();
  return (
    url.protocol === 'https:' &&
    (h === 'huggingface.co' || h.endsWith('.huggingface.co') || h === 'hf.co' || h.endsWith('.hf.co'))
  );
}

/**
 * Approximate sizes below this are the catalog's estimate of a small text file (a config, a tokenizer):
 * shown and counted for free space, never held against the file (such files change size between versions).
 */
export const CHECKED_APPROXIMATE_SIZE = 16 * 1024 * 1024;

/**
 * Whether `bytes` is plausibly the catalog's file: exact sizes must match, approximate ones of large files
 * be within 50%..150% (an error page instead of the weights is the mistake this catches).
 */
export function sizeMismatch(bytes: number, size: DownloadSpec['size']): string | null {
  if (!size || (size.approximate && size.bytes < CHECKED_APPROXIMATE_SIZE)) return null;
  const ok = size.approximate ? bytes >= size.bytes * 0.5 && bytes <= size.bytes * 1.5 : bytes === size.bytes;
  if (ok) return null;
  return (
    `the server sent ${formatBytes(bytes)} where ${size.approximate ? 'about ' : ''}${formatBytes(size.bytes)} was expected` +
    (bytes < size.bytes / 2 ? ' — probably an error page' : '')
  );
}

/** Files a server may legitimately send as text/html (anything else that comes back as HTML is an error or login page). */
const HTML_OK = /\.(html?|json|txt|ya?ml)$/i;

/** getaddrinfo could not resolve the host: the network (or its DNS) is down, or the name does not exist. */
function isDnsFailure(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOTFOUND' || code === 'EAI_AGAIN';
}

export async function statfsFreeSpace(dir: string): Promise<number> {
  // The folder may not exist yet: ask about the nearest ancestor that does.
  let d = dir;
  for (;;) {
    try {
      const s = await statfs(d);
      return s.bavail * s.bsize;
    } catch (e) {
      const up = dirname(d);
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || up === d) throw e;
      d = up;
    }
  }
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** "abc…" with quotes and a W/ prefix removed; a 64-hex value is an LFS file's SHA-256. */
export function parseLinkedEtag(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const s = v
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1')
    .toLowerCase();
  return /^[0-9a-f]{64}$/.test(s) ? s : undefined;
}

// ---------- one attempt's failure, classified ----------
type Next = 'retry' | 'next-mirror' | 'restart';
class AttemptFailure extends Error {
  constructor(
    readonly next: Next,
    message: string,
    /** Wait before retrying (429/503 Retry-After), else backoff. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}
class StallError extends Error {}
/** A mirror whose host name did not resolve (no network, or no such host). */
class DnsFailure extends AttemptFailure {
  constructor(
    readonly host: string,
    message: string,
  ) {
    super('next-mirror', message);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

interface Opened {
  res: http.IncomingMessage;
  linkedEtag?: string;
  linkedSize?: number;
}

/** GET with redirects followed (bounded); the linked etag comes from the first response that has one. */
async function openUrl(
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  maxRedirects: number,
  trustLinkedEtag: (u: URL) => boolean,
): Promise<Opened> {
  let current = url;
  let linkedEtag: string | undefined;
  let linkedSize: number | undefined;
  for (let hop = 0; ; hop++) {
    const u = new URL(current);
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new AttemptFailure('next-mirror', `unsupported URL scheme ${u.protocol}`);
    const lib = u.protocol === 'https:' ? https : http;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = lib.get(u, { headers, signal, agent: false }, resolve);
      req.on('error', reject);
    });
    if (trustLinkedEtag(u)) linkedEtag ??= parseLinkedEtag(res.headers['x-linked-etag']);
    if (linkedSize === undefined) {
      const s = Number(res.headers['x-linked-size']);
      if (Number.isSafeInteger(s) && s > 0) linkedSize = s;
    }
    const status = res.statusCode ?? 0;
    if (REDIRECTS.has(status)) {
      res.resume();
      const location = res.headers.location;
      if (!location) throw new AttemptFailure('next-mirror', `HTTP ${status} redirect without a Location header`);
      if (hop >= maxRedirects) throw new AttemptFailure('next-mirror', `more than ${maxRedirects} redirects`);
      current = new URL(location, current).toString();
      continue;
    }
    return { res, linkedEtag, linkedSize };
  }
}

function retryAfterMs(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/** Where a resumable download stands; lets If-Range refuse a prefix of a file that changed. */
interface PartMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  linkedEtag?: string;
  total?: number;
}

const partOf = (dest: string) => `${dest}.part`;
const metaOf = (dest: string) => `${dest}.part.json`;

async function readPartMeta(dest: string): Promise<PartMeta | null> {
  try {
    return JSON.parse(await readFile(metaOf(dest), 'utf8')) as PartMeta;
  } catch {
    return null;
  }
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, path);
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Bytes per second over the last `windowMs`. */
export class SpeedMeter {
  private samples: [number, number][] = [];
  constructor(
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}
  add(totalReceived: number): void {
    const t = this.now();
    this.samples.push([t, totalReceived]);
    while (this.samples.length > 2 && t - this.samples[0]![0] > this.windowMs) this.samples.shift();
  }
  reset(): void {
    this.samples = [];
  }
  speed(): number {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0]!;
    const [t1, b1] = this.samples.at(-1)!;
    const dt = Math.max(1, this.now() - t0, t1 - t0);
    return ((b1 - b0) * 1000) / dt;
  }
}

interface FileTask {
  spec: DownloadSpec;
  progress: FileProgress;
  signal: AbortSignal;
  emit: (force: boolean) => void;
  onFile?: (r: FileResult) => void | Promise<void>;
}

// ---------- the steps of one attempt ----------

/** What is already downloaded: the .part file's length, the hash of those bytes, and where they came from. */
interface Resumed {
  meta: PartMeta | null;
  offset: number;
  hash: Hash;
}

/**
 * Picks up the .part file: its bytes count only when they came from this URL or a hash can prove
 * that they belong to the file; the running hash is restored by reading them again.
 */
async function resumePart(task: FileTask, url: string, signal: AbortSignal): Promise<Resumed> {
  const { spec, progress } = task;
  const part = partOf(spec.dest);
  const meta = await readPartMeta(spec.dest);
  let offset = await sizeOf(part);
  if (offset > 0 && meta?.url !== url && !spec.sha256 && !meta?.linkedEtag) {
    // Another mirror's (or an unknown source's) bytes, and no hash to prove that the two
    // halves are one file: start over rather than splice two versions together.
    await rm(part, { force: true });
    offset = 0;
  }
  const hash = createHash('sha256');
  if (offset > 0) {
    progress.state = 'verifying';
    progress.bytes = offset;
    progress.message = `re-reading ${formatBytes(offset)} already downloaded`;
    task.emit(true);
    const n = await hashPrefixInto(hash, part, offset, signal);
    if (n !== offset) throw new AttemptFailure('restart', 'the partial file changed while it was read');
  }
  return { meta, offset, hash };
}

/** The GET's headers: after a .part, a Range from its end, with If-Range so a changed file starts over. */
function requestHeaders(userAgent: string, url: string, { meta, offset }: Resumed): Record<string, string> {
  const headers: Record<string, string> = { 'User-Agent': userAgent, 'Accept-Encoding': 'identity' };
  if (offset > 0) {
    headers.Range = `bytes=${offset}-`;
    // Only the same URL's validator means anything; another mirror's etag would always differ.
    // If-Range takes a strong ETag or a date; a weak ETag would make every resume start over.
    const validator = meta?.etag && !meta.etag.startsWith('W/') ? meta.etag : meta?.lastModified;
    if (meta && meta.url === url && validator) headers['If-Range'] = validator;
  }
  return headers;
}

/** What a usable response brings. */
interface Answer {
  /** 200 (the whole file), 206 (the rest of it) or 416 (the .part is already the whole file). */
  status: number;
  /** Where the body's first byte goes in the file. */
  offset: number;
  /** The whole file's size, when the server (or X-Linked-Size) says. */
  total: number | null;
}

/**
 * Reads the response's status and range. A status without a usable body, an HTML page instead of
 * the file, or a size that is not the catalog's throws the failure that says what to do next.
 */
function checkResponse({ res, linkedSize }: Opened, offset: number, spec: DownloadSpec): Answer {
  const answer = rangeOf(res, offset);
  if (answer.status !== 416) refuseHtmlPage(res, spec);
  answer.total ??= linkedSize ?? null;
  // A body whose announced size is not the catalog's file is not worth fetching.
  const wrongSize = answer.total !== null ? sizeMismatch(answer.total, spec.size) : null;
  if (wrongSize) {
    res.resume();
    throw new AttemptFailure('next-mirror', wrongSize);
  }
  return answer;
}

/** Where the body of a 200, 206 or 416 belongs; any other status is a failure (retry or next mirror). */
function rangeOf(res: http.IncomingMessage, offset: number): Answer {
  const status = res.statusCode ?? 0;
  if (status === 416) {
    res.resume();
    const m = /\/(\d+)\s*$/.exec(String(res.headers['content-range'] ?? ''));
    const size = m ? Number(m[1]) : null;
    // The .part is already the whole file (a crash between the last byte and the rename).
    if (offset > 0 && size === offset) return { status, offset, total: size };
    throw new AttemptFailure('restart', `HTTP 416: the partial file (${formatBytes(offset)}) does not fit`);
  }
  if (status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? '').trim());
    if (!m || Number(m[1]) !== offset) {
      res.resume();
      throw new AttemptFailure(
        'restart',
        `HTTP 206 with an unexpected Content-Range "${res.headers['content-range']}"`,
      );
    }
    return { status, offset, total: m[3] === '*' ? null : Number(m[3]) };
  }
  if (status === 200) {
    // From the first byte: the server ignored the Range (or If-Range said the file changed), so start over cleanly.
    const len = Number(res.headers['content-length']);
    return { status, offset: 0, total: Number.isSafeInteger(len) && len >= 0 ? len : null };
  }
  res.resume();
  const text = `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
  if (status === 404 || status === 410) throw new AttemptFailure('next-mirror', text);
  if (status === 408 || status === 429 || status >= 500)
    throw new AttemptFailure('retry', text, retryAfterMs(res.headers['retry-after']));
  throw new AttemptFailure('next-mirror', text);
}

function refuseHtmlPage(res: http.IncomingMessage, spec: DownloadSpec): void {
  const type = String(headerString(res.headers['content-type']) ?? '').toLowerCase();
  if (type.startsWith('text/html') && !HTML_OK.test(spec.name)) {
    res.resume();
    throw new AttemptFailure(
      'next-mirror',
      `the server sent an HTML page (Content-Type ${type}) instead of ${spec.name} — probably an error or login page`,
    );
  }
}

/**
 * One attempt's stall detector: after stallReportMs without data the file shows as stalled, and
 * after stallTimeoutMs the attempt is aborted with a StallError (then retried).
 */
class StallWatch {
  private timer: NodeJS.Timeout | undefined;
  private lastByteAt: number;

  constructor(
    private readonly o: Required<DownloaderOptions>,
    private readonly task: FileTask,
    private readonly url: string,
    private readonly ctl: AbortController,
  ) {
    this.lastByteAt = o.now();
  }

  /** Something arrived: count from now. */
  arm(): void {
    clearTimeout(this.timer);
    this.lastByteAt = this.o.now();
    this.timer = setTimeout(() => this.reportStall(), this.o.stallReportMs);
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private reportStall(): void {
    const { progress } = this.task;
    progress.state = 'stalled';
    progress.speed = 0;
    progress.etaSeconds = null;
    progress.message = `no data for ${Math.round(this.o.stallReportMs / 1000)} s`;
    this.task.emit(true);
    this.timer = setTimeout(
      () =>
        this.ctl.abort(
          new StallError(
            `stalled: no data for ${Math.round((this.o.now() - this.lastByteAt) / 1000)} s from ${this.url}`,
          ),
        ),
      this.o.stallTimeoutMs - this.o.stallReportMs,
    );
  }
}

/** Deletes the .part file and its metadata: the next attempt starts from the first byte. */
async function deletePart(task: FileTask): Promise<void> {
  await rm(partOf(task.spec.dest), { force: true });
  await rm(metaOf(task.spec.dest), { force: true });
  task.progress.bytes = 0;
}

/**
 * Checks the finished .part against the catalog's size and SHA-256 and the server's X-Linked-Etag
 * (a mismatch deletes it and tries the next mirror), then renames it into place.
 */
async function verifyAndPlace(
  task: FileTask,
  url: string,
  running: Hash,
  meta: PartMeta | null,
  linkedEtag: string | undefined,
  trustLinkedEtagFrom: (u: URL) => boolean,
): Promise<FileResult> {
  const { spec, progress } = task;
  const part = partOf(spec.dest);
  progress.state = 'verifying';
  progress.speed = 0;
  progress.etaSeconds = null;
  task.emit(true);
  const sha256 = running.digest('hex');
  const bytes = await sizeOf(part);
  const metaTrusted =
    meta !== null &&
    (!spec.linkedEtagUrls || spec.linkedEtagUrls.includes(meta.url)) &&
    trustedUrl(meta.url, trustLinkedEtagFrom);
  const etag = linkedEtag ?? (metaTrusted ? meta.linkedEtag : undefined);
  let verifiedBy: VerifiedBy = 'none';
  const wrong = sizeMismatch(bytes, spec.size);
  if (wrong) {
    await deletePart(task);
    throw new AttemptFailure('next-mirror', `${wrong}; the download was deleted`);
  }
  const reject = async (what: string, expected: string) => {
    await deletePart(task);
    throw new AttemptFailure(
      'next-mirror',
      `checksum mismatch: the file's SHA-256 is ${sha256} but ${what} says ${expected}; the download was deleted`,
    );
  };
  if (spec.sha256) {
    if (sha256 !== spec.sha256) await reject('the catalog', spec.sha256);
    verifiedBy = 'sha256';
  }
  if (spec.linkedEtag && etag) {
    if (sha256 !== etag) await reject("the server's X-Linked-Etag", etag);
    if (verifiedBy === 'none') verifiedBy = 'hf-linked-etag';
  }
  await rename(part, spec.dest);
  await rm(metaOf(spec.dest), { force: true });
  progress.state = 'done';
  progress.bytes = bytes;
  progress.total = bytes;
  progress.message = null;
  task.emit(true);
  return { name: spec.name, dest: spec.dest, sha256, bytes, url, verifiedBy };
}

// ---------- the downloader ----------

export interface JobHandle {
  id: string;
  /** Resolves with one result per file that was downloaded (skipped optional files are left out). */
  done: Promise<FileResult[]>;
  /** Stops the job; the .part files stay for a later resume unless `discard`. */
  cancel(discard?: boolean): void;
  progress(): JobProgress;
}

export class Downloader {
  private readonly o: Required<DownloaderOptions>;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private seq = 0;

  constructor(options: DownloaderOptions = {}) {
    this.o = {
      concurrency: 2,
      maxAttempts: 5,
      backoffBaseMs: 1000,
      backoffMaxMs: 30_000,
      stallReportMs: 10_000,
      stallTimeoutMs: 30_000,
      speedWindowMs: 5_000,
      progressIntervalMs: 250,
      maxRedirects: 8,
      freeSpace: statfsFreeSpace,
      reserveBytes: 64 * 1024 * 1024,
      now: () => performance.now(),
      random: Math.random,
      sleep: defaultSleep,
      userAgent: 'FoundationStudio',
      trustLinkedEtagFrom: isHuggingFaceUrl,
      ...options,
    };
    if (this.o.stallTimeoutMs < this.o.stallReportMs) this.o.stallTimeoutMs = this.o.stallReportMs;
  }

  /** Queues a set of files as one job (a model pull). */
  enqueue(
    specs: DownloadSpec[],
    opts: {
      jobId?: string;
      onProgress?: (p: JobProgress) => void;
      /** Called once each file is verified and in place (record its hash here). */
      onFile?: (r: FileResult) => void | Promise<void>;
      signal?: AbortSignal;
    } = {},
  ): JobHandle {
    const id = opts.jobId ?? `download-${++this.seq}`;
    const ctl = new AbortController();
    if (opts.signal) {
      if (opts.signal.aborted) ctl.abort(opts.signal.reason);
      else opts.signal.addEventListener('abort', () => ctl.abort(opts.signal!.reason), { once: true });
    }
    let discard = false;
    const files: FileProgress[] = specs.map((s) => ({
      name: s.name,
      state: 'queued',
      bytes: 0,
      total: s.size && !s.size.approximate ? s.size.bytes : null,
      speed: 0,
      etaSeconds: null,
      url: null,
      mirror: 0,
      mirrors: s.urls.length,
      attempt: 0,
      maxAttempts: this.o.maxAttempts,
      message: null,
    }));
    let jobState: JobProgress['state'] = 'queued';
    let jobMessage: string | null = null;
    const snapshot = (): JobProgress => {
      const bytes = files.reduce((a, f) => a + f.bytes, 0);
      const total = files.every((f) => f.total !== null || f.state === 'skipped')
        ? files.reduce((a, f) => a + (f.total ?? 0), 0)
        : null;
      const speed = files.reduce((a, f) => a + f.speed, 0);
      return {
        jobId: id,
        state: jobState,
        files: files.map((f) => ({ ...f })),
        bytes,
        total,
        speed,
        etaSeconds: total !== null && speed > 0 ? Math.max(0, total - bytes) / speed : null,
        stalled: files.some((f) => f.state === 'stalled'),
        message: jobMessage,
      };
    };
    let last = -Infinity;
    const emit = (force: boolean) => {
      if (!opts.onProgress) return;
      const t = this.o.now();
      if (!force && t - last < this.o.progressIntervalMs) return;
      last = t;
      try {
        opts.onProgress(snapshot());
      } catch (e) {
        console.error('[downloads] progress listener failed:', e);
      }
    };

    const run = async (): Promise<FileResult[]> => {
      // The first event goes out after enqueue() has returned: a listener that reads the handle
      // (`const job = enqueue(..., { onProgress: () => job.progress() })`) never sees it half-made.
      await new Promise<void>((resolve) => queueMicrotask(resolve));
      emit(true);
      await this.checkFreeSpace(specs, ctl.signal);
      jobState = 'running';
      emit(true);
      const settled = await Promise.allSettled(
        specs.map((spec, i) =>
          this.slot(ctl.signal, () =>
            this.downloadFile({ spec, progress: files[i]!, signal: ctl.signal, emit, onFile: opts.onFile }),
          ).catch((e: unknown) => {
            // A full or unwritable disk stops the whole job: the other files would hit it too.
            if (e instanceof DownloadError && (e.code === 'disk-full' || e.code === 'io')) ctl.abort(e);
            throw e;
          }),
        ),
      );
      if (ctl.signal.aborted) throw cancelled(ctl.signal);
      const results: FileResult[] = [];
      const failures: { name: string; mirrors: MirrorFailure[] }[] = [];
      const other: Error[] = [];
      settled.forEach((s, i) => {
        const spec = specs[i]!;
        if (s.status === 'fulfilled') results.push(s.value);
        else if (s.reason instanceof DownloadError && s.reason.code === 'failed' && s.reason.failures.length) {
          if (spec.optional) {
            files[i]!.state = 'skipped';
            files[i]!.message = `optional file not available: ${s.reason.message}`;
          } else failures.push(...s.reason.failures);
        } else other.push(s.reason as Error);
      });
      if (other.length) throw other[0];
      if (failures.length) {
        const offline = noNetworkMessage(failures.flatMap((f) => f.mirrors));
        if (offline) throw new DownloadError('failed', offline, failures);
        const lines = failures.flatMap((f) => [
          `${f.name}: every mirror failed:`,
          ...f.mirrors.map((m, k) => `  ${k + 1}. ${m.url} — ${m.reason}`),
        ]);
        throw new DownloadError('failed', lines.join('\n'), failures);
      }
      return results;
    };

    const done = run().then(
      (r) => {
        jobState = 'done';
        emit(true);
        return r;
      },
      async (e: unknown) => {
        const err = e instanceof DownloadError ? e : new DownloadError('failed', (e as Error).message);
        jobState = err.code === 'cancelled' ? 'cancelled' : 'failed';
        jobMessage = err.message;
        // Files still under way were stopped with the job.
        for (const f of files)
          if (!['done', 'skipped', 'failed'].includes(f.state)) {
            f.state = 'cancelled';
            f.speed = 0;
            f.etaSeconds = null;
          }
        if (err.code === 'cancelled') {
          if (discard)
            await Promise.all(
              specs.map((s) => Promise.all([rm(partOf(s.dest), { force: true }), rm(metaOf(s.dest), { force: true })])),
            );
        }
        emit(true);
        throw err;
      },
    );
    return {
      id,
      done,
      cancel: (d = false) => {
        discard ||= d;
        ctl.abort(new DownloadError('cancelled', 'The download was cancelled.'));
      },
      progress: snapshot,
    };
  }

  /** At most `concurrency` files at once; a finished file hands its slot straight to the next waiter. */
  private async slot<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    if (this.running < this.o.concurrency) this.running++;
    else
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          const i = this.waiting.indexOf(wake);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(cancelled(signal));
        };
        this.waiting.push(wake);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    try {
      if (signal.aborted) throw cancelled(signal);
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  /**
   * Refuses before any request when the files (less what is already in .part files) do not fit.
   * A job's files share a folder (a model's), so one check at their common folder covers them.
   */
  private async checkFreeSpace(specs: DownloadSpec[], signal: AbortSignal): Promise<void> {
    let need = 0;
    for (const s of specs) {
      if (!s.size) continue;
      need += Math.max(0, s.size.bytes - (await sizeOf(partOf(s.dest))));
    }
    if (need === 0 || specs.length === 0) return;
    if (signal.aborted) throw cancelled(signal);
    await this.requireSpace(commonDir(specs.map((s) => dirname(s.dest))), need);
  }

  private async requireSpace(dir: string, need: number): Promise<void> {
    const free = await this.o.freeSpace(dir);
    if (free < need + this.o.reserveBytes)
      throw new DownloadError(
        'disk-full',
        `Not enough free disk space in ${dir}: the download needs ${formatBytes(need)} ` +
          `(plus ${formatBytes(this.o.reserveBytes)} kept free) but only ${formatBytes(free)} is free. ` +
          `Free some space or choose another data folder, then download again (what has arrived is kept).`,
      );
  }

  /** One file across its mirrors; resolves once it is verified and in place. */
  private async downloadFile(task: FileTask): Promise<FileResult> {
    const { spec, progress, signal } = task;
    await mkdir(dirname(spec.dest), { recursive: true });
    const failures: MirrorFailure[] = [];
    for (let m = 0; m < spec.urls.length; m++) {
      const url = spec.urls[m]!;
      progress.mirror = m + 1;
      progress.url = url;
      let result: FileResult;
      try {
        result = await this.fromMirror(task, url);
      } catch (e) {
        if (signal.aborted) throw cancelled(signal);
        if (e instanceof DownloadError) {
          // Disk full or unwritable: no mirror helps.
          progress.state = 'failed';
          progress.speed = 0;
          progress.etaSeconds = null;
          progress.message = e.message;
          task.emit(true);
          throw e;
        }
        const reason = (e as Error).message;
        failures.push({ url, reason, ...(e instanceof DnsFailure ? { unresolvedHost: e.host } : {}) });
        if (m + 1 < spec.urls.length) {
          progress.state = 'retrying';
          progress.speed = 0;
          progress.etaSeconds = null;
          progress.message = `${reason} — trying the next mirror`;
          task.emit(true);
        }
        continue;
      }
      await task.onFile?.(result);
      return result;
    }
    progress.state = 'failed';
    progress.speed = 0;
    progress.etaSeconds = null;
    progress.message = failures.at(-1)?.reason ?? null;
    task.emit(true);
    const err = new DownloadError(
      'failed',
      noNetworkMessage(failures) ??
        `${spec.name}: every mirror failed: ${failures.map((f, k) => `(${k + 1}) ${f.url} — ${f.reason}`).join('; ')}`,
      [{ name: spec.name, mirrors: failures }],
    );
    throw err;
  }

  /** Attempts on one mirror, with backoff; throws the last reason when this mirror is given up. */
  private async fromMirror(task: FileTask, url: string): Promise<FileResult> {
    const { progress, signal } = task;
    let failuresInARow = 0;
    let attempts = 0;
    let dnsFailures = 0;
    for (;;) {
      attempts++;
      progress.attempt = failuresInARow + 1;
      let received = 0;
      try {
        return await this.attempt(task, url, (n) => (received += n));
      } catch (e) {
        if (signal.aborted) throw cancelled(signal);
        if (e instanceof DownloadError) throw e;
        if (isDnsFailure(e)) {
          // Offline (or no such host): one more try covers a DNS hiccup; five would only waste a minute.
          const host = (e as { hostname?: string }).hostname ?? hostOf(url);
          const message = `could not resolve ${host} (${(e as NodeJS.ErrnoException).code})`;
          if (dnsFailures++ >= 1) throw new DnsFailure(host, message);
          progress.state = 'retrying';
          progress.speed = 0;
          progress.etaSeconds = null;
          progress.attempt = 2;
          progress.message = `${message} — retrying once`;
          task.emit(true);
          await this.o.sleep(this.o.backoffBaseMs * (0.5 + 0.5 * this.o.random()), signal).catch(() => {
            throw cancelled(signal);
          });
          continue;
        }
        const f =
          e instanceof AttemptFailure
            ? e
            : e instanceof StallError
              ? new AttemptFailure('retry', e.message)
              : new AttemptFailure('retry', connectionReason(e));
        if (f.next === 'next-mirror') throw f;
        if (f.next === 'restart') {
          // The partial file was unusable (416 with another size, a changed file): start over at once.
          await deletePart(task);
          if (attempts > this.o.maxAttempts * 4) throw new Error(`gave up after ${attempts} restarts: ${f.message}`);
          continue;
        }
        // An attempt that brought bytes was progress, not failure: keep going without using up tries.
        failuresInARow = received > 0 ? 1 : failuresInARow + 1;
        if (failuresInARow >= this.o.maxAttempts || attempts >= this.o.maxAttempts * 20)
          throw new Error(`${f.message} (gave up after ${attempts} attempt${attempts === 1 ? '' : 's'})`);
        const wasStalled = progress.state === 'stalled';
        const backoff = Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** (failuresInARow - 1));
        const delay = f.retryAfterMs ?? backoff * (0.5 + 0.5 * this.o.random());
        progress.state = 'retrying';
        progress.speed = 0;
        progress.etaSeconds = null;
        progress.attempt = failuresInARow + 1;
        progress.message = `${wasStalled ? 'stalled' : f.message} — retrying (attempt ${failuresInARow + 1}/${this.o.maxAttempts})`;
        task.emit(true);
        await this.o.sleep(delay, signal).catch(() => {
          throw cancelled(signal);
        });
      }
    }
  }

  /** One GET of one file from one URL: resume the .part, ask, check the answer, stream the body, verify. */
  private async attempt(task: FileTask, url: string, onBytes: (n: number) => void): Promise<FileResult> {
    const { spec, progress } = task;
    const ctl = new AbortController();
    const onJobAbort = () => ctl.abort(task.signal.reason);
    if (task.signal.aborted) throw cancelled(task.signal);
    task.signal.addEventListener('abort', onJobAbort, { once: true });
    const stall = new StallWatch(this.o, task, url, ctl);
    try {
      const resumed = await resumePart(task, url, ctl.signal);
      progress.state = 'connecting';
      progress.message = null;
      task.emit(true);
      stall.arm();
      const trustEtag = !spec.linkedEtagUrls || spec.linkedEtagUrls.includes(url);
      const opened = await openUrl(
        url,
        requestHeaders(this.o.userAgent, url, resumed),
        ctl.signal,
        this.o.maxRedirects,
        (u) => trustEtag && this.o.trustLinkedEtagFrom(u),
      );
      stall.arm();
      const answer = checkResponse(opened, resumed.offset, spec);
      progress.total = answer.total ?? (spec.size && !spec.size.approximate ? spec.size.bytes : null);
      // The catalog size may be unknown or approximate: check again with the server's number.
      if (answer.total !== null) await this.requireSpace(dirname(spec.dest), answer.total - answer.offset);
      // A 200 starts at the first byte: the hash of the .part's bytes does not apply.
      const running = answer.status === 200 ? createHash('sha256') : resumed.hash;
      if (answer.status !== 416) await this.streamToPart(task, url, opened, answer, running, stall, onBytes);
      stall.stop();
      return await verifyAndPlace(task, url, running, resumed.meta, opened.linkedEtag, this.o.trustLinkedEtagFrom);
    } catch (e) {
      const reason = ctl.signal.reason as unknown;
      if (reason instanceof StallError) throw reason;
      throw localWriteError(e, partOf(spec.dest)) ?? e;
    } finally {
      stall.stop();
      task.signal.removeEventListener('abort', onJobAbort);
    }
  }

  /**
   * Writes the body into the .part file (after its bytes for a 206, over them for a 200), hashing
   * and showing progress as it goes; a body that ends short of the announced size is retried.
   */
  private async streamToPart(
    task: FileTask,
    url: string,
    { res, linkedEtag }: Opened,
    answer: Answer,
    running: Hash,
    stall: StallWatch,
    onBytes: (n: number) => void,
  ): Promise<void> {
    const { spec, progress } = task;
    const { offset, total } = answer;
    await writeJsonAtomic(metaOf(spec.dest), {
      url,
      etag: headerString(res.headers.etag),
      lastModified: headerString(res.headers['last-modified']),
      linkedEtag,
      total: total ?? undefined,
    } satisfies PartMeta);
    const fh = await open(partOf(spec.dest), answer.status === 200 ? 'w' : 'a');
    const meter = new SpeedMeter(this.o.speedWindowMs, this.o.now);
    let got = 0;
    try {
      progress.state = 'downloading';
      progress.bytes = offset;
      progress.message = null;
      meter.add(0);
      task.emit(true);
      for await (const chunk of res as AsyncIterable<Buffer>) {
        stall.arm();
        if ((progress.state as FileState) === 'stalled') {
          progress.state = 'downloading';
          progress.message = null;
          task.emit(true);
        }
        await fh.write(chunk);
        running.update(chunk);
        got += chunk.length;
        onBytes(chunk.length);
        progress.bytes = offset + got;
        meter.add(got);
        progress.speed = meter.speed();
        progress.etaSeconds =
          progress.total !== null && progress.speed > 0
            ? Math.max(0, progress.total - progress.bytes) / progress.speed
            : null;
        task.emit(false);
      }
      stall.stop();
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => {});
      throw e;
    }
    await fh.close();
    if (total !== null && offset + got !== total)
      throw new AttemptFailure(
        'retry',
        `the connection closed after ${formatBytes(offset + got)} of ${formatBytes(total)}`,
      );
  }
}

/** A failure of our own disk is no reason to try another mirror: say what to fix. */
function localWriteError(e: unknown, path: string): DownloadError | null {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err !== 'object' || !err.syscall || err.syscall.startsWith('getaddrinfo')) return null;
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT')
    return new DownloadError(
      'disk-full',
      `The disk filled up while writing ${path} (${err.code}). Free some space and download again; what has arrived is kept.`,
    );
  if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS')
    return new DownloadError(
      'io',
      `Cannot write ${path} (${err.code}: ${err.message}). Check the permissions of the data folder, or choose another one.`,
    );
  return null;
}

function commonDir(dirs: string[]): string {
  const split = dirs.map((d) => d.split(sep));
  const first = split[0]!;
  let n = 0;
  while (n < first.length && split.every((p) => p[n] === first[n])) n++;
  return first.slice(0, n).join(sep) || sep;
}

/**
 * The one-line answer when every mirror failed because no host name resolved: what happened, without
 * advice (whoever shows it adds what to do, once).
 */
function noNetworkMessage(failures: MirrorFailure[]): string | null {
  if (failures.length === 0 || !failures.every((f) => f.unresolvedHost)) return null;
  const hosts = [...new Set(failures.map((f) => f.unresolvedHost!))].join(', ');
  return `no network: could not reach ${hosts} (the names did not resolve).`;
}

/** A failure where no mirror's host name resolved: the network (or its DNS) is down. */
export function isOffline(err: DownloadError): boolean {
  const mirrors = err.failures.flatMap((f) => f.mirrors);
  return err.code === 'failed' && mirrors.length > 0 && mirrors.every((m) => m.unresolvedHost);
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}

function trustedUrl(url: string, trust: (u: URL) => boolean): boolean {
  try {
    return trust(new URL(url));
  } catch {
    return false;
  }
}

function headerString(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

function cancelled(signal: AbortSignal): DownloadError {
  const r = signal.reason as unknown;
  return r instanceof DownloadError ? r : new DownloadError('cancelled', 'The download was cancelled.');
}

function connectionReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const code = err.code ? `${err.code}: ` : '';
  return `connection error (${code}${err.message})`;
}

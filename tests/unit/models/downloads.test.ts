// The download code against a real HTTP server on 127.0.0.1 that drops, hangs, lies and 404s.
// Hashes are computed here with node:crypto, independently of the code under test.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CHECKED_APPROXIMATE_SIZE,
  DownloadError,
  Downloader,
  isOffline,
  type DownloaderOptions,
  type DownloadSpec,
  type JobProgress,
  SpeedMeter,
} from '../../../src/main/studio/models/downloads.js';
import { type Route, type ServeOptions, serveBytes, startServer, type TestServer } from './http-server.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Retries in milliseconds; plenty of disk. The stall limits are loose enough that a busy machine
 * does not fake a stall; the stall tests tighten them (`stallFast`).
 */
const fast: DownloaderOptions = {
  backoffBaseMs: 1,
  backoffMaxMs: 5,
  stallReportMs: 2_000,
  stallTimeoutMs: 5_000,
  progressIntervalMs: 0,
  freeSpace: async () => 1e12,
  reserveBytes: 0,
};

const stallFast: DownloaderOptions = { ...fast, stallReportMs: 200, stallTimeoutMs: 600 };

let dir: string;
let server: TestServer;
const data = randomBytes(1_000_003);

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fstudio-dl-'));
  server = await startServer();
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function spec(over: Partial<DownloadSpec> = {}): DownloadSpec {
  return { name: 'weights.bin', urls: [server.url('/file')], dest: join(dir, 'm', 'weights.bin'), ...over };
}

async function run(d: Downloader, specs: DownloadSpec[], onProgress?: (p: JobProgress) => void) {
  const events: JobProgress[] = [];
  const job = d.enqueue(specs, {
    onProgress: (p) => {
      events.push(p);
      onProgress?.(p);
    },
  });
  const result = await job.done.then(
    (r) => ({ ok: true as const, r }),
    (e: unknown) => ({ ok: false as const, e: e as DownloadError }),
  );
  return { events, result, job };
}

describe('downloads', () => {
  it('downloads a file, checks the published SHA-256, and renames it into place', async () => {
    server.route('/file', serveBytes(data));
    const d = new Downloader(fast);
    const s = spec({ sha256: sha(data), size: { bytes: data.length, approximate: false } });
    const { events, result } = await run(d, [s]);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.r[0]).toMatchObject({ sha256: sha(data), bytes: data.length, verifiedBy: 'sha256' });
    expect(sha(readFileSync(s.dest))).toBe(sha(data));
    expect(existsSync(`${s.dest}.part`)).toBe(false);
    expect(existsSync(`${s.dest}.part.json`)).toBe(false);
    const states = events.map((e) => e.files[0]!.state);
    expect(states).toContain('downloading');
    expect(states.at(-1)).toBe('done');
    expect(events.at(-1)).toMatchObject({ state: 'done', bytes: data.length, total: data.length });
  });

  it('records (does not verify) a file with no published hash', async () => {
    server.route('/file', serveBytes(data));
    const { result } = await run(new Downloader(fast), [spec({ linkedEtag: true })]);
    expect(result.ok && result.r[0]!.verifiedBy).toBe('none');
    expect(result.ok && result.r[0]!.sha256).toBe(sha(data));
  });

  /**
   * The first response sends N bytes and holds the connection; once the client has written all N
   * to its .part (its progress says so), the server drops the socket. Dropping right after the
   * write instead would race the client's reading, and the resume offset would vary.
   */
  function dropAfter(N: number, headers: Record<string, string> = {}, later: ServeOptions = {}) {
    let socket: Socket | null = null;
    server.route('/file', (req, res, hit) => {
      if (hit === 1) socket = req.socket;
      serveBytes(data, hit === 1 ? { hangAfter: N, headers } : later)(req, res, hit);
    });
    return (p: JobProgress) => {
      if (socket && p.files[0]!.bytes >= N) {
        socket.destroy();
        socket = null;
      }
    };
  }

  it('resumes with Range after the server drops the connection mid-file', async () => {
    const N = 300_000;
    const drop = dropAfter(N);
    const s = spec({ sha256: sha(data) });
    const { events, result } = await run(new Downloader(fast), [s], drop);
    expect(result.ok).toBe(true);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]!.headers.range).toBeUndefined();
    expect(server.requests[1]!.headers.range).toBe(`bytes=${N}-`);
    expect(sha(readFileSync(s.dest))).toBe(sha(data));
    const retry = events.find((e) => e.files[0]!.state === 'retrying');
    expect(retry?.files[0]!.message).toMatch(/retrying \(attempt 2\/5\)/);
  });

  it('sends If-Range with the ETag of the same URL when resuming, and restarts cleanly on a 200', async () => {
    const N = 250_000;
    const drop = dropAfter(N, { ETag: '"v1"' }, { ignoreRange: true });
    const s = spec({ sha256: sha(data) });
    const { result } = await run(new Downloader(fast), [s], drop);
    expect(result.ok).toBe(true);
    expect(server.requests[1]!.headers.range).toBe(`bytes=${N}-`);
    expect(server.requests[1]!.headers['if-range']).toBe('"v1"');
    expect(statSync(s.dest).size).toBe(data.length);
    expect(sha(readFileSync(s.dest))).toBe(sha(data));
  });

  it('finishes a .part that is already complete when the server answers 416', async () => {
    server.route('/file', serveBytes(data));
    const s = spec({ sha256: sha(data) });
    mkdirSync(join(dir, 'm'));
    writeFileSync(`${s.dest}.part`, data);
    const { result } = await run(new Downloader(fast), [s]);
    expect(result.ok).toBe(true);
    expect(server.requests[0]!.headers.range).toBe(`bytes=${data.length}-`);
    expect(sha(readFileSync(s.dest))).toBe(sha(data));
  });

  it('rejects a wrong checksum, deletes the download and says so', async () => {
    server.route('/file', serveBytes(data));
    const wrong = sha(Buffer.from('something else'));
    const s = spec({ sha256: wrong });
    const { result } = await run(new Downloader(fast), [s]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.e).toBeInstanceOf(DownloadError);
    expect(result.e.code).toBe('failed');
    expect(result.e.message).toContain('checksum mismatch');
    expect(result.e.message).toContain(sha(data));
    expect(result.e.message).toContain(wrong);
    expect(result.e.message).toContain('deleted');
    expect(existsSync(s.dest)).toBe(false);
    expect(existsSync(`${s.dest}.part`)).toBe(false);
  });

  it('moves to the next mirror on a 404', async () => {
    server.route('/file', serveBytes(data));
    const s = spec({ urls: [server.url('/gone'), server.url('/file')], sha256: sha(data) });
    const { events, result } = await run(new Downloader(fast), [s]);
    expect(result.ok && result.r[0]!.url).toBe(server.url('/file'));
    expect(server.requests.map((r) => r.path)).toEqual(['/gone', '/file']);
    expect(events.some((e) => /HTTP 404.*next mirror/.test(e.files[0]!.message ?? ''))).toBe(true);
    expect(sha(readFileSync(s.dest))).toBe(sha(data));
  });

  it('moves to the next mirror on a checksum mismatch', async () => {
    const bad = Buffer.from(data);
    bad[12345] = bad[12345]! ^ 1;
    server.route('/bad', serveBytes(bad));
    server.route('/file', serveBytes(data));
    const s = spec({ urls: [server.url('/bad'), server.url('/file')], sha256: sha(data) });
    const { result } = await run(new Downloader(fast), [s]);
    expect(result.ok).toBe(true);
    expect(server.requests.map((r) => [r.path, r.headers.range])).toEqual([
      ['/bad', undefined],
      ['/file', undefined], // the bad bytes were deleted, not resumed from
    ]);
    expect(sha(readFileSync(s.dest))).toBe(sha(data));
  });

  it('lists every mirror and its reason when all fail', async () => {
    server.route('/broken', (_req, res) => res.writeHead(500).end());
    const s = spec({ urls: [server.url('/gone'), server.url('/broken')] });
    const { result } = await run(new Downloader({ ...fast, maxAttempts: 3 }), [s]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.e.message).toContain('every mirror failed');
    expect(result.e.message).toContain(`1. ${server.url('/gone')} — HTTP 404`);
    expect(result.e.message).toContain(`2. ${server.url('/broken')} — HTTP 500`);
    expect(result.e.message).toContain('gave up after 3 attempts');
    expect(result.e.failures[0]!.mirrors).toHaveLength(2);
    expect(server.requests.filter((r) => r.path === '/broken')).toHaveLength(3);
  });

  it('reports a stall, aborts that attempt and resumes', async () => {
    const N = 200_000;
    server.route('/file', (req, res, hit) => serveBytes(data, hit === 1 ? { hangAfter: N } : {})(req, res, hit));
    const s = spec({ sha256: sha(data) });
    const { events, result } = await run(new Downloader(stallFast), [s]);
    expect(result.ok).toBe(true);
    const stalled = events.filter((e) => e.files[0]!.state === 'stalled');
    expect(stalled.length).toBeGreaterThan(0);
    expect(stalled.at(-1)!.stalled).toBe(true);
    expect(stalled.at(-1)!.files[0]!.bytes).toBe(N);
    const retry = events.find((e) => e.files[0]!.state === 'retrying');
    expect(retry?.files[0]!.message).toBe('stalled — retrying (attempt 2/5)');
    expect(server.requests[1]!.headers.range).toBe(`bytes=${N}-`);
    expect(sha(readFileSync(s.dest))).toBe(sha(data));
  });

  it('fails clearly when every attempt stalls', async () => {
    server.route('/file', serveBytes(data, { hangAfter: 0 }));
    const s = spec({ sha256: sha(data) });
    const { events, result } = await run(new Downloader({ ...stallFast, maxAttempts: 2 }), [s]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.e.message).toMatch(/stalled: no data for \d+ s from http:\/\/127\.0\.0\.1:\d+\/file/);
    expect(result.e.message).toContain('gave up after 2 attempts');
    expect(events.filter((e) => e.files[0]!.state === 'stalled')).toHaveLength(2);
    expect(server.requests).toHaveLength(2);
  });

  it('refuses a full disk before any byte is requested', async () => {
    server.route('/file', serveBytes(data));
    const asked: string[] = [];
    const d = new Downloader({
      ...fast,
      freeSpace: async (p) => {
        asked.push(p);
        return 500_000;
      },
    });
    const s = spec({ size: { bytes: data.length, approximate: true } });
    const { result } = await run(d, [s]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.e.code).toBe('disk-full');
    expect(result.e.message).toContain('needs 1.0 MB');
    expect(result.e.message).toContain('only 500 KB is free');
    expect(asked).toEqual([join(dir, 'm')]);
    expect(server.requests).toHaveLength(0);
  });

  it('refuses a file of unknown size once Content-Length shows it does not fit, before writing', async () => {
    server.route('/file', serveBytes(data));
    const d = new Downloader({ ...fast, freeSpace: async () => 500_000 });
    const s = spec();
    const { result } = await run(d, [s]);
    expect(result.ok || result.e.code).toBe('disk-full');
    expect(server.requests).toHaveLength(1);
    expect(existsSync(`${s.dest}.part`)).toBe(false);
  });

  it('cancel keeps a .part that the next pull resumes; cancel(true) discards it', async () => {
    const N = 150_000;
    let hang = true;
    server.route('/file', (req, res, hit) => serveBytes(data, hang ? { hangAfter: N } : {})(req, res, hit));
    const d = new Downloader({ ...fast, stallReportMs: 60_000, stallTimeoutMs: 60_000 });
    const s = spec({ sha256: sha(data) });
    const job = d.enqueue([s], {
      onProgress: (p) => {
        if (p.files[0]!.bytes >= N && p.files[0]!.state === 'downloading') job.cancel();
      },
    });
    const err = await job.done.catch((e: unknown) => e as DownloadError);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).code).toBe('cancelled');
    expect(job.progress().state).toBe('cancelled');
    expect(statSync(`${s.dest}.part`).size).toBe(N);
    expect(sha(readFileSync(`${s.dest}.part`))).toBe(sha(data.subarray(0, N)));

    hang = false;
    const again = await run(d, [s]);
    expect(again.result.ok).toBe(true);
    expect(server.requests.at(-1)!.headers.range).toBe(`bytes=${N}-`);
    expect(sha(readFileSync(s.dest))).toBe(sha(data));

    // Discarding: a fresh file, cancelled with discard, leaves nothing behind.
    hang = true;
    const s2 = spec({ name: 'other.bin', dest: join(dir, 'm', 'other.bin') });
    const job2 = d.enqueue([s2], {
      onProgress: (p) => {
        if (p.files[0]!.bytes >= N && p.files[0]!.state === 'downloading') job2.cancel(true);
      },
    });
    await expect(job2.done).rejects.toMatchObject({ code: 'cancelled' });
    expect(existsSync(`${s2.dest}.part`)).toBe(false);
    expect(existsSync(`${s2.dest}.part.json`)).toBe(false);
  });

  it('checks the X-Linked-Etag of the first response that has it, across a redirect', async () => {
    const linked =
      (etag: string): Route =>
      (_req, res) =>
        res
          .writeHead(302, { Location: '/cdn/file', 'X-Linked-Etag': `"${etag}"`, 'X-Linked-Size': String(data.length) })
          .end();
    server.route('/cdn/file', serveBytes(data, { headers: { ETag: '"cdn-etag-not-a-sha"' } }));
    server.route('/good/resolve', linked(sha(data)));
    server.route('/bad/resolve', linked(sha(Buffer.from('not these bytes'))));

    // The /resolve answers stand in for huggingface.co's; the CDN's answers are not believed.
    const hf = new Downloader({ ...fast, trustLinkedEtagFrom: (u) => u.pathname.endsWith('/resolve') });
    const ok = await run(hf, [spec({ urls: [server.url('/good/resolve')], linkedEtag: true })]);
    expect(ok.result.ok && ok.result.r[0]!.verifiedBy).toBe('hf-linked-etag');

    const s = spec({ urls: [server.url('/bad/resolve')], linkedEtag: true, dest: join(dir, 'n', 'w.bin') });
    const bad = await run(hf, [s]);
    expect(bad.result.ok).toBe(false);
    if (bad.result.ok) return;
    expect(bad.result.e.message).toContain("checksum mismatch: the file's SHA-256 is " + sha(data));
    expect(bad.result.e.message).toContain('X-Linked-Etag');
    expect(existsSync(s.dest)).toBe(false);
    expect(existsSync(`${s.dest}.part`)).toBe(false);
  });

  it('runs at most `concurrency` files at once and reports the total', async () => {
    const files = [0, 1, 2].map((i) => randomBytes(50_000 + i));
    files.forEach((b, i) => server.route(`/f${i}`, serveBytes(b)));
    const specs = files.map((b, i) =>
      spec({ name: `f${i}`, urls: [server.url(`/f${i}`)], dest: join(dir, `f${i}`), sha256: sha(b) }),
    );
    const { events, result } = await run(new Downloader({ ...fast, concurrency: 1 }), specs);
    expect(result.ok).toBe(true);
    expect(server.maxInFlight()).toBe(1);
    const total = files.reduce((a, b) => a + b.length, 0);
    expect(events.at(-1)).toMatchObject({ state: 'done', bytes: total, total });
    files.forEach((b, i) => expect(sha(readFileSync(join(dir, `f${i}`)))).toBe(sha(b)));
  });

  it('skips an optional file that no mirror has, and still finishes the job', async () => {
    server.route('/file', serveBytes(data));
    const specs = [
      spec(),
      spec({ name: 'extra.json', urls: [server.url('/nope')], dest: join(dir, 'm', 'extra.json'), optional: true }),
    ];
    const { events, result } = await run(new Downloader(fast), specs);
    expect(result.ok && result.r.map((r) => r.name)).toEqual(['weights.bin']);
    expect(events.at(-1)!.files[1]!.state).toBe('skipped');
  });

  it('measures speed over a moving window', () => {
    let t = 0;
    const m = new SpeedMeter(1000, () => t);
    expect(m.speed()).toBe(0);
    m.add(0);
    t = 500;
    m.add(1_000);
    expect(m.speed()).toBe(2_000); // 1000 B in 0.5 s
    t = 1_000;
    m.add(1_000); // nothing new: the average over the window falls
    expect(m.speed()).toBe(1_000);
    t = 3_000;
    m.add(5_000); // the old samples leave the window
    expect(m.speed()).toBe(2_000); // 4000 B since t=1000
  });

  it('starts over when the .part is longer than the file (416)', async () => {
    server.route('/file', serveBytes(data));
    const s = spec({ sha256: sha(data) });
    mkdirSync(join(dir, 'm'));
    writeFileSync(`${s.dest}.part`, Buffer.concat([data, Buffer.from('junk')]));
    const { result } = await run(new Downloader(fast), [s]);
    expect(result.ok).toBe(true);
    expect(server.requests.map((r) => r.headers.range)).toEqual([`bytes=${data.length + 4}-`, undefined]);
    expect(sha(readFileSync(s.dest))).toBe(sha(data));
  });

  it('starts over when a 206 answers a range other than the one asked for', async () => {
    const whole = serveBytes(data);
    server.route('/file', (req, res, hit) => {
      if (hit > 1) return whole(req, res, hit);
      // The whole file, labelled as a range from byte 0: appending it to the .part would corrupt it.
      res.writeHead(206, {
        'Content-Range': `bytes 0-${data.length - 1}/${data.length}`,
        'Content-Length': String(data.length),
      });
      res.end(data);
    });
    const s = spec({ sha256: sha(data) });
    mkdirSync(join(dir, 'm'));
    writeFileSync(`${s.dest}.part`, data.subarray(0, 1000));
    const { result } = await run(new Downloader(fast), [s]);
    expect(result.ok).toBe(true);
    expect(server.requests.map((r) => r.headers.range)).toEqual(['bytes=1000-', undefined]);
    expect(sha(readFileSync(s.dest))).toBe(sha(data));
  });

  it('backs off exponentially with jitter, and honours Retry-After', async () => {
    server.route('/file', (req, res, hit) => {
      if (hit === 1) res.writeHead(503, { 'Retry-After': '2' }).end();
      else if (hit <= 3) res.writeHead(500).end();
      else serveBytes(data)(req, res, hit);
    });
    const waits: number[] = [];
    const d = new Downloader({
      ...fast,
      backoffBaseMs: 100,
      backoffMaxMs: 10_000,
      random: () => 0.5,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    const { result } = await run(d, [spec({ sha256: sha(data) })]);
    expect(result.ok).toBe(true);
    // 503 asked for 2 s; then 100·2^(n-1) ms scaled by a jitter factor of 0.5 + 0.5·random.
    expect(waits).toEqual([2000, 150, 300]);
  });

  it('gives up a mirror that redirects in a loop, and says so', async () => {
    server.route('/loop', (_req, res) => res.writeHead(302, { Location: '/loop' }).end());
    server.route('/file', serveBytes(data));
    const d = new Downloader({ ...fast, maxRedirects: 3 });
    const { events, result } = await run(d, [spec({ urls: [server.url('/loop'), server.url('/file')] })]);
    expect(result.ok).toBe(true);
    expect(server.requests.filter((r) => r.path === '/loop')).toHaveLength(4);
    expect(events.some((e) => /more than 3 redirects/.test(e.files[0]!.message ?? ''))).toBe(true);
  });

  it('stops the whole job when one file finds the disk full', async () => {
    server.route('/a', serveBytes(data, { hangAfter: 1000 })); // would hang until the stall timeout (1 min)
    server.route('/b', serveBytes(data));
    const d = new Downloader({
      ...fast,
      stallReportMs: 60_000,
      stallTimeoutMs: 60_000,
      freeSpace: async (p) => (p.endsWith('b') ? 10_000 : 1e12),
    });
    const a = spec({ name: 'a', urls: [server.url('/a')], dest: join(dir, 'a', 'f') });
    const b = spec({ name: 'b', urls: [server.url('/b')], dest: join(dir, 'b', 'f') });
    const { events, result } = await run(d, [a, b]);
    expect(result.ok || result.e.code).toBe('disk-full');
    expect(events.at(-1)!.state).toBe('failed');
    expect(events.at(-1)!.message).toContain('Not enough free disk space');
    expect(events.at(-1)!.files.map((f) => f.state)).toEqual(['cancelled', 'failed']);
  });

  it('resumes from another mirror only when a hash will prove the result', async () => {
    const N = 100_000;
    server.route('/a', serveBytes(data, { hangAfter: N }));
    server.route('/b', serveBytes(data));
    const d = new Downloader(fast);
    const cancelAt = (job: { cancel(): void }) => (p: JobProgress) => {
      if (p.files[0]!.bytes >= N && p.files[0]!.state === 'downloading') job.cancel();
    };
    for (const sha256 of [undefined, sha(data)]) {
      const s = spec({ urls: [server.url('/a')], dest: join(dir, sha256 ? 'hashed' : 'plain', 'f'), sha256 });
      const job = d.enqueue([s], { onProgress: (p) => cancelAt(job)(p) });
      await expect(job.done).rejects.toMatchObject({ code: 'cancelled' });
      const again = await run(d, [{ ...s, urls: [server.url('/b')] }]);
      expect(again.result.ok).toBe(true);
      expect(server.requests.at(-1)!.path).toBe('/b');
      // No hash: the other mirror's file is fetched whole. A published hash: resumed.
      expect(server.requests.at(-1)!.headers.range).toBe(sha256 ? `bytes=${N}-` : undefined);
      expect(sha(readFileSync(s.dest))).toBe(sha(data));
    }
  });
  it('delivers the first progress event only after enqueue() has returned', async () => {
    server.route('/file', serveBytes(data));
    let returned = false;
    const seen: boolean[] = [];
    const job = new Downloader(fast).enqueue([spec()], { onProgress: () => seen.push(returned) });
    returned = true;
    await job.done;
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every(Boolean)).toBe(true);
  });

  it('believes X-Linked-Etag only from Hugging Face hosts and the mirrors the spec names', async () => {
    // A wrong hash that would fail the file if it were believed.
    const lie = sha(Buffer.from('not these bytes'));
    server.route('/resolve', serveBytes(data, { headers: { 'X-Linked-Etag': `"${lie}"` } }));
    // Default trust: 127.0.0.1 is not huggingface.co, so the header is ignored: recorded, not verified.
    const plain = await run(new Downloader(fast), [spec({ urls: [server.url('/resolve')], linkedEtag: true })]);
    expect(plain.result.ok && plain.result.r[0]!.verifiedBy).toBe('none');
    // A trusted host, but a mirror outside linkedEtagUrls (an organisation's mirror): still ignored.
    const hf = new Downloader({ ...fast, trustLinkedEtagFrom: () => true });
    const s = spec({
      urls: [server.url('/resolve')],
      linkedEtag: true,
      linkedEtagUrls: ['https://huggingface.co/x/resolve/main/f'],
      dest: join(dir, 'o', 'f'),
    });
    const extra = await run(hf, [s]);
    expect(extra.result.ok && extra.result.r[0]!.verifiedBy).toBe('none');
    // The same answer from a trusted mirror is believed, and the lie caught.
    const trusted = await run(hf, [{ ...s, linkedEtagUrls: undefined, dest: join(dir, 't', 'f') }]);
    expect(trusted.result.ok).toBe(false);
    expect(!trusted.result.ok && trusted.result.e.message).toContain('X-Linked-Etag');
  });

  it('refuses an HTML error page served as a weight file and tries the next mirror', async () => {
    const page = Buffer.from('<html><body>Rate limited. Log in.</body></html>\n');
    server.route('/html', serveBytes(page, { headers: { 'Content-Type': 'text/html; charset=utf-8' } }));
    server.route('/file', serveBytes(data));
    const s = spec({ urls: [server.url('/html'), server.url('/file')] });
    const { events, result } = await run(new Downloader(fast), [s]);
    expect(result.ok && result.r[0]!.url).toBe(server.url('/file'));
    const msgs = events.map((e) => e.files[0]!.message ?? '');
    expect(msgs.some((m) => m.includes('the server sent an HTML page') && m.includes('trying the next mirror'))).toBe(
      true,
    );
    // Every mirror sending HTML: the file fails and nothing is installed.
    const only = spec({ urls: [server.url('/html')], dest: join(dir, 'h', 'f') });
    const bad = await run(new Downloader(fast), [only]);
    expect(!bad.result.ok && bad.result.e.message).toContain('HTML page');
    expect(existsSync(only.dest)).toBe(false);
    // An HTML answer is fine for a file that may be HTML or text.
    const readme = spec({ name: 'README.txt', urls: [server.url('/html')], dest: join(dir, 'r', 'README.txt') });
    expect((await run(new Downloader(fast), [readme])).result.ok).toBe(true);
  });

  it('refuses a download far from the catalog size, exact or approximate', async () => {
    const small = Buffer.alloc(53, 0x20);
    server.route('/small', serveBytes(small, { headers: { 'Content-Type': 'application/octet-stream' } }));
    server.route('/file', serveBytes(data));
    const approx = { bytes: 980_000_000, approximate: true };
    const s = spec({ urls: [server.url('/small')], size: approx });
    const bad = await run(new Downloader(fast), [s]);
    expect(bad.result.ok).toBe(false);
    expect(!bad.result.ok && bad.result.e.message).toContain(
      'the server sent 53 B where about 980 MB was expected — probably an error page',
    );
    expect(existsSync(s.dest)).toBe(false);
    // Without Content-Length the body is fetched, then measured and deleted.
    server.route('/chunked', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.end(small);
    });
    const big = Buffer.alloc(12 * 1024 * 1024, 7);
    server.route('/big', serveBytes(big));
    const c = spec({
      urls: [server.url('/chunked'), server.url('/big')],
      size: { bytes: 20 * 1024 * 1024, approximate: true },
    });
    const { events, result } = await run(new Downloader(fast), [c]);
    expect(result.ok && result.r[0]!.url).toBe(server.url('/big'));
    expect(events.some((e) => (e.files[0]!.message ?? '').includes('the server sent 53 B'))).toBe(true);
    // The catalog's estimate of a small text file (under CHECKED_APPROXIMATE_SIZE) is not held against it.
    const estimate = spec({
      urls: [server.url('/small')],
      size: { bytes: 4000, approximate: true },
      dest: join(dir, 'z', 'config.json'),
    });
    expect(4000).toBeLessThan(CHECKED_APPROXIMATE_SIZE);
    expect((await run(new Downloader(fast), [estimate])).result.ok).toBe(true);
    // Exact sizes must match exactly; approximate ones within 50%..150%.
    const off = spec({
      urls: [server.url('/file')],
      size: { bytes: data.length + 1, approximate: false },
      dest: join(dir, 'x', 'f'),
    });
    const r = await run(new Downloader(fast), [off]);
    expect(!r.result.ok && r.result.e.message).toContain(`where 1.0 MB was expected`);
    const near = spec({
      urls: [server.url('/file')],
      size: { bytes: data.length * 1.4, approximate: true },
      dest: join(dir, 'y', 'f'),
    });
    expect((await run(new Downloader(fast), [near])).result.ok).toBe(true);
  });

  it('gives up an unresolvable host after one retry and says there is no network', async () => {
    const d = new Downloader({ ...fast, maxAttempts: 5 });
    const urls = ['http://does-not-exist.invalid/a/f', 'http://also-not-there.invalid/b/f'];
    const { events, result } = await run(d, [spec({ urls })]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    // What happened, once, without advice (whoever shows it adds what to do).
    expect(result.e.message).toBe(
      'no network: could not reach does-not-exist.invalid, also-not-there.invalid (the names did not resolve).',
    );
    expect(isOffline(result.e)).toBe(true);
    // Each mirror: the first try and one retry, never maxAttempts.
    const attempts = events.filter((e) => e.files[0]!.state === 'connecting');
    expect(attempts.length).toBeLessThanOrEqual(4);
    expect(events.some((e) => (e.files[0]!.message ?? '').includes('retrying once'))).toBe(true);
  });
});

// Gallery benchmark (a script, not a test): node --import tsx bench/gallery.ts [--runs 10000]
//
// Builds a temp data folder with N runs (default 10,000): 48 real images go through the real
// import path, then N rows are bulk-inserted with distinct hashes and varied prompt text that
// point at those originals (rows are what the queries touch; sharing originals keeps setup short).
// Each row gets its own thumbnail file (a copy of its original's, named by the row's hash), as a
// real library has one per image: the thumbnails pages read and serve are N distinct files.
// Measures, through the same handlers the transports call:
//   - FTS search latency (p50/p95) over ~200 varied queries, with a LIKE scan of the same
//     words as an in-run reference (the ratio is what to compare across machines);
//   - the first gallery page of 100 thumbnails: query + 100 assetFile lookups + file reads;
//   - the same page as a browser gets it from `fstudio serve` (src/main/server): POST
//     /api/galleryQuery, then GET of the 100 /asset/thumb/<sha256> URLs over 6 keep-alive
//     connections (a browser's limit per host) from a worker thread (the browser is another
//     process), alternating with the in-process page; the ratio of the two is the figure;
//   - open time with N rows (what runs before the studio serves: the database, the probe, the runs'
//     recovery), and the background check of the data folder (integrity check and sweeps) until done;
//   - pages the UI asks for by seek: a filter, a deep position (the scrollbar), a date, the next page
//     by cursor, and the exact count of a large text search (the history worker).
// Prints a table and writes bench-results/gallery.json.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { startServer } from '../src/main/server/index.js';
import { History } from '../src/main/studio/history.js';
import { DB_FILE, openStudio } from '../src/main/studio/index.js';
import { makePng } from '../tests/fixtures/images.js';

const argRuns = process.argv.indexOf('--runs');
const RUNS = argRuns > 0 ? Number(process.argv[argRuns + 1]) : 10_000;
const KEEP = process.argv.includes('--keep');

// ---------- deterministic text ----------
let rng = 0x9e3779b9;
const rand = () => {
  rng ^= rng << 13;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  return (rng >>> 0) / 2 ** 32;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

const SUBJECTS = [
  'astronaut',
  'lighthouse',
  'fox',
  'castle',
  'robot',
  'dragon',
  'cabin',
  'city',
  'forest',
  'ocean',
  'portrait',
  'cat',
  'owl',
  'mountain',
  'train',
  'garden',
  'library',
  'spaceship',
  'samurai',
  'jellyfish',
  'waterfall',
  'desert',
  'market',
  'violin',
  'teapot',
  '富士山',
  '桜',
  'café',
];
const PLACES = [
  'on the moon',
  'in a misty forest',
  'under the sea',
  'at dusk',
  'in Tokyo at night',
  'on a hill',
  'in the snow',
  'in a cyberpunk alley',
  'in a sunflower field',
  'inside a cathedral',
  'by a lake',
  'in the clouds',
];
const STYLES = [
  'oil painting',
  'watercolor',
  'pixel art',
  'studio photo',
  'ukiyo-e',
  'art nouveau',
  'low poly',
  'charcoal sketch',
  'vaporwave',
  'baroque',
  'isometric',
  'cinematic lighting',
];
const ADJ = [
  'golden',
  'glowing',
  'ancient',
  'tiny',
  'giant',
  'melancholic',
  'whimsical',
  'neon',
  'ornate',
  'crystal',
  'rusty',
  'serene',
  'stormy',
  'iridescent',
];
const ARTISTS = [
  'by Moebius',
  'by Hokusai',
  'by Turner',
  'trending on artstation',
  'unreal engine',
  '8k',
  'highly detailed',
  'bokeh',
];
const NEG = ['blurry', 'lowres', 'watermark', 'text', 'jpeg artifacts', 'extra fingers'];

function prompt(): string {
  const parts = [`${pick(ADJ)} ${pick(SUBJECTS)} ${pick(PLACES)}`, pick(STYLES)];
  if (rand() < 0.6) parts.push(pick(ARTISTS));
  if (rand() < 0.3) parts.push(`${pick(ADJ)} ${pick(SUBJECTS)}`);
  return parts.join(', ');
}

function queries(): string[] {
  const q: string[] = [];
  for (let i = 0; i < 60; i++) q.push(pick(SUBJECTS)); // one word
  for (let i = 0; i < 40; i++) q.push(`${pick(ADJ)} ${pick(SUBJECTS)}`); // two words
  for (let i = 0; i < 40; i++) q.push(pick([...SUBJECTS, ...STYLES]).slice(0, 3 + Math.floor(rand() * 3))); // typing: prefix
  for (let i = 0; i < 20; i++) q.push(`"${pick(STYLES)}"`); // phrase
  for (let i = 0; i < 20; i++) q.push(`${pick(SUBJECTS)} ${pick(STYLES)} ${pick(ADJ)}`); // three words, rare
  for (let i = 0; i < 10; i++) q.push(`zzz${i} nomatch`); // nothing
  for (let i = 0; i < 10; i++) q.push(`img_${Math.floor(rand() * RUNS)}`); // file name
  return q;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (x: number) => `${x.toFixed(2)} ms`;

/** One HTTP request on `agent`; resolves with the status, content type and whole body. */
function httpCall(
  agent: Agent,
  base: URL,
  method: 'GET' | 'POST',
  path: string,
  token: string,
  body?: string,
): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const req = request({ agent, host: base.hostname, port: base.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type'] ?? ''),
          body: Buffer.concat(chunks),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface ClientSetup {
  url: string;
  token: string;
  concurrency: number;
  /** The galleryQuery request body, {"args": {...}}. */
  body: string;
}
interface HttpPage {
  total: number;
  query: number;
  responses: number;
  distinct: number;
  bytes: number;
}

/** One first page as the browser UI loads it: the query, then its thumbnails, `concurrency` at a time. */
async function httpPageOnce(agent: Agent, base: URL, c: ClientSetup): Promise<HttpPage> {
  const t = performance.now();
  const q = await httpCall(agent, base, 'POST', '/api/galleryQuery', c.token, c.body);
  const tq = performance.now() - t;
  if (q.status !== 200) throw new Error(`galleryQuery over HTTP: ${q.status} ${q.body.toString('utf8')}`);
  const reply = JSON.parse(q.body.toString('utf8')) as { ok: boolean; result: { items: { sha256: string }[] } };
  const shas = reply.result.items.map((it) => it.sha256);
  if (!reply.ok || shas.length !== 100) throw new Error(`galleryQuery over HTTP gave ${shas.length} items`);
  const sizes: number[] = [];
  let next = 0;
  const connection = async () => {
    while (next < shas.length) {
      const k = next++;
      const r = await httpCall(agent, base, 'GET', `/asset/thumb/${shas[k]!}`, c.token);
      if (r.status !== 200 || r.type !== 'image/webp' || r.body.length === 0)
        throw new Error(`GET /asset/thumb/${shas[k]!}: ${r.status} ${r.type}, ${r.body.length} bytes`);
      sizes[k] = r.body.length;
    }
  };
  await Promise.all(Array.from({ length: c.concurrency }, connection));
  return {
    total: performance.now() - t,
    query: tq,
    responses: sizes.filter((n) => n > 0).length,
    distinct: new Set(shas).size,
    bytes: sizes.reduce((n, b) => n + b, 0),
  };
}

/** The worker side: one page per 'page' message, until 'stop'. */
function httpClient(port: MessagePort, setup: ClientSetup): void {
  const base = new URL(setup.url);
  const agent = new Agent({ keepAlive: true, maxSockets: setup.concurrency });
  port.on('message', (m: 'page' | 'stop') => {
    if (m === 'stop') {
      agent.destroy();
      port.close();
      return;
    }
    httpPageOnce(agent, base, setup).then(
      (r) => port.postMessage(r),
      (e: unknown) => port.postMessage({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'fstudio-bench-'));
  const t0 = performance.now();

  // 1. Real files through the real import path.
  let studio = await openStudio({ dataDir: dir });
  const files = await Promise.all(
    Array.from({ length: 48 }, async (_, i) => ({
      name: `seed-${i}.png`,
      data: await makePng({ seed: i + 1, width: 512, height: 512 }),
    })),
  );
  const imp = await studio.handlers.importImages({ files });
  if (imp.failed.length) throw new Error(`seed import failed: ${JSON.stringify(imp.failed)}`);
  await studio.close();

  // 2. Bulk rows, one transaction.
  const h = History.open(join(dir, DB_FILE));
  const real = imp.imported.map((i) => h.getAsset(i.sha256)!);
  const now = Date.now();
  const span = 2 * 365 * 24 * 3600 * 1000;
  const realThumbs = real.map((a) => {
    if (!a.thumbPath) throw new Error(`seed ${a.sha256} has no thumbnail`);
    return readFileSync(join(dir, a.thumbPath));
  });
  const tInsert = performance.now();
  let thumbFilesMs = 0;
  h.transaction(() => {
    for (let i = 0; i < RUNS; i++) {
      const base = real[i % real.length]!;
      const sha256 = createHash('sha256').update(`bench-${i}`).digest('hex');
      // Its own thumbnail file, where the import path would put it (AssetFiles.thumbRel).
      const thumbPath = `thumbs/${sha256.slice(0, 2)}/${sha256}.webp`;
      const tThumb = performance.now();
      mkdirSync(join(dir, 'thumbs', sha256.slice(0, 2)), { recursive: true });
      writeFileSync(join(dir, thumbPath), realThumbs[i % real.length]!);
      thumbFilesMs += performance.now() - tThumb;
      h.upsertAsset({ ...base, sha256, thumbPath });
      const p = prompt();
      const createdAt = Math.floor(now - span + (span * i) / RUNS);
      const kind = pick(['import', 'generate', 'generate', 'classify'] as const);
      const metadata = {
        source: 'automatic1111' as const,
        prompt: p,
        negativePrompt: pick(NEG),
        parameters: {
          Steps: String(10 + (i % 40)),
          Seed: String(i * 7919),
          Sampler: pick(['Euler a', 'DPM++ 2M Karras', 'DDIM']),
        },
        raw: {},
      };
      const runId = h.insertRun({
        kind,
        title: p.slice(0, 200),
        spec: { prompt: p },
        provenance: { appVersion: 'bench' },
        createdAt,
      });
      const id = h.insertImage(runId, { sha256, fileName: `img_${i}.png`, metadata, createdAt });
      if (i % 9 === 0) h.setFavourite(id, true);
    }
  });
  const insertMs = performance.now() - tInsert - thumbFilesMs;
  h.db.exec('ANALYZE');
  h.close();

  // 3. Open with N rows (runs the open-time checks and sweeps).
  const tOpen = performance.now();
  studio = await openStudio({ dataDir: dir });
  const openMs = performance.now() - tOpen;
  const checkReport = await studio.checked;
  const checkMs = performance.now() - tOpen;
  if (checkReport.sweep !== 'done') throw new Error(`background check: ${JSON.stringify(checkReport.sweep)}`);
  const H = studio.handlers;

  // 4. FTS search latency, and a LIKE scan of the same words as the in-run reference.
  const qs = queries();
  // Japanese/Chinese tokens are matched as substrings by a scan (see src/main/studio/fts.ts): timed apart.
  const unspaced = Array.from({ length: 20 }, () => pick(['富士山', '士山', '桜', `桜 ${pick(STYLES)}`]));
  for (const text of qs.slice(0, 20)) await H.galleryQuery({ text, sort: 'newest', offset: 0, limit: 100 }); // warm up
  const timeQueries = async (list: string[]) => {
    const times: number[] = [];
    let hits = 0;
    for (const text of list) {
      const t = performance.now();
      const r = await H.galleryQuery({ text, sort: 'newest', offset: 0, limit: 100 });
      times.push(performance.now() - t);
      hits += r.total;
    }
    return { times, meanHits: hits / list.length };
  };
  const { times: search, meanHits } = await timeQueries(qs);
  const { times: substr, meanHits: substrHits } = await timeQueries(unspaced);
  const ref = History.open(join(dir, DB_FILE));
  // Same shape as the gallery's text query (a page of 100 and the total), without the FTS index.
  const where = `FROM images i JOIN runs r ON r.id = i.run_id WHERE i.trashed_at IS NULL AND r.title LIKE ?`;
  const likePage = ref.db.prepare(`SELECT i.id ${where} ORDER BY i.created_at DESC LIMIT 100`);
  const likeCount = ref.db.prepare(`SELECT count(*) ${where}`);
  const likeTimes: number[] = [];
  for (const text of qs) {
    const word = `%${text.replace(/"/g, '').split(' ')[0]!}%`;
    const t = performance.now();
    likePage.all(word);
    likeCount.get(word);
    likeTimes.push(performance.now() - t);
  }
  ref.close();

  // 5. First page of 100 thumbnails, two ways, in alternating order within each repetition so that
  // both see the same load on the machine (the ratio is the figure to compare across machines):
  //  - in-process: query + assetFile + read, as the desktop app's image protocol serves them;
  //  - over HTTP, as the browser UI loads it from the local server: POST /api/galleryQuery, then the
  //    100 /asset/thumb/<sha256> URLs over 6 keep-alive connections (a browser's per-host limit).
  //    The client is a worker thread (its own event loop, like a browser's own process).
  const page = { sort: 'newest', offset: 0, limit: 100 } as const;
  const inProcessOnce = async () => {
    const t = performance.now();
    const res = await H.galleryQuery(page);
    const tq = performance.now() - t;
    const bufs = await Promise.all(
      res.items.map(async (it) => {
        const f = await studio.assetFile(it.sha256, 'thumb');
        if (!f) throw new Error(`no thumbnail for ${it.id}`);
        return readFile(f.path);
      }),
    );
    return { total: performance.now() - t, query: tq, bytes: bufs.reduce((n, b) => n + b.length, 0) };
  };

  const server = await startServer({
    studio,
    host: '127.0.0.1',
    port: 0,
    token: createHash('sha256').update('bench-token').digest('hex'),
    webRoot: null,
    log: (m) => console.error(`[server] ${m}`),
  });
  const CONCURRENCY = 6;
  const body = JSON.stringify({ args: page });
  // The browser is another process: the HTTP client runs on its own thread (this file, as a worker),
  // so its parsing does not queue behind the server's on this event loop.
  // Loaded through tsx's API: a worker does not inherit the parent's `--import tsx` hooks.
  const client = new Worker(
    `import('tsx/esm/api').then((m) => m.tsImport(${JSON.stringify(import.meta.url)}, ${JSON.stringify(import.meta.url)}));`,
    {
      eval: true,
      workerData: { url: server.url, token: server.token, concurrency: CONCURRENCY, body } satisfies ClientSetup,
    },
  );
  let clientFailed: Error | undefined;
  let pending: ((e: Error) => void) | undefined;
  const fail = (e: Error) => {
    clientFailed ??= e;
    pending?.(e);
  };
  client.on('error', fail);
  client.on('exit', (code) => fail(new Error(`HTTP client exited (${code})`)));
  const httpOnce = () =>
    new Promise<HttpPage>((resolve, reject) => {
      if (clientFailed) return reject(clientFailed);
      pending = reject;
      client.once('message', (m: HttpPage | { error: string }) =>
        'error' in m ? reject(new Error(`HTTP client: ${m.error}`)) : resolve(m),
      );
      client.postMessage('page');
    });

  const WARMUP = 3;
  const REPS = 30;
  const firstPage: number[] = [];
  const queryOnly: number[] = [];
  const httpPage: number[] = [];
  const httpQuery: number[] = [];
  let thumbBytes = 0;
  let httpBytes = 0;
  let httpResponses = 0;
  let httpDistinct = 0;
  for (let rep = -WARMUP; rep < REPS; rep++) {
    const inFirst = rep % 2 === 0;
    const a = inFirst ? await inProcessOnce() : undefined;
    const b = await httpOnce();
    const c = a ?? (await inProcessOnce());
    if (rep < 0) continue;
    firstPage.push(c.total);
    queryOnly.push(c.query);
    thumbBytes = c.bytes;
    httpPage.push(b.total);
    httpQuery.push(b.query);
    httpResponses += b.responses;
    httpBytes = b.bytes;
    httpDistinct = b.distinct;
  }
  client.postMessage('stop');
  await once(client, 'exit');
  await server.close();
  if (httpResponses !== 100 * REPS) throw new Error(`expected ${100 * REPS} thumbnails, got ${httpResponses}`);
  if (httpBytes !== thumbBytes)
    throw new Error(`HTTP served ${httpBytes} bytes of thumbnails, the files hold ${thumbBytes}`);

  // 6. Other pages the UI asks for.
  const other = async (label: string, q: Parameters<typeof H.galleryQuery>[0]) => {
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      await H.galleryQuery(q);
      times.push(performance.now() - t);
    }
    return { label, p50: pct(times, 50), p95: pct(times, 95) };
  };
  const mid = await H.galleryQuery({ sort: 'newest', offset: Math.floor(RUNS / 2), limit: 100 });
  const pages = [
    await other('favourites, newest', { favourite: true, sort: 'newest', offset: 0, limit: 100 }),
    await other('kind = generate', { kind: 'generate', sort: 'newest', offset: 0, limit: 100 }),
    await other(`deep page (position ${Math.max(0, RUNS - 1000).toLocaleString('en')})`, {
      sort: 'newest',
      offset: Math.max(0, RUNS - 1000),
      limit: 100,
    }),
    await other('middle page (position N/2)', { sort: 'newest', offset: Math.floor(RUNS / 2), limit: 100 }),
    await other('next page by cursor (from N/2)', { sort: 'newest', after: mid.next!, offset: 0, limit: 100 }),
    await other('jump to a date (a year ago)', {
      at: now - 365 * 24 * 3600 * 1000,
      sort: 'newest',
      offset: 0,
      limit: 100,
    }),
    await other('kind = generate, deep (position N/3)', {
      kind: 'generate',
      sort: 'newest',
      offset: Math.floor(RUNS / 3),
      limit: 100,
    }),
    await other('last 30 days', { from: now - 30 * 24 * 3600 * 1000, sort: 'newest', offset: 0, limit: 100 }),
    await other('text "cat", deep (position 5,000)', { text: 'cat', sort: 'newest', offset: 5000, limit: 100 }),
  ];
  const countTimes: number[] = [];
  let countTotal = 0;
  for (const text of ['cat', 'fox', 'oil', 'golden', 'ast']) {
    const t = performance.now();
    countTotal += (await H.galleryCount({ text })).total;
    countTimes.push(performance.now() - t);
  }
  await studio.close();

  const result = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? 'unknown',
      node: process.versions.node,
      platform: process.platform,
    },
    runs: RUNS,
    bulkInsertMs: insertMs,
    openMs,
    /** From the start of open until the background check (quick_check and the sweeps of 256 shards) is done. */
    backgroundCheckMs: checkMs,
    exactTextCountMs: {
      p50: pct(countTimes, 50),
      max: Math.max(...countTimes),
      meanTotal: countTotal / countTimes.length,
    },
    search: {
      queries: qs.length,
      meanHits,
      p50Ms: pct(search, 50),
      p95Ms: pct(search, 95),
      maxMs: Math.max(...search),
    },
    substringSearch: { queries: unspaced.length, meanHits: substrHits, p50Ms: pct(substr, 50), p95Ms: pct(substr, 95) },
    likeScanReference: { p50Ms: pct(likeTimes, 50), p95Ms: pct(likeTimes, 95) },
    searchP50VsLikeScan: pct(search, 50) / pct(likeTimes, 50),
    firstPage: {
      thumbnails: 100,
      thumbBytes,
      p50Ms: pct(firstPage, 50),
      p95Ms: pct(firstPage, 95),
      queryOnlyP50Ms: pct(queryOnly, 50),
    },
    /** Setup: writing one thumbnail file per row (not part of bulkInsertMs). */
    thumbFilesMs,
    /** The first page as the browser UI gets it from the local server (127.0.0.1, keep-alive). */
    firstPageHttp: {
      thumbnails: 100,
      distinctThumbnails: httpDistinct,
      responsesChecked: httpResponses,
      thumbBytes: httpBytes,
      concurrency: CONCURRENCY,
      warmupReps: WARMUP,
      reps: REPS,
      p50Ms: pct(httpPage, 50),
      p95Ms: pct(httpPage, 95),
      queryOnlyP50Ms: pct(httpQuery, 50),
      queryOnlyP95Ms: pct(httpQuery, 95),
    },
    /** HTTP first page p50 / in-process first page p50, same run. */
    firstPageHttpP50VsInProcess: pct(httpPage, 50) / pct(firstPage, 50),
    otherPages: pages,
    totalMs: performance.now() - t0,
  };

  const rows: [string, string, string][] = [
    [`FTS search (${qs.length} queries, limit 100, with count)`, ms(result.search.p50Ms), ms(result.search.p95Ms)],
    [
      `CJK substring search (${unspaced.length} queries)`,
      ms(result.substringSearch.p50Ms),
      ms(result.substringSearch.p95Ms),
    ],
    [
      '  reference: LIKE scan of titles (page + count)',
      ms(result.likeScanReference.p50Ms),
      ms(result.likeScanReference.p95Ms),
    ],
    ['First page: query + 100 thumbnails read', ms(result.firstPage.p50Ms), ms(result.firstPage.p95Ms)],
    ['  of which the query', ms(result.firstPage.queryOnlyP50Ms), ''],
    [
      `First page over HTTP: POST + 100 GETs (${CONCURRENCY} conns)`,
      ms(result.firstPageHttp.p50Ms),
      ms(result.firstPageHttp.p95Ms),
    ],
    [
      '  of which POST /api/galleryQuery',
      ms(result.firstPageHttp.queryOnlyP50Ms),
      ms(result.firstPageHttp.queryOnlyP95Ms),
    ],
    ...pages.map((p): [string, string, string] => [p.label, ms(p.p50), ms(p.p95)]),
  ];
  console.log(
    `\nGallery benchmark: ${RUNS.toLocaleString('en')} runs, ${result.machine.cpus} CPUs (${result.machine.cpu}), Node ${result.machine.node}`,
  );
  console.log(
    `bulk insert ${(insertMs / 1000).toFixed(1)} s, ${RUNS.toLocaleString('en')} thumbnail files ${(thumbFilesMs / 1000).toFixed(1)} s, ` +
      `open ${ms(openMs)}, background check done after ${(checkMs / 1000).toFixed(1)} s, ` +
      `exact count of a text search (history worker) p50 ${ms(pct(countTimes, 50))}\n`,
  );
  console.log(`${'measure'.padEnd(50)} ${'p50'.padStart(10)} ${'p95'.padStart(10)}`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(50)} ${b.padStart(10)} ${c.padStart(10)}`);
  console.log(`\nFTS p50 / LIKE-scan p50 = ${result.searchP50VsLikeScan.toFixed(2)} (same run, same data)`);
  console.log(
    `First page over HTTP p50 / in-process p50 = ${result.firstPageHttpP50VsInProcess.toFixed(2)} ` +
      `(same run; ${result.firstPageHttp.responsesChecked} thumbnail responses checked: 200, image/webp, ` +
      `${result.firstPageHttp.distinctThumbnails} distinct per page, ${(result.firstPageHttp.thumbBytes / 1e6).toFixed(2)} MB)`,
  );

  mkdirSync('bench-results', { recursive: true });
  writeFileSync(join('bench-results', 'gallery.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('wrote bench-results/gallery.json');
  if (KEEP) console.log(`data folder kept: ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

if (isMainThread) await main();
else httpClient(parentPort!, workerData as ClientSetup);

// Gallery benchmark (a script, not a test): node --import tsx bench/gallery.ts [--runs 10000]
//
// Builds a temp data folder with N runs (default 10,000): 48 real images go through the real
// import path, then N rows are bulk-inserted with distinct hashes and varied prompt text that
// point at those files (rows are what the queries touch; sharing files keeps setup short).
// Measures, through the same handlers the transports call:
//   - FTS search latency (p50/p95) over ~200 varied queries, with a LIKE scan of the same
//     words as an in-run reference (the ratio is what to compare across machines);
//   - the first gallery page of 100 thumbnails: query + 100 assetFile lookups + file reads;
//   - open time with N rows (the crash-recovery sweep included).
// Prints a table and writes bench-results/gallery.json.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
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
  const tInsert = performance.now();
  h.transaction(() => {
    for (let i = 0; i < RUNS; i++) {
      const base = real[i % real.length]!;
      const sha256 = createHash('sha256').update(`bench-${i}`).digest('hex');
      h.upsertAsset({ ...base, sha256 });
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
  const insertMs = performance.now() - tInsert;
  h.db.exec('ANALYZE');
  h.close();

  // 3. Open with N rows (runs the open-time checks and sweeps).
  const tOpen = performance.now();
  studio = await openStudio({ dataDir: dir });
  const openMs = performance.now() - tOpen;
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

  // 5. First page of 100 thumbnails: query + assetFile + read, as the image protocol serves them.
  const firstPage: number[] = [];
  const queryOnly: number[] = [];
  let thumbBytes = 0;
  for (let rep = 0; rep < 30; rep++) {
    const t = performance.now();
    const page = await H.galleryQuery({ sort: 'newest', offset: 0, limit: 100 });
    queryOnly.push(performance.now() - t);
    const bufs = await Promise.all(
      page.items.map(async (it) => {
        const f = await studio.assetFile(it.sha256, 'thumb');
        if (!f) throw new Error(`no thumbnail for ${it.id}`);
        return readFile(f.path);
      }),
    );
    firstPage.push(performance.now() - t);
    thumbBytes = bufs.reduce((n, b) => n + b.length, 0);
  }

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
  const pages = [
    await other('favourites, newest', { favourite: true, sort: 'newest', offset: 0, limit: 100 }),
    await other('kind = generate', { kind: 'generate', sort: 'newest', offset: 0, limit: 100 }),
    await other('deep page (offset 9,000)', { sort: 'newest', offset: Math.max(0, RUNS - 1000), limit: 100 }),
    await other('last 30 days', { from: now - 30 * 24 * 3600 * 1000, sort: 'newest', offset: 0, limit: 100 }),
  ];
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
    ...pages.map((p): [string, string, string] => [p.label, ms(p.p50), ms(p.p95)]),
  ];
  console.log(
    `\nGallery benchmark: ${RUNS.toLocaleString('en')} runs, ${result.machine.cpus} CPUs (${result.machine.cpu}), Node ${result.machine.node}`,
  );
  console.log(`bulk insert ${(insertMs / 1000).toFixed(1)} s, open (with checks and sweeps) ${ms(openMs)}\n`);
  console.log(`${'measure'.padEnd(50)} ${'p50'.padStart(10)} ${'p95'.padStart(10)}`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(50)} ${b.padStart(10)} ${c.padStart(10)}`);
  console.log(`\nFTS p50 / LIKE-scan p50 = ${result.searchP50VsLikeScan.toFixed(2)} (same run, same data)`);

  mkdirSync('bench-results', { recursive: true });
  writeFileSync(join('bench-results', 'gallery.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('wrote bench-results/gallery.json');
  if (KEEP) console.log(`data folder kept: ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

await main();

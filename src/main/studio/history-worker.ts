// The history worker's entry (bundled as history-worker.js): a thread with its own read-only
// connection to history.db, for the work that reads a whole table or folder and must not hold up
// the thread that serves the UI: PRAGMA quick_check, exact counts of large text searches, and the
// background check's look at one shard of assets/ and thumbs/ (files against rows). It only reads;
// what it finds, the main thread checks again and repairs (history-reader.ts, recovery.ts).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { ASSET_NAME_RE, TEMP_SUFFIX } from './assets.js';
import { History, type AssetRow } from './history.js';

/** A file the check may act on, with its time (a file newer than the check is in flight, never touched). */
export interface FoundFile {
  rel: string;
  mtimeMs: number;
}

/** What one shard holds that does not add up; the main thread verifies each before acting. */
export interface ShardScan {
  shard: string;
  /** Temp files of writes cut short. */
  temps: FoundFile[];
  /** Files under a content-addressed name that no row points at. */
  orphanFiles: FoundFile[];
  orphanThumbs: FoundFile[];
  /** Live assets whose file is not where their row says. */
  missing: AssetRow[];
  /** Live assets whose thumbnail is missing. */
  thumbless: AssetRow[];
  /** Files and rows looked at. */
  files: number;
  rows: number;
}

export type HistoryTask =
  | { op: 'quickCheck' }
  | { op: 'count'; query: Parameters<History['countExact']>[0] }
  | { op: 'scanShard'; shard: string };

function listShard(root: string, kind: 'assets' | 'thumbs', shard: string): FoundFile[] {
  let names: string[];
  try {
    names = readdirSync(join(root, kind, shard));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`cannot read ${join(root, kind, shard)}: ${(e as Error).message}`);
  }
  const out: FoundFile[] = [];
  for (const name of names) {
    if (!ASSET_NAME_RE.test(name) && !name.endsWith(TEMP_SUFFIX)) continue;
    let mtimeMs = 0;
    try {
      mtimeMs = statSync(join(root, kind, shard, name)).mtimeMs;
    } catch {
      continue; // gone meanwhile
    }
    out.push({ rel: `${kind}/${shard}/${name}`, mtimeMs });
  }
  return out;
}

function exists(root: string, rel: string): boolean {
  try {
    statSync(join(root, rel));
    return true;
  } catch {
    return false;
  }
}

export function scanShard(history: History, root: string, shard: string): ShardScan {
  const rows = history.assetsInShard(shard);
  const byPath = new Map<string, AssetRow>();
  const byThumb = new Map<string, AssetRow>();
  for (const r of rows) {
    byPath.set(r.path, r);
    if (r.thumbPath) byThumb.set(r.thumbPath, r);
  }
  const files = listShard(root, 'assets', shard);
  const thumbs = listShard(root, 'thumbs', shard);
  const scan: ShardScan = {
    shard,
    temps: [],
    orphanFiles: [],
    orphanThumbs: [],
    missing: [],
    thumbless: [],
    files: files.length + thumbs.length,
    rows: rows.length,
  };
  const onDisk = new Set<string>();
  for (const f of files) {
    if (f.rel.endsWith(TEMP_SUFFIX)) scan.temps.push(f);
    else if (byPath.has(f.rel)) onDisk.add(f.rel);
    else scan.orphanFiles.push(f);
  }
  const thumbsOnDisk = new Set<string>();
  for (const f of thumbs) {
    if (f.rel.endsWith(TEMP_SUFFIX)) scan.temps.push(f);
    else if (byThumb.has(f.rel)) thumbsOnDisk.add(f.rel);
    else scan.orphanThumbs.push(f);
  }
  for (const r of rows) {
    const fileThere = onDisk.has(r.path) || (!r.path.startsWith(`assets/${shard}/`) && exists(root, r.path));
    const thumbThere = r.thumbPath !== null && (thumbsOnDisk.has(r.thumbPath) || exists(root, r.thumbPath));
    if (fileThere && thumbThere) continue;
    if (!history.isAssetLive(r.sha256)) continue; // only trashed images show it: its files are in the trash
    if (!fileThere) scan.missing.push(r);
    else scan.thumbless.push(r);
  }
  return scan;
}

function run(history: History, root: string, task: HistoryTask): unknown {
  switch (task.op) {
    case 'quickCheck':
      return history.quickCheck();
    case 'count':
      return history.countExact(task.query);
    case 'scanShard':
      return scanShard(history, root, task.shard);
  }
}

if (parentPort) {
  const port = parentPort;
  const { file, root } = workerData as { file: string; root: string };
  let history: History | null = null;
  port.on('message', (m: { id: number; task: HistoryTask }) => {
    try {
      history ??= History.openReadOnly(file);
      port.postMessage({ id: m.id, ok: true, value: run(history, root, m.task) });
    } catch (e) {
      port.postMessage({ id: m.id, ok: false, error: { name: (e as Error).name, message: (e as Error).message } });
    }
  });
}

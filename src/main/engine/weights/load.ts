// One entry point for weight files: the format is sniffed from the first bytes (zip signature,
// safetensors header, pickle opcode), never trusted from the extension. Torch checkpoints are
// converted once to safetensors in the model cache, and later loads read the cache.
import { mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { MAX_HEADER_BYTES, SafetensorsReader, writeSafetensors } from './safetensors.js';
import { type NameMap, renameKeys } from './state-dict.js';
import { type ReadOptions, type StateDict, type WeightSource, type WeightTensor } from './tensor.js';
import { TorchCheckpoint, type TorchOpenOptions } from './torch-zip.js';

export type WeightFormat = 'safetensors' | 'torch-zip' | 'pickle' | 'unknown';

/**
 * Looks at the first bytes: `PK\x03\x04` is a zip; a plausible u64 length then `{` is safetensors
 * (also when the file is cut before the header ends, so the reader can say it is truncated).
 */
export async function detectFormat(file: string): Promise<WeightFormat> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(10);
    const { bytesRead } = await fh.read(head, 0, 10, 0);
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'torch-zip';
    if (bytesRead >= 9 && head[8] === 0x7b) {
      const n = head.readBigUInt64LE(0);
      if (n >= 2n && n <= BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) return 'safetensors';
      // A file cut short (a download that stopped): the length says more than follows, but the
      // header starts as safetensors' JSON does ({" or {}), so the reader says it is truncated.
      const next = bytesRead === 10 ? head[9]! : -1;
      if (n >= 2n && n <= BigInt(MAX_HEADER_BYTES) && (next === -1 || next === 0x22 || next === 0x7d)) {
        return 'safetensors';
      }
    }
    if (bytesRead >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return 'pickle';
    return 'unknown';
  } finally {
    await fh.close();
  }
}

/** Opens a weight file for lazy reading, whatever its format. */
export async function openCheckpoint(file: string, opts: TorchOpenOptions = {}): Promise<WeightSource> {
  const format = await detectFormat(file);
  switch (format) {
    case 'safetensors':
      return SafetensorsReader.open(file);
    case 'torch-zip':
      return TorchCheckpoint.open(file, opts);
    case 'pickle': // legacy torch files and bare pickles: TorchCheckpoint explains why they are refused
      return TorchCheckpoint.open(file, opts);
    case 'unknown': {
      const size = (await stat(file)).size;
      throw new Error(
        size === 0
          ? `${file}: empty file`
          : `${file}: unknown weight format (neither safetensors, a torch zip checkpoint, nor a pickle)`,
      );
    }
  }
}

export interface LoadOptions extends TorchOpenOptions, ReadOptions {
  /** Renames (or drops, with null) checkpoint names before they are returned. */
  rename?: NameMap;
  /** Loads only the names this accepts (after renaming), e.g. to skip `loss.*`. */
  filter?: (name: string) => boolean;
}

/** Loads a whole state dict, every tensor contiguous, from any supported format. */
export async function loadCheckpoint(file: string, opts: LoadOptions = {}): Promise<StateDict> {
  const src = await openCheckpoint(file, opts);
  try {
    return await readAll(src, opts);
  } finally {
    await src.close();
  }
}

/** Reads in flight at once: page faults and copies of different tensors overlap (~1.5x on 2 cores). */
const READ_CONCURRENCY = 4;

/** Reads every tensor of an opened source, renamed and filtered as asked, in the source's order. */
export async function readAll(src: WeightSource, opts: LoadOptions = {}): Promise<StateDict> {
  const names = new Map(src.names().map((n) => [n, n]));
  const mapped = opts.rename ? renameKeys(names, opts.rename) : names;
  const jobs = [...mapped].filter(([to]) => !opts.filter || opts.filter(to));
  const tensors = new Array<WeightTensor>(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      tensors[i] = await src.read(jobs[i]![1], opts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, jobs.length) }, worker));
  return new Map(jobs.map(([to], i) => [to, tensors[i]!]));
}

/**
 * Writes `src`'s state dict as safetensors at `dst` (atomically, at most two tensors in memory,
 * creating `dst`'s folder), recording where it came from in `__metadata__` so that a stale cache
 * can be told apart.
 */
export async function convertToSafetensors(
  src: string,
  dst: string,
  opts: TorchOpenOptions = {},
): Promise<{ tensors: number; bytes: number }> {
  const s = await stat(src);
  const source = await openCheckpoint(src, opts);
  try {
    const metadata: Record<string, string> = {
      format: 'pt',
      converted_from: source.format,
      source_size: String(s.size),
      source_mtime_ms: String(Math.floor(s.mtimeMs)),
    };
    if (opts.stateDictKey) metadata.state_dict_key = opts.stateDictKey;
    for (const [k, v] of Object.entries(source.metadata)) {
      if (!(`source_${k}` in metadata)) metadata[`source_${k}`] = v;
    }
    await mkdir(path.dirname(dst), { recursive: true });
    await writeSafetensors(dst, source, metadata);
    return { tensors: source.names().length, bytes: (await stat(dst)).size };
  } finally {
    await source.close();
  }
}

/**
 * Opens `src` through a safetensors cache at `cacheFile`: a safetensors source is opened directly; a
 * torch checkpoint is converted on first use and the cache reused while the source's size and mtime
 * match what the cache recorded.
 */
export async function openCached(
  src: string,
  cacheFile: string,
  opts: TorchOpenOptions = {},
): Promise<{ source: WeightSource; fromCache: boolean; converted: boolean }> {
  if ((await detectFormat(src)) === 'safetensors') {
    return { source: await SafetensorsReader.open(src), fromCache: false, converted: false };
  }
  const s = await stat(src);
  const cached = await SafetensorsReader.open(cacheFile).catch(() => null);
  if (cached) {
    const m = cached.metadata;
    if (
      m.source_size === String(s.size) &&
      m.source_mtime_ms === String(Math.floor(s.mtimeMs)) &&
      (m.state_dict_key ?? '') === (opts.stateDictKey ?? '')
    ) {
      return { source: cached, fromCache: true, converted: false };
    }
    await cached.close();
  }
  await convertToSafetensors(src, cacheFile, opts);
  return { source: await SafetensorsReader.open(cacheFile), fromCache: true, converted: true };
}

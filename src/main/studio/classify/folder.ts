// The images of a folder for Classify: walked recursively with async fs, image files by extension (the
// gallery's IMAGE_EXTENSIONS), hidden entries skipped, symbolic links followed once (a link back to a folder
// already seen is not entered again, so loops end), at most a bounded number of files. Folders that cannot be
// read are named, not fatal.
//
// Public API
//   walkImages(root, { max, signal? }) -> { files: string[] (sorted), unreadable: { path, error }[] }
import { opendir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { IMAGE_EXTENSIONS, StudioError } from '../../../shared/api.js';

export interface WalkResult {
  files: string[];
  /** Sub-folders that could not be listed, with why. */
  unreadable: { path: string; error: string }[];
}

const isImage = (name: string) => IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase());

async function rootDir(root: string): Promise<string> {
  const abs = path.resolve(root);
  let s;
  try {
    s = await stat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new StudioError(
      'NotFound',
      code === 'ENOENT'
        ? `${abs}: no such folder. Check the path.`
        : `Cannot open ${abs} (${code ?? (e as Error).message}). Check that you may read it.`,
    );
  }
  if (!s.isDirectory()) {
    throw new StudioError('NotAFolder', `${abs} is a file, not a folder. Give the folder that holds the images.`);
  }
  return abs;
}

export async function walkImages(root: string, o: { max: number; signal?: AbortSignal }): Promise<WalkResult> {
  const top = await rootDir(root);
  const out: WalkResult = { files: [], unreadable: [] };
  const seen = new Set<string>();
  const pending: string[] = [top];
  while (pending.length > 0) {
    o.signal?.throwIfAborted();
    const dir = pending.pop()!;
    try {
      const real = await realpath(dir);
      if (seen.has(real)) continue;
      seen.add(real);
      for await (const ent of await opendir(dir)) {
        if (ent.name.startsWith('.')) continue;
        const p = path.join(dir, ent.name);
        let isDir = ent.isDirectory();
        let isFile = ent.isFile();
        if (ent.isSymbolicLink()) {
          const t = await stat(p).catch(() => null); // a dangling link is neither
          isDir = t?.isDirectory() ?? false;
          isFile = t?.isFile() ?? false;
        }
        if (isDir) pending.push(p);
        else if (isFile && isImage(ent.name)) {
          if (out.files.length === o.max) {
            throw new StudioError(
              'TooManyImages',
              `${top} holds more than ${o.max.toLocaleString('en')} images. Choose a sub-folder, or split the folder.`,
            );
          }
          out.files.push(p);
        }
      }
    } catch (e) {
      if (e instanceof StudioError || o.signal?.aborted) throw e;
      const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      if (dir === top) throw new StudioError('NotFound', `Cannot list ${top} (${why}). Check that you may read it.`);
      out.unreadable.push({ path: dir, error: `cannot list this folder (${why})` });
    }
  }
  out.files.sort();
  return out;
}

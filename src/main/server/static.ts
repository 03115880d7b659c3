// Files of the built renderer (out/web), never anything outside that folder.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';

export const mimeTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

export function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

export interface StaticFile {
  path: string;
  size: number;
  mime: string;
  /** Vite's hashed bundles under assets/ never change; everything else is revalidated. */
  immutable: boolean;
}

/**
 * Resolves a URL path (already decoded and checked for `..`, NUL and backslashes by the caller)
 * to a file under `webRoot`, following symlinks only when they stay inside it. Null: not found.
 */
export async function resolveStatic(webRoot: string, urlPath: string): Promise<StaticFile | null> {
  const rel = urlPath === '/' || urlPath === '' ? 'index.html' : urlPath.replace(/^\/+/, '');
  let root: string;
  try {
    root = await realpath(webRoot);
  } catch {
    return null;
  }
  const candidate = path.resolve(root, rel);
  if (!isInside(root, candidate)) return null;
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    return null;
  }
  if (!isInside(root, real)) return null;
  const st = await stat(real).catch(() => null);
  if (!st?.isFile()) return null;
  const ext = path.extname(real).toLowerCase();
  return {
    path: real,
    size: st.size,
    mime: mimeTypes[ext] ?? 'application/octet-stream',
    immutable: rel.startsWith('assets/'),
  };
}

export { createReadStream };

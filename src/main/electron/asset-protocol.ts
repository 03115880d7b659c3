// studio-asset://file/<sha256> and studio-asset://thumb/<sha256>: images reach the renderer
// through this scheme, served from studio.assetFile, never as file:// paths of the user's disk.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Studio } from '../studio/types.js';

const SHA_RE = /^\/([0-9a-f]{64})$/;

function refuse(status: number, message: string): Response {
  return new Response(message, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
}

function inside(root: string, file: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(file));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

export async function assetResponse(studio: Studio, requestUrl: string, method = 'GET'): Promise<Response> {
  if (method !== 'GET' && method !== 'HEAD') return refuse(405, 'Only GET is allowed.');
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    return refuse(400, 'Not a URL.');
  }
  const variant = url.host;
  const m = SHA_RE.exec(url.pathname);
  if ((variant !== 'file' && variant !== 'thumb') || !m || url.search || url.username)
    return refuse(404, 'Asset URLs look like studio-asset://file/<sha256> or studio-asset://thumb/<sha256>.');
  const found = await studio.assetFile(m[1]!, variant);
  if (!found || !inside(studio.dataDir, found.path)) return refuse(404, 'No such asset.');
  const st = await stat(found.path).catch(() => null);
  if (!st?.isFile()) return refuse(404, 'The asset file is missing from the data folder.');
  const headers = {
    'Content-Type': found.mime,
    'Cache-Control': 'private, max-age=31536000, immutable',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': String(st.size),
  };
  if (method === 'HEAD') return new Response(null, { status: 200, headers });
  const stream = Readable.toWeb(createReadStream(found.path)) as unknown as ReadableStream<Uint8Array>;
  return new Response(stream, { status: 200, headers });
}

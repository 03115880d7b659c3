// The StudioApi over HTTP + WebSocket for a headless or remote machine (`fstudio serve`).
//
//   POST /api/<call>               body {args} (wire JSON)  ->  {ok:true, result} | {ok:false, error}
//   GET  /asset/(file|thumb)/<sha> the image or its thumbnail, from studio.assetFile
//   GET  /events                   WebSocket: {event, payload} for every StudioApi event
//   GET  /?token=...               sets the HttpOnly cookie and redirects to /
//   GET  /*                        the built renderer (out/web)
//
// Every request needs the token (Bearer header or cookie), a Host header naming this server,
// and must not come from another site's page. A refusal is JSON, except for a page load by a
// person's browser, which gets a page in words saying how to get in (help-page.ts).
import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { rendererCsp } from '../../shared/csp.js';
import { decodeWire, encodeWire } from '../../shared/wire.js';
import { MAX_IMPORT_FILE_BYTES } from '../../shared/gallery.js';
import type { Studio } from '../studio/types.js';
import {
  allowedHostNames,
  hostAllowed,
  isTopLevelNavigation,
  newToken,
  requestToken,
  sameOrigin,
  tokenCookie,
  tokensEqual,
} from './auth.js';
import { dispatchCall } from '../api/dispatch.js';
import { attachEvents } from './events.js';
import { isInside, resolveStatic } from './static.js';
import { HELP_PAGE_CSP, helpPage, isPageLoad, noTokenPage } from './help-page.js';

export interface ServerOptions {
  studio: Studio;
  /** Interface to bind; 127.0.0.1 unless the user asks otherwise. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Ports tried in order when `port` is taken (a last 0 takes any free one). */
  fallbackPorts?: number[];
  /** Random 32 bytes (base64url) unless given. */
  token?: string;
  /** Folder of the built renderer (out/web); null serves the API only. */
  webRoot?: string | null;
  /** More Host header names to accept (a DNS name of a remote box). */
  allowedHosts?: string[];
  /** Largest request body; imports are sent in batches below it. */
  maxBodyBytes?: number;
  log?: (message: string) => void;
}

export interface RunningServer {
  /** Base URL without the token, e.g. http://127.0.0.1:5173/ */
  url: string;
  port: number;
  /** The port asked for, when it was taken and a fallback port is used instead. */
  portTaken: number | null;
  host: string;
  token: string;
  /** Number of connected event sockets (for tests and the status line). */
  eventClients(): number;
  close(): Promise<void>;
}

export { MAX_IMPORT_FILE_BYTES };

/**
 * 384 MiB: room for one MAX_IMPORT_FILE_BYTES file as base64 (4/3 of its size) in a single call. A
 * JSON body becomes one string and V8 strings stop at ~512 MiB, so this is close to the ceiling anyway.
 */
export const DEFAULT_MAX_BODY = (MAX_IMPORT_FILE_BYTES / 2) * 3;

export const LOOPBACK = '127.0.0.1';

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const commonHeaders = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = encodeWire(body);
  res.writeHead(status, {
    ...commonHeaders,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(text);
}

/**
 * True while the request still has body bytes on the way that nobody read: a refusal then closes
 * the connection, or Node would drain a trickled body (up to requestTimeout) to reuse it.
 */
function bodyUnread(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * An error as JSON. When the body was not read, with `Connection: close`: Node then closes the
 * socket as soon as the answer is written, without reading the rest of the body.
 */
function sendError(res: ServerResponse, status: number, name: string, message: string): void {
  sendJson(res, status, { ok: false, error: { name, message } }, bodyUnread(res.req) ? { Connection: 'close' } : {});
}

/** Reads the body up to `limit` bytes; a longer one is refused before it is all in memory. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpError(
      413,
      'PayloadTooLarge',
      `Request body is larger than ${Math.round(limit / 1024 / 1024)} MB. Send fewer or smaller files per call.`,
    );
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Checks the raw path before any routing: encoded slashes or backslashes, `..` segments and NUL
 * are refused outright rather than normalised, so no later step can be talked into escaping.
 * Returns the decoded path.
 */
export function checkPath(rawPath: string): string {
  if (/%(2f|5c|00)/i.test(rawPath) || rawPath.includes('\\'))
    throw new HttpError(400, 'BadPath', 'Encoded slashes, backslashes and NUL are not allowed in paths.');
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw new HttpError(400, 'BadPath', 'The path is not valid percent-encoding.');
  }
  if (!decoded.startsWith('/') || decoded.split('/').some((seg) => seg === '..' || seg === '.'))
    throw new HttpError(400, 'BadPath', 'Paths may not contain "." or ".." segments.');
  return decoded;
}

const ASSET_RE = /^\/asset\/(file|thumb)\/([0-9a-f]{64})$/;

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { studio } = opts;
  const bindHost = opts.host ?? LOOPBACK;
  const token = opts.token ?? newToken();
  if (token.length < 16) throw new Error('The server token must be at least 16 characters long.');
  const webRoot = opts.webRoot ?? null;
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const log = opts.log ?? ((m: string) => process.stderr.write(`[server] ${m}\n`));
  const hostNames = allowedHostNames(bindHost, opts.allowedHosts);
  let port = 0;

  /** The checks shared by HTTP and WebSocket: Host, origin, token. Null when all pass. */
  const refuse = (req: IncomingMessage, url: URL, allowQueryToken: boolean, firstVisit = false) => {
    if (!hostAllowed(req.headers.host, port, hostNames))
      return {
        status: 403,
        name: 'Forbidden',
        message:
          `Host "${req.headers.host ?? ''}" is not a name of this server. Open http://${LOOPBACK}:${port}/, ` +
          'or, to reach it by that name, start `fstudio serve` with --allow-host <name>.',
      };
    // The first visit may come from a link on another site (a browser-based terminal, say): it carries
    // the token itself, so it is safe, and it only sets a cookie.
    if (!sameOrigin(req) && !(firstVisit && isTopLevelNavigation(req)))
      return { status: 403, name: 'Forbidden', message: 'Cross-origin requests are not allowed.' };
    // On the first visit the address bar's token counts, whatever stale cookie the browser still has.
    const given = firstVisit ? url.searchParams.get('token') : requestToken(req, port, url, allowQueryToken);
    if (given === null || !tokensEqual(given, token))
      return {
        status: 401,
        stale: given !== null,
        name: 'Unauthorized',
        message:
          given === null
            ? 'This server needs its token: open the link with ?token=... that fstudio serve printed, or send "Authorization: Bearer <token>".'
            : 'Wrong token: this server has another one. Open the link fstudio serve printed when it started.',
      };
    return null;
  };

  type Refusal = NonNullable<ReturnType<typeof refuse>>;

  /** A refusal as JSON for the app and scripts; as a page in words for a person's browser. */
  const sendRefusal = (req: IncomingMessage, res: ServerResponse, r: Refusal): void => {
    if (r.status === 401 && isPageLoad(req)) return sendHtml(res, 401, noTokenPage('stale' in r && r.stale === true));
    sendError(res, r.status, r.name, r.message);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const url = new URL(rawUrl.startsWith('/') ? rawUrl : '/', 'http://localhost');
    const method = req.method ?? 'GET';

    // The browser's first visit: /?token=... becomes a cookie, and the token leaves the address bar.
    if (rawPath === '/' && url.searchParams.has('token') && (method === 'GET' || method === 'HEAD')) {
      const refusal = refuse(req, url, true, true);
      if (refusal) return sendRefusal(req, res, refusal);
      const crossSite = /^(cross|same)-site$/.test(String(req.headers['sec-fetch-site'] ?? ''));
      if (crossSite) {
        // A redirect would still count as the other site's navigation, and the SameSite=Strict cookie
        // would not be sent with it; a navigation started by our own page is same-site.
        const html =
          '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/">' +
          '<title>Foundation Studio</title><p><a href="/">Open Foundation Studio</a></p>';
        res.writeHead(200, {
          ...commonHeaders,
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
          'Set-Cookie': tokenCookie(port, token),
          'Cache-Control': 'no-store',
        });
        res.end(method === 'HEAD' ? undefined : html);
        return;
      }
      res.writeHead(303, {
        ...commonHeaders,
        Location: '/',
        'Set-Cookie': tokenCookie(port, token),
        'Cache-Control': 'no-store',
      });
      res.end();
      return;
    }

    const refusal = refuse(req, url, false);
    if (refusal) return sendRefusal(req, res, refusal);
    const decoded = checkPath(rawPath);

    if (decoded.startsWith('/api/')) {
      if (method !== 'POST') throw new HttpError(405, 'MethodNotAllowed', 'API calls are POST requests.');
      const type = req.headers['content-type'] ?? '';
      // Only JSON: a cross-site form cannot send it without a CORS preflight we never answer.
      if (!/^application\/json\b/i.test(type))
        throw new HttpError(415, 'UnsupportedMediaType', 'API calls need "Content-Type: application/json".');
      const call = decoded.slice('/api/'.length);
      const body = await readBody(req, maxBody);
      let args: unknown;
      if (body.length) {
        let parsed: unknown;
        try {
          parsed = decodeWire(body.toString('utf8'));
        } catch (e) {
          throw new HttpError(400, 'InvalidArgument', `The request body is not valid JSON: ${(e as Error).message}`);
        }
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
          throw new HttpError(400, 'InvalidArgument', 'The request body must be a JSON object {"args": ...}.');
        args = (parsed as { args?: unknown }).args;
      }
      const outcome = await dispatchCall(studio.handlers, call, args, { log });
      if (outcome.ok) return sendJson(res, 200, { ok: true, result: outcome.result });
      return sendJson(res, outcome.status, { ok: false, error: outcome.error });
    }

    if (method !== 'GET' && method !== 'HEAD')
      throw new HttpError(405, 'MethodNotAllowed', `${method} is not allowed here.`);

    if (decoded.startsWith('/asset/')) {
      const m = ASSET_RE.exec(decoded);
      if (!m)
        throw new HttpError(404, 'NotFound', 'Asset URLs look like /asset/file/<sha256> or /asset/thumb/<sha256>.');
      const variant = m[1] as 'file' | 'thumb';
      const sha = m[2]!;
      const found = await studio.assetFile(sha, variant);
      // The studio promises a path inside the data folder; checked again here because a mistake would leak the disk.
      if (!found || !isInside(path.resolve(studio.dataDir), path.resolve(found.path)))
        throw new HttpError(404, 'NotFound', `No ${variant} for ${sha}.`);
      return streamFile(req, res, found.path, found.mime, {
        'Cache-Control': 'private, max-age=31536000, immutable',
        ETag: `"${variant}-${sha}"`,
      });
    }

    if (!webRoot) throw new HttpError(404, 'NotFound', 'This server was started without the web UI.');
    const file = await resolveStatic(webRoot, decoded);
    if (!file) {
      if (decoded === '/' && isPageLoad(req))
        return sendHtml(
          res,
          404,
          helpPage('The studio’s web pages are not built yet', [
            `There is no index.html in ${webRoot}.`,
            'In the folder of the studio, run `npm run build:web`, then reload this page (the server can keep running).',
          ]),
        );
      if (decoded === '/')
        throw new HttpError(
          404,
          'NotFound',
          `The web UI is not built (no index.html in ${webRoot}). Run \`npm run build:web\`.`,
        );
      throw new HttpError(404, 'NotFound', `No file ${decoded}.`);
    }
    const headers: Record<string, string> = {
      'Cache-Control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    };
    if (file.mime.startsWith('text/html')) {
      // The renderer's one policy (src/shared/csp.ts); its connect-src 'self' covers our own ws:// URL.
      headers['Content-Security-Policy'] = rendererCsp('header');
      headers['X-Frame-Options'] = 'DENY';
    }
    return streamFile(req, res, file.path, file.mime, headers);
  }

  function sendHtml(res: ServerResponse, status: number, html: string): void {
    res.writeHead(status, {
      ...commonHeaders,
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': Buffer.byteLength(html),
      'Content-Security-Policy': HELP_PAGE_CSP,
      'X-Frame-Options': 'DENY',
      'Cache-Control': 'no-store',
      ...(bodyUnread(res.req) ? { Connection: 'close' } : {}),
    });
    res.end(res.req.method === 'HEAD' ? undefined : html);
  }

  function streamFile(
    req: IncomingMessage,
    res: ServerResponse,
    file: string,
    mime: string,
    headers: Record<string, string>,
  ): Promise<void> {
    return new Promise((resolve) => {
      const etag = headers.ETag;
      if (etag && req.headers['if-none-match'] === etag) {
        res.writeHead(304, { ...commonHeaders, ...headers });
        res.end();
        return resolve();
      }
      const stream = createReadStream(file);
      stream.on('error', (e) => {
        if (!res.headersSent) sendError(res, 404, 'NotFound', 'The file could not be read.');
        else res.destroy();
        log(`reading ${file}: ${e.message}`);
        resolve();
      });
      stream.on('open', () => {
        res.writeHead(200, { ...commonHeaders, 'Content-Type': mime, ...headers });
        if (req.method === 'HEAD') {
          stream.destroy();
          res.end();
          return resolve();
        }
        stream.pipe(res);
      });
      stream.on('close', () => resolve());
    });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof HttpError) {
        if (!res.headersSent) sendError(res, e.status, e.code, e.message);
        return;
      }
      log(`unexpected: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      // Never the stack: it names files on the server's disk.
      if (!res.headersSent)
        sendError(res, 500, 'InternalError', 'The server failed to handle this request; see its log.');
      else res.destroy();
    });
  });
  server.headersTimeout = 30_000;
  // Large imports take a while to upload on slow links.
  server.requestTimeout = 10 * 60_000;

  const events = attachEvents(server, {
    studio,
    log,
    refuse: (req, url) => refuse(req, url, true),
  });

  const listen = (p: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, bindHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
  const candidates = [opts.port ?? 0, ...(opts.fallbackPorts ?? [])];
  for (let i = 0; ; i++) {
    try {
      await listen(candidates[i]!);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' && i + 1 < candidates.length) continue;
      events.close();
      throw e;
    }
  }
  port = (server.address() as AddressInfo).port;
  const shownHost =
    bindHost === '0.0.0.0' || bindHost === '::' ? LOOPBACK : bindHost.includes(':') ? `[${bindHost}]` : bindHost;

  return {
    url: `http://${shownHost}:${port}/`,
    port,
    portTaken: port === (opts.port ?? 0) || (opts.port ?? 0) === 0 ? null : opts.port!,
    host: bindHost,
    token,
    eventClients: () => events.clientCount(),
    close: () =>
      new Promise<void>((resolve) => {
        events.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

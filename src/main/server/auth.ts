// Who may talk to the server: a random token (Bearer header, or an HttpOnly cookie set once
// from /?token=...), a Host header naming this server (DNS rebinding), and no cross-origin
// requests from pages of other sites.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { networkInterfaces, hostname } from 'node:os';

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time, whatever the lengths: both sides are hashed to 32 bytes first. */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Cookies are shared by every port of a host, so the name carries the port. */
export function cookieName(port: number): string {
  return `fstudio_token_${port}`;
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    try {
      out.set(key, decodeURIComponent(value));
    } catch {
      out.set(key, value);
    }
  }
  return out;
}

export function tokenCookie(port: number, token: string): string {
  return `${cookieName(port)}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`;
}

/** The token a request carries: `Authorization: Bearer`, else our cookie, else (when allowed) `?token=`. */
export function requestToken(req: IncomingMessage, port: number, url: URL, allowQuery: boolean): string | null {
  const auth = req.headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    return m ? m[1]!.trim() : null;
  }
  const cookie = parseCookies(req.headers.cookie).get(cookieName(port));
  if (cookie) return cookie;
  if (allowQuery) return url.searchParams.get('token');
  return null;
}

const loopbackNames = ['127.0.0.1', 'localhost', '[::1]'];

/** Host names this server answers to: loopback always; every local address when bound to all interfaces. */
export function allowedHostNames(bindHost: string, extra: readonly string[] = []): Set<string> {
  const names = new Set<string>([...loopbackNames, ...extra.map((h) => h.toLowerCase())]);
  if (bindHost === '0.0.0.0' || bindHost === '::') {
    names.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) names.add(a.family === 'IPv6' ? `[${a.address}]` : a.address);
    }
  } else if (!loopbackNames.includes(bindHost)) {
    names.add(bindHost.includes(':') ? `[${bindHost}]` : bindHost.toLowerCase());
  }
  return names;
}

/** True when the Host header is one of ours with our port (a rebinding attacker's name is refused). */
export function hostAllowed(hostHeader: string | undefined, port: number, names: Set<string>): boolean {
  if (!hostHeader) return false;
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/i.exec(hostHeader.trim());
  if (!m) return false;
  const name = m[1]!.toLowerCase();
  const p = m[2] === undefined ? 80 : Number(m[2]);
  return p === port && names.has(name);
}

/**
 * Cross-origin requests are refused: a browser names the page's origin in `Origin` (always for
 * POST and WebSocket) and says `Sec-Fetch-Site: cross-site|same-site` for other sites' pages.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site && site !== 'same-origin' && site !== 'none') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  return origin === `http://${req.headers.host}`;
}

/** A GET the user made by following a link or typing the address (no script can make one of these). */
export function isTopLevelNavigation(req: IncomingMessage): boolean {
  const mode = req.headers['sec-fetch-mode'];
  const dest = req.headers['sec-fetch-dest'];
  return (
    req.method === 'GET' &&
    req.headers.origin === undefined &&
    mode === 'navigate' &&
    (dest === undefined || dest === 'document')
  );
}

// Decisions of the Electron shell that need no Electron: which pages are ours, which links may
// go to the OS browser, and the renderer's content security policy.

/**
 * Our renderer: the dev server's origin under `electron-vite dev`, else exactly the built
 * index.html (query and fragment ignored, so the app may use them for its own routing).
 */
export function isOurPage(url: string, appUrl: string): boolean {
  let u: URL;
  let ours: URL;
  try {
    u = new URL(url);
    ours = new URL(appUrl);
  } catch {
    return false;
  }
  if (ours.protocol === 'file:') return u.protocol === 'file:' && u.host === ours.host && u.pathname === ours.pathname;
  return u.origin === ours.origin;
}

/** Links that may be handed to the OS browser: plain http(s) URLs with a host, no credentials. */
export function externalLinkAllowed(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return (u.protocol === 'https:' || u.protocol === 'http:') && u.hostname !== '' && !u.username && !u.password;
}

export const ASSET_SCHEME = 'studio-asset';

export function contentSecurityPolicy(dev: boolean): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    `img-src 'self' blob: data: ${ASSET_SCHEME}:`,
    // Vite's dev server pushes updates over a WebSocket on its own host.
    dev ? "connect-src 'self' ws:" : "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

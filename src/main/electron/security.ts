// Decisions of the Electron shell that need no Electron: which pages are ours, which links may
// go to the OS browser, and the renderer's content security policy.
import { ASSET_SCHEME, rendererCsp } from '../../shared/csp.js';

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

export { ASSET_SCHEME };

/** The header Electron's session adds (src/shared/csp.ts); under `electron-vite dev` also Vite's HMR WebSocket. */
export function contentSecurityPolicy(dev: boolean): string {
  return rendererCsp('header', dev ? { connect: ['ws:'] } : {});
}

// The renderer's content security policy, one definition for its three places: the <meta> tag in
// src/renderer/index.html (which must stay literal; tests/unit/csp.test.ts checks it equals
// rendererCsp('meta')), the header Electron's session adds (electron/security.ts) and the header
// `fstudio serve` sends with index.html (server/server.ts). A page under both a header and the meta
// tag gets the intersection of the two, so they must not drift apart.
//
// connect-src is 'self' only: CSP Level 3 (Chromium, which Electron and the e2e tests run) matches
// same-origin ws:/wss: URLs with 'self', so the server transport's WebSocket needs nothing more. In
// Electron the page is a file:// URL that receives no headers, so the meta tag is its whole policy.

/** Electron's protocol for gallery files and thumbnails (studio-asset://file/<sha256>). */
export const ASSET_SCHEME = 'studio-asset';

/**
 * The policy as a header ('header') or for the meta tag ('meta': without frame-ancestors, which a meta
 * tag may not carry). `connect` adds sources to connect-src (Vite's dev server in Electron dev).
 */
export function rendererCsp(delivery: 'header' | 'meta', opts: { connect?: readonly string[] } = {}): string {
  const directives = [
    "default-src 'self'",
    "script-src 'self'",
    // Svelte transitions and style: directives write inline styles.
    "style-src 'self' 'unsafe-inline'",
    `img-src 'self' blob: data: ${ASSET_SCHEME}:`,
    ["connect-src 'self'", ...(opts.connect ?? [])].join(' '),
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ];
  if (delivery === 'header') directives.push("frame-ancestors 'none'");
  return directives.join('; ');
}

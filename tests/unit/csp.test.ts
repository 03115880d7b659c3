// One content security policy for the renderer (src/shared/csp.ts): the literal <meta> tag in
// index.html, Electron's header and the server's header must not drift apart.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { contentSecurityPolicy } from '../../src/main/electron/security.js';
import { ASSET_SCHEME, rendererCsp } from '../../src/shared/csp.js';

const repo = path.resolve(import.meta.dirname, '../..');

/** The content of the page's CSP meta tag. */
function metaCsp(html: string): string {
  const tags = [...html.matchAll(/<meta\s[^>]*http-equiv="Content-Security-Policy"[^>]*>/gi)];
  expect(tags).toHaveLength(1);
  const content = /\scontent="([^"]*)"/.exec(tags[0]![0]);
  expect(content).not.toBeNull();
  return content![1]!;
}

const directive = (csp: string, name: string) =>
  csp
    .split(';')
    .map((d) => d.trim())
    .find((d) => d.startsWith(`${name} `));

describe('renderer CSP', () => {
  it("index.html's meta tag is exactly rendererCsp('meta')", () => {
    expect(metaCsp(readFileSync(path.join(repo, 'src/renderer/index.html'), 'utf8'))).toBe(rendererCsp('meta'));
  });

  it('connects only to its own origin: no ws:/wss: to any host', () => {
    for (const csp of [rendererCsp('meta'), rendererCsp('header'), contentSecurityPolicy(false)]) {
      expect(directive(csp, 'connect-src')).toBe("connect-src 'self'");
      expect(csp).not.toMatch(/\b(ws|wss):/);
    }
  });

  it("the header is the meta policy plus frame-ancestors, which a meta tag cannot carry; Electron's header is it", () => {
    expect(rendererCsp('header')).toBe(`${rendererCsp('meta')}; frame-ancestors 'none'`);
    expect(rendererCsp('meta')).not.toMatch(/frame-ancestors/);
    expect(contentSecurityPolicy(false)).toBe(rendererCsp('header'));
    expect(directive(contentSecurityPolicy(true), 'connect-src')).toBe("connect-src 'self' ws:"); // Vite's HMR, dev only
    expect(directive(rendererCsp('meta'), 'img-src')).toBe(`img-src 'self' blob: data: ${ASSET_SCHEME}:`);
  });
});

// What a browser gets instead of a JSON error when a person opens a page of the server that refuses
// them (no token, an old token, the UI not built): a small page in words, saying how to get in.
import type { IncomingMessage } from 'node:http';

/** A page load by a person (an address typed, a link followed, a reload), not a call of the app. */
export function isPageLoad(req: IncomingMessage): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const mode = req.headers['sec-fetch-mode'];
  if (mode !== undefined) return mode === 'navigate';
  // Browsers without Fetch Metadata: a page load asks for HTML first.
  return /^text\/html\b/i.test(String(req.headers.accept ?? ''));
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A paragraph: plain text, with `code` in backticks shown as code (never inserted as HTML). */
function paragraph(text: string): string {
  const html = escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>');
  return `<p>${html}</p>`;
}

/** The policy of the help page: no scripts, no requests, only its own inline style. */
export const HELP_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

export function helpPage(title: string, paragraphs: readonly string[]): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${escapeHtml(title)} · Foundation Studio</title>
<style>
  body { font: 15px/1.55 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1c1e22; }
  main { max-width: 38rem; margin: 12vh auto 0; padding: 1.5rem 1.75rem; background: #fff;
         border: 1px solid #d9dce1; border-radius: 10px; }
  h1 { font-size: 1.25rem; margin: 0 0 0.75rem; }
  .brand { color: #5a606b; font-size: 13px; margin: 0 0 0.25rem; }
  code { font: 13px ui-monospace, monospace; background: #eceef1; padding: 0.05rem 0.3rem; border-radius: 4px; }
  @media (prefers-color-scheme: dark) {
    body { background: #141518; color: #e6e7ea; }
    main { background: #1d1f23; border-color: #33363c; }
    .brand { color: #9aa0aa; }
    code { background: #2a2d33; }
  }
</style>
</head>
<body>
<main>
<p class="brand">Foundation Studio</p>
<h1>${escapeHtml(title)}</h1>
${paragraphs.map(paragraph).join('\n')}
</main>
</body>
</html>
`;
}

/** The page for a browser without the token (`stale`: it has one, but not this server's). */
export function noTokenPage(stale: boolean): string {
  return helpPage(stale ? 'This access link is out of date' : 'Open the studio with its access link', [
    stale
      ? 'The token this browser has (from a link, or kept from an earlier visit) is not the one this studio server uses now: the server was given a new token (`fstudio serve --new-token`), or the link is another server’s.'
      : 'This studio server lets in only browsers that have its token, so that other people and web pages cannot use it.',
    'On the computer running the studio, look at the terminal where `fstudio serve` runs: it printed a link ending in `?token=…`. Open that link here once; this browser then remembers it, also when the server restarts.',
    'Lost the link? Stop the server with Ctrl+C and run `fstudio serve` again: it prints the same link each time. The token is kept in the file `server-token` in the studio’s data folder.',
  ]);
}

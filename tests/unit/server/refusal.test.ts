// A refused request whose body was not read closes its connection at once: a client that declares
// a huge body and trickles it must not hold a socket (and the server's time) until requestTimeout.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../../src/main/server/index.js';
import { fakeStudio } from './fake-studio.js';

interface Exchange {
  /** Everything the server sent before closing (or before the deadline). */
  response: string;
  /** ms from connecting until the server ended the connection; null if it was still open at the deadline. */
  closedAfterMs: number | null;
}

const DEADLINE_MS = 2000;

/**
 * Sends `head` (request line and headers, raw), then trickles body bytes every 20 ms until the
 * server ends the connection or DEADLINE_MS pass.
 */
function trickle(port: number, head: string, chunk = 'x'.repeat(64)): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const started = Date.now();
    let response = '';
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      clearTimeout(deadline);
      socket.destroy();
      resolve({ response, closedAfterMs: closed ? Date.now() - started : null });
    };
    const deadline = setTimeout(() => finish(false), DEADLINE_MS);
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (socket.writable) socket.write(chunk);
      }, 20);
    });
    socket.on('data', (d: Buffer) => (response += d.toString('latin1')));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    // A reset after the answer also ends the connection; writing into a closed socket gives EPIPE.
    socket.on('error', () => finish(true));
  });
}

function head(port: number, target: string, headers: Record<string, string>, method = 'POST'): string {
  const lines = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function statusOf(response: string): number {
  return Number(/^HTTP\/1\.1 (\d{3}) /.exec(response)?.[1] ?? 0);
}

let root: string;
let server: RunningServer;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'fstudio-refusal-'));
  server = await startServer({
    studio: fakeStudio(path.join(root, 'data')),
    maxBodyBytes: 1024,
    log: () => {},
  });
});

afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

const json = { 'Content-Type': 'application/json' };
const huge = { ...json, 'Content-Length': '10000000000' };

describe('a refused request with an unread body', () => {
  it('gets its 401 with Connection: close, and the server ends the connection', async () => {
    const r = await trickle(server.port, head(server.port, '/api/getSettings', huge));
    expect(statusOf(r.response)).toBe(401);
    expect(r.response).toMatch(/\r\nConnection: close\r\n/i);
    expect(r.response).toMatch(/needs its token/);
    expect(r.closedAfterMs, 'the server kept the connection open').not.toBeNull();
    expect(r.closedAfterMs).toBeLessThan(DEADLINE_MS);
  });

  it('closes after a wrong token, a foreign Host, a wrong method or type, and a bad path too', async () => {
    const bearer = { Authorization: `Bearer ${server.token}` };
    const cases: [number, string][] = [
      [401, head(server.port, '/api/getSettings', { ...huge, Authorization: 'Bearer wrong-token-1234567' })],
      [403, head(server.port, '/api/getSettings', { ...huge, ...bearer, Origin: 'http://evil.example' })],
      [403, head(server.port, '/api/getSettings', { ...huge, ...bearer }).replace(/Host: [^\r]+/, 'Host: evil')],
      [
        415,
        head(server.port, '/api/getSettings', {
          ...bearer,
          'Content-Type': 'text/plain',
          'Content-Length': '10000000000',
        }),
      ],
      [405, head(server.port, '/index.html', { ...huge, ...bearer })],
      [400, head(server.port, '/api/..%2fx', { ...huge, ...bearer })],
      [401, head(server.port, '/api/getSettings', { ...json, 'Transfer-Encoding': 'chunked' })],
    ];
    for (const [status, request] of cases) {
      const r = await trickle(server.port, request);
      expect(statusOf(r.response), request).toBe(status);
      expect(r.closedAfterMs, `${status}: the server kept the connection open`).not.toBeNull();
    }
  });

  it('gets 413 for an authorised body over the limit, declared or sent, and the connection closes', async () => {
    const bearer = { Authorization: `Bearer ${server.token}` };
    const declared = await trickle(server.port, head(server.port, '/api/importImages', { ...huge, ...bearer }));
    expect(statusOf(declared.response)).toBe(413);
    expect(declared.closedAfterMs, 'the server kept the connection open').not.toBeNull();
    // Chunked: the size is only known once more than the limit has arrived.
    const sent = await trickle(
      server.port,
      head(server.port, '/api/importImages', { ...json, ...bearer, 'Transfer-Encoding': 'chunked' }),
      `100\r\n${'x'.repeat(256)}\r\n`,
    );
    expect(statusOf(sent.response)).toBe(413);
    expect(sent.response).toMatch(/PayloadTooLarge/);
    expect(sent.closedAfterMs, 'the server kept the connection open').not.toBeNull();
  });

  it('keeps the connection of a refused request without a body open for the next request', async () => {
    const r = await trickle(server.port, head(server.port, '/', {}, 'GET'), '');
    expect(statusOf(r.response)).toBe(401);
    expect(r.response).not.toMatch(/\r\nConnection: close\r\n/i);
    expect(r.closedAfterMs).toBeNull();
  });
});

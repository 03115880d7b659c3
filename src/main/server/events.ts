// The WebSocket at /events: every StudioApi event, relayed to every authorised client as
// `{event, payload}`: a text frame of wire JSON, or, when the payload carries bytes (a job's preview
// frame), one binary frame with the bytes as they are (wire.ts encodeWireBinary), never base64.
// The socket is one-way; the client calls through HTTP.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { apiEvents, type EventName } from '../../shared/api.js';
import { encodeWire, encodeWireBinary, hasBytes } from '../../shared/wire.js';
import type { Studio } from '../studio/types.js';

export interface EventsOptions {
  studio: Studio;
  /** Decides whether an upgrade may proceed; returns the refusal (status and message) or null. */
  refuse(req: IncomingMessage, url: URL): { status: number; name: string; message: string } | null;
  log(message: string): void;
}

const reasons: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' };

function reject(socket: Duplex, status: number, name: string, message: string): void {
  const body = JSON.stringify({ name, message });
  socket.end(
    `HTTP/1.1 ${status} ${reasons[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export function attachEvents(server: Server, opts: EventsOptions): { close(): void; clientCount(): number } {
  // Clients never need to send more than a ping; a small limit keeps a bad client cheap.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const alive = new WeakMap<WebSocket, boolean>();

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/events') return reject(socket, 404, 'NotFound', 'The only WebSocket endpoint is /events.');
    const refusal = opts.refuse(req, url);
    if (refusal) return reject(socket, refusal.status, refusal.name, refusal.message);
    wss.handleUpgrade(req, socket, head, (ws) => {
      alive.set(ws, true);
      ws.on('pong', () => alive.set(ws, true));
      ws.on('error', (e) => opts.log(`events socket error: ${e.message}`));
      ws.on('close', () => {
        if (wss.clients.size === 0) unsubscribe();
      });
      subscribe();
      wss.emit('connection', ws, req);
    });
  };
  server.on('upgrade', onUpgrade);

  // The studio's events are listened to only while a client is connected: what a listener costs (the
  // check for other processes' writes behind galleryChanged) is not paid for an empty room.
  let subscriptions: (() => void)[] = [];
  const subscribe = () => {
    if (subscriptions.length > 0) return;
    subscriptions = (Object.keys(apiEvents) as EventName[]).map((event) =>
      opts.studio.on(event, (payload) => {
        const message = { event, payload };
        const frame = hasBytes(payload) ? encodeWireBinary(message) : encodeWire(message);
        for (const ws of wss.clients) if (ws.readyState === ws.OPEN) ws.send(frame);
      }),
    );
  };
  const unsubscribe = () => {
    for (const off of subscriptions) off();
    subscriptions = [];
  };

  // Drop clients that stopped answering pings (a sleeping laptop, a killed tab).
  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, 30_000);
  heartbeat.unref();

  return {
    clientCount: () => wss.clients.size,
    close() {
      clearInterval(heartbeat);
      unsubscribe();
      server.off('upgrade', onUpgrade);
      for (const ws of wss.clients) ws.close(1001, 'server closing');
      wss.close();
    },
  };
}

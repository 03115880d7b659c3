// A local HTTP server (127.0.0.1 only) that misbehaves on cue: hangs after N bytes (a test then
// drops the socket, or lets the client's stall detector fire), ignores Range, answers 404/500,
// redirects with X-Linked-Etag.
// Each route is a function of the request and how many times that path was asked for.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
}

export type Route = (req: http.IncomingMessage, res: http.ServerResponse, hit: number) => void;

export interface TestServer {
  url: (path: string) => string;
  requests: SeenRequest[];
  /** Most requests in flight at once. */
  maxInFlight: () => number;
  route: (path: string, r: Route) => void;
  close: () => Promise<void>;
}

export async function startServer(routes: Record<string, Route> = {}): Promise<TestServer> {
  const table = new Map(Object.entries(routes));
  const hits = new Map<string, number>();
  const requests: SeenRequest[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push({ path, headers: req.headers });
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let counted = true;
    const done = () => {
      if (counted) inFlight--;
      counted = false;
    };
    res.on('close', done);
    const hit = (hits.get(path) ?? 0) + 1;
    hits.set(path, hit);
    const r = table.get(path);
    if (!r) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    r(req, res, hit);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (p) => `http://127.0.0.1:${port}${p}`,
    requests,
    maxInFlight: () => maxInFlight,
    route: (p, r) => table.set(p, r),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ServeOptions {
  /** Write this many body bytes, then send nothing more (the connection stays open). */
  hangAfter?: number;
  /** Answer 200 with the whole file even when a Range was asked for. */
  ignoreRange?: boolean;
  headers?: Record<string, string>;
}

/** Serves `data` with Range support (206, 416) and the failure modes above. */
export function serveBytes(data: Buffer, o: ServeOptions = {}): Route {
  return (req, res) => {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (range && !o.ignoreRange) {
      start = Number(range[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${data.length}`, ...o.headers }).end();
        return;
      }
      res.writeHead(206, {
        'Content-Length': String(data.length - start),
        'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}`,
        'Accept-Ranges': 'bytes',
        ...o.headers,
      });
    } else {
      res.writeHead(200, { 'Content-Length': String(data.length), 'Accept-Ranges': 'bytes', ...o.headers });
    }
    const body = data.subarray(start);
    if (o.hangAfter !== undefined) {
      if (o.hangAfter > 0) res.write(body.subarray(0, o.hangAfter));
      else res.flushHeaders();
    } else res.end(body);
  };
}

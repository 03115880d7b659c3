// The renderer's one door to the studio: `window.studio` when the Electron preload put it
// there, otherwise HTTP calls and a WebSocket to the server that served this page (the
// HttpOnly cookie set from /?token= authenticates both). Either way the app sees StudioApi,
// and a failed call throws an Error whose `name` is the wire error's name.
import {
  apiCalls,
  apiEvents,
  type CallName,
  eventSubscriberName,
  type EventName,
  type EventPayload,
  FINISHED_JOB_STATES,
  type JobStatus,
  type StudioApi,
  type WireError,
} from '../../../shared/api.js';
import { decodeWire, decodeWireBinary, encodeWire } from '../../../shared/wire.js';

export type AssetVariant = 'file' | 'thumb';
/**
 * The event channel: `unauthorized` when the server is there but refuses this page's token (it was
 * given a new one); the client keeps trying either way, so the page carries on once it is let in again.
 */
export type ConnectionState = 'connecting' | 'open' | 'closed' | 'unauthorized';

export type StudioClient = StudioApi & {
  transport: 'electron' | 'server';
  /** URL an <img> can load: studio-asset://file/<sha> in Electron, /asset/file/<sha> on the server. */
  assetUrl(sha256: string, variant: AssetVariant): string;
  /** State of the event channel (always 'open' in Electron); returns an unsubscribe function. */
  onConnection(listener: (state: ConnectionState) => void): () => void;
};

export function wireError(error: WireError): Error {
  const e = new Error(error.message);
  e.name = error.name;
  return e;
}

const SHA_RE = /^[0-9a-f]{64}$/;

function checkSha(sha256: string): string {
  if (!SHA_RE.test(sha256)) throw wireError({ name: 'InvalidArgument', message: `Not a SHA-256: "${sha256}".` });
  return sha256;
}

// ---------- Electron ----------

/**
 * contextBridge copies only the message of a rejected Error, so the preload encodes the wire
 * name as "Name: message"; this restores it.
 */
export function fromBridgeError(e: unknown): Error {
  if (!(e instanceof Error)) return wireError({ name: 'InternalError', message: String(e) });
  const m = /^([A-Z][A-Za-z0-9]*): ([\s\S]*)$/.exec(e.message);
  return m ? wireError({ name: m[1]!, message: m[2]! }) : e;
}

function electronClient(bridge: StudioApi): StudioClient {
  const client: Record<string, unknown> = {
    transport: 'electron',
    assetUrl: (sha: string, variant: AssetVariant) => `studio-asset://${variant}/${checkSha(sha)}`,
    onConnection: (listener: (s: ConnectionState) => void) => {
      listener('open');
      return () => {};
    },
  };
  for (const name of Object.keys(apiCalls) as CallName[]) {
    const fn = bridge[name] as (args: unknown) => Promise<unknown>;
    client[name] = async (args: unknown) => {
      try {
        return await fn(args);
      } catch (e) {
        throw fromBridgeError(e);
      }
    };
  }
  for (const event of Object.keys(apiEvents) as EventName[]) {
    const sub = eventSubscriberName(event);
    client[sub] = bridge[sub];
  }
  return client as unknown as StudioClient;
}

// ---------- server ----------

/** Written against globalThis so this module also type-checks and runs under Node (tests, scripts). */
function pageOrigin(): string {
  const origin = (globalThis as { location?: { origin?: string } }).location?.origin;
  if (!origin || origin === 'null') throw new Error('serverClient needs a baseUrl outside a page served over http.');
  return origin;
}

export interface ServerClientOptions {
  /** Origin of the server; the page's own by default. */
  baseUrl?: string;
  fetch?: typeof fetch;
  WebSocket?: typeof WebSocket;
  /** For clients outside the page (tests, scripts): sent as Bearer and as ?token= on the socket. */
  token?: string;
}

export function serverClient(opts: ServerClientOptions = {}): StudioClient {
  const base = (opts.baseUrl ?? pageOrigin()).replace(/\/+$/, '');
  const doFetch = opts.fetch ?? fetch.bind(globalThis);

  async function call(name: string, args: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await doFetch(`${base}/api/${name}`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
        },
        body: encodeWire({ args }),
        credentials: 'same-origin',
      });
    } catch (e) {
      throw wireError({
        name: 'NetworkError',
        message: `Could not reach the studio server (${e instanceof Error ? e.message : String(e)}).`,
      });
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = decodeWire(text);
    } catch {
      throw wireError({
        name: 'NetworkError',
        message: `The server answered ${res.status} with something that is not JSON.`,
      });
    }
    const envelope = body as { ok?: boolean; result?: unknown; error?: WireError; name?: string; message?: string };
    if (envelope.ok === true) return envelope.result;
    if (envelope.error) throw wireError(envelope.error);
    throw wireError({ name: envelope.name ?? 'InternalError', message: envelope.message ?? `HTTP ${res.status}` });
  }

  // One socket, opened with the first listener and reopened with backoff when it drops.
  const listeners = new Map<EventName, Set<(payload: unknown) => void>>();
  const connectionListeners = new Set<(s: ConnectionState) => void>();
  let socket: WebSocket | null = null;
  let state: ConnectionState = 'closed';
  let attempt = 0;
  let everOpened = false;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;

  const setState = (s: ConnectionState) => {
    state = s;
    for (const l of connectionListeners) l(s);
  };

  /** Jobs seen running here: after a reconnect, their state is asked for (jobList) and delivered. */
  const followed = new Set<string>();
  const deliver = (event: EventName, payload: unknown) => {
    if (event === 'jobProgress') {
      const s = payload as JobStatus;
      if (FINISHED_JOB_STATES.includes(s.state)) followed.delete(s.jobId);
      else followed.add(s.jobId);
    }
    for (const l of listeners.get(event) ?? []) {
      try {
        l(payload);
      } catch (e) {
        console.error(`listener for ${event} threw`, e);
      }
    }
  };

  async function catchUpJobs(): Promise<void> {
    if (followed.size === 0) return;
    const ids = [...followed];
    try {
      const statuses = (await call('jobList', { ids })) as JobStatus[];
      // A job the server no longer knows (it restarted) ended without telling us.
      for (const id of ids) if (!statuses.some((s) => s.jobId === id)) followed.delete(id);
      for (const s of statuses) deliver('jobProgress', s);
    } catch (e) {
      console.error('could not ask for the state of the followed jobs', e);
    }
  }

  const hasListeners = () => [...listeners.values()].some((s) => s.size > 0) || connectionListeners.size > 0;

  /** Whether the server answers but refuses our token (a socket refused that way only says "closed"). */
  async function refusesToken(): Promise<boolean> {
    try {
      const res = await doFetch(`${base}/api/getSettings`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
        },
        body: encodeWire({ args: {} }),
        credentials: 'same-origin',
      });
      return res.status === 401;
    } catch {
      return false; // not there at all
    }
  }

  function retryLater(): void {
    if (!hasListeners() || retryTimer) return;
    // 0.5 s, 1 s, 2 s ... up to 5 s, with jitter so many tabs do not reconnect in step: a restarted
    // server is found within seconds.
    const delay = Math.min(5_000, 500 * 2 ** attempt++) * (0.75 + Math.random() * 0.5);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      connect();
    }, delay);
  }

  function connect(): void {
    if (socket || retryTimer) return;
    if (state !== 'unauthorized') setState('connecting');
    const query = opts.token ? `?token=${encodeURIComponent(opts.token)}` : '';
    const WS = opts.WebSocket ?? WebSocket;
    const ws = new WS(`${base.replace(/^http/, 'ws')}/events${query}`);
    ws.binaryType = 'arraybuffer'; // events that carry bytes (preview frames) arrive as binary frames
    socket = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      attempt = 0;
      setState('open');
      // Events sent while we were away are lost: tell the views to refresh everything, and ask where
      // the jobs we follow got to.
      if (everOpened) {
        deliver('galleryChanged', { reason: 'update', ids: [] });
        void catchUpJobs();
      }
      everOpened = true;
    };
    ws.onmessage = (msg: MessageEvent) => {
      try {
        const data: unknown = msg.data;
        const { event, payload } = (
          typeof data === 'string' ? decodeWire(data) : decodeWireBinary(data as ArrayBuffer)
        ) as { event: EventName; payload: unknown };
        if (event in apiEvents) deliver(event, payload);
      } catch (e) {
        console.error('bad event frame from the studio server', e);
      }
    };
    ws.onclose = () => {
      if (socket === ws) socket = null;
      if (opened || !hasListeners()) {
        setState('closed');
        retryLater();
        return;
      }
      // Refused before it opened: the server may be down, or up with another token. Ask which.
      void refusesToken().then((refused) => {
        if (socket) return; // a newer socket took over meanwhile
        setState(refused ? 'unauthorized' : 'closed');
        retryLater();
      });
    };
  }

  function maybeDisconnect(): void {
    if (hasListeners()) return;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    const ws = socket;
    socket = null;
    ws?.close();
  }

  const client: Record<string, unknown> = {
    transport: 'server',
    assetUrl: (sha: string, variant: AssetVariant) => `${base}/asset/${variant}/${checkSha(sha)}`,
    onConnection: (listener: (s: ConnectionState) => void) => {
      connectionListeners.add(listener);
      listener(state);
      connect();
      return () => {
        connectionListeners.delete(listener);
        maybeDisconnect();
      };
    },
  };
  for (const name of Object.keys(apiCalls) as CallName[]) client[name] = (args: unknown) => call(name, args);
  for (const event of Object.keys(apiEvents) as EventName[]) {
    client[eventSubscriberName(event)] = (listener: (payload: EventPayload<typeof event>) => void) => {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      const l = listener as (p: unknown) => void;
      set.add(l);
      connect();
      return () => {
        set.delete(l);
        maybeDisconnect();
      };
    };
  }
  return client as unknown as StudioClient;
}

// ---------- the app's client ----------

let instance: StudioClient | null = null;

export function getStudio(): StudioClient {
  if (!instance) {
    const bridge = (globalThis as { studio?: StudioApi }).studio; // window.studio, from the Electron preload
    instance = bridge ? electronClient(bridge) : serverClient();
  }
  return instance;
}

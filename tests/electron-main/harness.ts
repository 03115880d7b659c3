// The process the smoke test starts: `node --import tsx tests/electron-main/harness.ts <main.js>`,
// forked with an IPC channel. It resolves `electron` to electron-stand-in.ts for the app's bundle,
// counts the worker threads the app starts, imports the built main module, emits 'ready' once it
// has run (as Electron does after the main script), and then does what the test asks (protocol.ts)
// as the renderer, the user or the OS would, through the stand-in. When the app's quit goes
// through, it sends the state at that moment and the process ends, as Electron's would.
import { readdirSync, readlinkSync } from 'node:fs';
import { register, syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import wt from 'node:worker_threads';
import type { IpcMainInvokeEvent } from '../../src/main/electron/electron-api.js';
import type * as StandIn from './electron-stand-in.js';
import type { Message, OpName, Ops, Outcome, Request, Snapshot, Stranger } from './protocol.js';

const main = process.argv[2];
if (!main || !process.send) throw new Error('usage: fork(harness.ts, [<built main module>]) with an IPC channel');
// Electron's argv: [executable, app, ...]; the app sees no trace of the harness.
process.argv.splice(1, 1);

// ---------- `electron` is the stand-in ----------
const standInUrl = new URL('./electron-stand-in.ts', import.meta.url).href;
const hooks = `
let target;
export function initialize(data) { target = data.standIn; }
export async function resolve(specifier, context, next) {
  return specifier === 'electron' ? { url: target, shortCircuit: true } : next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, import.meta.url, { data: { standIn: standInUrl } });
// The same module instance the app gets for `electron` (one URL, one module).
const s = (await import(standInUrl)) as typeof StandIn;

// ---------- a census of worker threads ----------
const workers: Snapshot['workers'] = [];
const OriginalWorker = wt.Worker;
class CountedWorker extends OriginalWorker {
  constructor(filename: string | URL, options?: wt.WorkerOptions) {
    super(filename, options);
    const file = filename instanceof URL ? fileURLToPath(filename) : filename;
    const record = { entry: options?.eval ? 'eval' : path.basename(file), ended: false };
    workers.push(record);
    this.once('exit', () => (record.ended = true));
  }
}
(wt as { Worker: typeof OriginalWorker }).Worker = CountedWorker;
syncBuiltinESMExports(); // `import { Worker } from 'node:worker_threads'` now sees CountedWorker

function openFiles(): string[] | null {
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return null;
  }
  const paths: string[] = [];
  for (const fd of fds) {
    try {
      paths.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      /* closed meanwhile (the readdir's own fd) */
    }
  }
  return paths;
}

function snapshot(): Snapshot {
  const ses = s.defaultSessionState;
  const mainWindow = s.StandInWindow.all()[0];
  return {
    ready: s.app.isReady(),
    uses: s.uses,
    windows: s.StandInWindow.all().map((w) => w.state()),
    preload: mainWindow?.webContents.world?.state() ?? null,
    privilegedSchemes: s.privilegedSchemes,
    handledSchemes: [...s.schemeHandlers.keys()],
    ipcHandlers: [...s.ipcHandlers.keys()],
    ipcTraffic: s.ipcTraffic,
    session: {
      permissionRequestHandler: ses.permissionRequestHandler !== null,
      permissionCheckHandler: ses.permissionCheckHandler !== null,
      headersListener: ses.webRequest.headersListener !== null,
    },
    openedExternally: s.openedExternally,
    errorBoxes: s.errorBoxes,
    workers,
    openFiles: openFiles(),
  };
}

function send(message: Message): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

s.onBeforeExit((code) => send({ type: 'exit', code, snapshot: snapshot() }));

// ---------- what the test asks ----------

function theWindow() {
  const w = s.StandInWindow.all()[0];
  if (!w || w.isDestroyed()) throw new Error('the app has no window');
  return w;
}

function studio(): Record<string, unknown> {
  const api = theWindow().webContents.world?.exposed.get('studio');
  if (!api || typeof api !== 'object') throw new Error('window.studio is missing: the preload did not expose it');
  return api as Record<string, unknown>;
}

const received: Ops['received']['res'] = [];

/** An error's message, also for errors of the preload's own V8 context (not instances of this Error). */
function messageOf(e: unknown): string {
  const message = e && typeof e === 'object' ? (e as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : String(e);
}

async function outcome(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await run() };
  } catch (e) {
    return { ok: false, message: messageOf(e) };
  }
}

async function strangerEvent(from: Stranger): Promise<IpcMainInvokeEvent> {
  const wc = theWindow().webContents;
  switch (from) {
    case 'subframe':
      return { sender: wc, senderFrame: s.frameOf(wc.getURL(), wc.mainFrame) };
    case 'foreign-page':
      return { sender: wc, senderFrame: s.frameOf('https://example.com/', null) };
    case 'no-frame':
      return { sender: wc, senderFrame: null };
    case 'other-window': {
      // Another window showing our own page: only the sender's identity tells it apart.
      const other = new s.BrowserWindow({ show: false });
      await other.loadURL(wc.getURL());
      const event = { sender: other.webContents, senderFrame: other.webContents.mainFrame };
      other.close();
      return event;
    }
  }
}

const handlers: { [K in OpName]: (req: Ops[K]['req']) => Promise<Ops[K]['res']> } = {
  snapshot: async () => snapshot(),
  call: ({ name, args }) =>
    outcome(async () => {
      const method = studio()[name];
      if (typeof method !== 'function') throw new Error(`window.studio.${name} is not a function`);
      return (await (method as (a: unknown) => Promise<unknown>)(args)) as unknown;
    }),
  invokeAs: ({ from, name, args }) =>
    outcome(async () => s.invokeMain(await strangerEvent(from), 'studio:call', [name, args])),
  subscribe: async ({ events }) => {
    for (const event of events) {
      const subscribe = studio()[`on${event[0]!.toUpperCase()}${event.slice(1)}`];
      if (typeof subscribe !== 'function') throw new Error(`window.studio has no subscriber for ${event}`);
      (subscribe as (l: (p: unknown) => void) => unknown)((payload) => received.push({ event, payload }));
    }
    return null;
  },
  received: async () => received,
  navigate: async ({ kind, url }) => ({ prevented: await theWindow().webContents.navigate(kind, url) }),
  attachWebview: async () => {
    const event = new s.StandInEvent();
    theWindow().webContents.emit('will-attach-webview', event, {}, {});
    return { prevented: event.defaultPrevented };
  },
  openWindow: async ({ url }) => ({ action: theWindow().webContents.openWindow(url).action }),
  permission: async ({ permission }) => {
    const ses = s.session.defaultSession;
    const wc = theWindow().webContents;
    // Without handlers Electron grants everything.
    const requestGranted = await new Promise<boolean>((resolve) => {
      if (!ses.permissionRequestHandler) resolve(true);
      else ses.permissionRequestHandler(wc, permission, resolve);
    });
    const checkGranted = ses.permissionCheckHandler ? ses.permissionCheckHandler(wc, permission) : true;
    return { requestGranted, checkGranted };
  },
  headers: async ({ url, responseHeaders }) => {
    const listener = s.session.defaultSession.webRequest.headersListener;
    if (!listener) return { responseHeaders };
    return new Promise((resolve) => listener({ url, responseHeaders }, (r) => resolve(r)));
  },
  asset: async ({ url, method }) => {
    const handler = s.schemeHandlers.get(new URL(url).protocol.slice(0, -1));
    if (!handler) return { status: -1, type: null, body: new Uint8Array() };
    const response = await handler(new Request(url, { method }));
    return {
      status: response.status,
      type: response.headers.get('content-type'),
      body: new Uint8Array(await response.arrayBuffer()),
    };
  },
  minimize: async () => {
    theWindow().minimize();
    return null;
  },
  secondInstance: async ({ argv }) => {
    s.app.emit('second-instance', new s.StandInEvent(), argv, process.cwd(), {});
    return null;
  },
  closeWindow: async () => {
    theWindow().close();
    return null;
  },
};

process.on('message', (req: Request) => {
  const handler = handlers[req.op] as (r: Request) => Promise<unknown>;
  handler(req).then(
    (value) => send({ type: 'reply', id: req.id, ok: true, value }),
    (e: unknown) => send({ type: 'reply', id: req.id, ok: false, message: messageOf(e) }),
  );
});

// ---------- the app ----------
await import(pathToFileURL(path.resolve(main)).href);
// Electron emits 'ready' after the main script has been evaluated.
await new Promise((r) => setImmediate(r));
s.app.emitReady();
await send({ type: 'started' });

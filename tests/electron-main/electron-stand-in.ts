// A stand-in for the `electron` module, for running the built main process (out/main/index.js) in
// plain Node: exactly the part of Electron's API the app uses (src/main/electron/electron-api.ts,
// which this module implements, so the typecheck keeps the two together), behaving as Electron
// documents it where the app depends on it, and recording every use:
//  - 'ready' comes after the main module has run (harness.ts emits it); what Electron refuses
//    before 'ready' (windows, the default session, protocol.handle) or after it
//    (registerSchemesAsPrivileged) throws here too;
//  - loading a page runs the window's preload as Electron runs a sandboxed one: a CommonJS
//    function in a fresh V8 context whose `require` knows only `electron` (contextBridge,
//    ipcRenderer) and the few built-ins Electron allows; contextBridge refuses to work without
//    context isolation;
//  - IPC copies every argument and reply with the structured clone algorithm, asynchronously;
//    an invoke carries the sending webContents and frame, as Electron's does;
//  - quitting emits before-quit, closes the windows, emits will-quit (which may be prevented:
//    the quit is then abandoned until app.quit() is called again) and quit, then ends the process;
//    closing the last window emits window-all-closed;
//  - requestSingleInstanceLock holds a lock file in the userData folder.
// Test controls (simulating the page, the user, the OS) are the exported functions and the
// members marked "stand-in" below.
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';
import type * as E from '../../src/main/electron/electron-api.js';
import type { ContextBridge, IpcRenderer, IpcRendererEvent } from '../../src/preload/electron.js';
import { type ApiUse, APP_DATA_ENV, type PreloadState, type WindowState } from './protocol.js';

// ---------- the record ----------

let isReady = false;
export const uses: ApiUse[] = [];
export const privilegedSchemes: E.CustomScheme[] = [];
export const schemeHandlers = new Map<string, (request: Request) => Response | Promise<Response>>();
export const ipcHandlers = new Map<string, (event: E.IpcMainInvokeEvent, ...args: unknown[]) => unknown>();
export const ipcTraffic: { channel: string; call: unknown }[] = [];
export const openedExternally: string[] = [];
export const errorBoxes: { title: string; content: string }[] = [];

/** A value as the record keeps it: functions by name only, so every record can cross processes. */
function recordable(value: unknown): unknown {
  if (typeof value === 'function') return '[function]';
  if (Array.isArray(value)) return value.map(recordable);
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, recordable(v)]));
  if (value instanceof EventEmitter) return `[${value.constructor.name}]`;
  return value;
}

function use(api: string, ...args: unknown[]): void {
  uses.push({ api, args: args.map(recordable), afterReady: isReady });
}

function notBeforeReady(what: string): void {
  if (!isReady) throw new Error(`${what} cannot be used before the app is ready`);
}

/** Electron's event object: preventable. */
export class StandInEvent implements E.Event {
  defaultPrevented = false;
  preventDefault(): void {
    this.defaultPrevented = true;
  }
}

// ---------- the app's own metadata, as Electron reads it from the app's package.json ----------

/** The app's folder: the one with the package.json above the main script (Electron's app path). */
function appPath(): string {
  let dir = path.dirname(path.resolve(process.argv[1] ?? '.'));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${process.argv[1]}`);
    dir = up;
  }
  return dir;
}

function appPackage(): { name: string; productName?: string; version: string } {
  return JSON.parse(readFileSync(path.join(appPath(), 'package.json'), 'utf8')) as {
    name: string;
    productName?: string;
    version: string;
  };
}

// ---------- session ----------

class StandInWebRequest implements E.WebRequest {
  /** stand-in: the listener the app installed (Electron keeps one; a second call replaces it). */
  headersListener: Parameters<E.WebRequest['onHeadersReceived']>[0] | null = null;
  onHeadersReceived(listener: Parameters<E.WebRequest['onHeadersReceived']>[0]): void {
    use('session.webRequest.onHeadersReceived', listener);
    this.headersListener = listener;
  }
}

type PermissionRequestHandler = (wc: E.WebContents, permission: string, callback: (granted: boolean) => void) => void;
type PermissionCheckHandler = (wc: E.WebContents | null, permission: string) => boolean;

class StandInSession implements E.Session {
  readonly webRequest = new StandInWebRequest();
  /** stand-in: Electron grants by default when no handler is set. */
  permissionRequestHandler: PermissionRequestHandler | null = null;
  permissionCheckHandler: PermissionCheckHandler | null = null;
  setPermissionRequestHandler(handler: PermissionRequestHandler | null): void {
    use('session.setPermissionRequestHandler', handler);
    this.permissionRequestHandler = handler;
  }
  setPermissionCheckHandler(handler: PermissionCheckHandler | null): void {
    use('session.setPermissionCheckHandler', handler);
    this.permissionCheckHandler = handler;
  }
}

/** stand-in: the default session itself, readable before 'ready' (for the harness's snapshots). */
export const defaultSessionState = new StandInSession();

export const session = {
  get defaultSession(): StandInSession {
    notBeforeReady('session.defaultSession');
    return defaultSessionState;
  },
};

// ---------- frames, webContents, the renderer world of a page ----------

class StandInFrame implements E.WebFrameMain {
  constructor(
    readonly url: string,
    readonly parent: StandInFrame | null,
  ) {}
  get origin(): string {
    const u = new URL(this.url);
    return u.protocol === 'file:' ? 'file://' : u.origin;
  }
}

/** What the preload set up in one page: its ipcRenderer listeners and what it exposed. */
export class RendererWorld {
  readonly required: string[] = [];
  readonly exposed = new Map<string, unknown>();
  readonly listeners = new Map<string, Set<(event: IpcRendererEvent, ...args: unknown[]) => void>>();
  error: string | null = null;

  constructor(readonly file: string) {}

  state(): PreloadState {
    const studio = this.exposed.get('studio');
    return {
      file: this.file,
      required: [...this.required],
      exposed: [...this.exposed.keys()],
      studioMembers: studio && typeof studio === 'object' ? Object.keys(studio).sort() : [],
      error: this.error,
    };
  }
}

const hostRequire = createRequire(import.meta.url);
/** Besides `electron`, what a sandboxed preload may require (Electron's documented list). */
const SANDBOX_BUILTINS = new Set(['events', 'timers', 'url']);

function runPreload(contents: StandInWebContents, prefs: E.WebPreferences): RendererWorld {
  const file = prefs.preload!;
  const world = new RendererWorld(file);
  const ipcRenderer: IpcRenderer = {
    invoke: (channel, ...args) => invokeMain({ sender: contents, senderFrame: contents.mainFrame }, channel, args),
    on(channel, listener) {
      let set = world.listeners.get(channel);
      if (!set) world.listeners.set(channel, (set = new Set()));
      set.add(listener as (event: IpcRendererEvent, ...args: unknown[]) => void);
      return this;
    },
    removeListener(channel, listener) {
      world.listeners.get(channel)?.delete(listener as (event: IpcRendererEvent, ...args: unknown[]) => void);
      return this;
    },
  };
  const contextBridge: ContextBridge = {
    exposeInMainWorld(key, api) {
      if (prefs.contextIsolation === false)
        throw new Error('contextBridge API can only be used when contextIsolation is enabled');
      if (world.exposed.has(key)) throw new Error(`Cannot bind an API on top of an existing property "${key}"`);
      world.exposed.set(key, api);
    },
  };
  const sandboxed = prefs.sandbox !== false;
  const preloadRequire = (id: string): unknown => {
    world.required.push(id);
    if (id === 'electron') return { contextBridge, ipcRenderer };
    if (!sandboxed || SANDBOX_BUILTINS.has(id)) return hostRequire(id);
    throw new Error(`module not found: ${id}`);
  };
  // A sandboxed preload is a CommonJS script in the renderer's own V8 context: no Node globals.
  const context = vm.createContext({ console });
  try {
    // An ES module (an `import` statement) is a SyntaxError here, as in Electron's sandbox.
    const wrapper = vm.runInContext(
      `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`,
      context,
      { filename: file },
    ) as (exports: unknown, require: unknown, module: unknown, filename: string, dirname: string) => void;
    const module = { exports: {} };
    wrapper(module.exports, preloadRequire, module, file, path.dirname(file));
  } catch (e) {
    // Electron reports a failing preload in the page's console; the page loads all the same.
    world.error = String(e);
    process.stderr.write(`[stand-in] Unable to load preload script ${file}: ${world.error}\n`);
  }
  return world;
}

let nextContentsId = 1;

export class StandInWebContents extends EventEmitter implements E.WebContents {
  readonly id = nextContentsId++;
  mainFrame: StandInFrame = new StandInFrame('about:blank', null);
  /** stand-in: the page's renderer world (set when a page with a preload loaded). */
  world: RendererWorld | null = null;
  /** stand-in: what setWindowOpenHandler installed. */
  windowOpenHandler: ((details: { url: string }) => E.WindowOpenHandlerResponse) | null = null;
  #destroyed = false;

  constructor(readonly prefs: E.WebPreferences) {
    super();
  }

  get session(): StandInSession {
    return defaultSessionState;
  }
  getURL(): string {
    return this.mainFrame.url;
  }
  isDestroyed(): boolean {
    return this.#destroyed;
  }
  send(channel: string, ...args: unknown[]): void {
    if (this.#destroyed) throw new Error('Object has been destroyed');
    const copy = structuredClone(args);
    const world = this.world;
    setImmediate(() => {
      for (const listener of world?.listeners.get(channel) ?? []) listener({ sender: null }, ...copy);
    });
  }
  setWindowOpenHandler(handler: (details: { url: string }) => E.WindowOpenHandlerResponse): void {
    use('webContents.setWindowOpenHandler', handler);
    this.windowOpenHandler = handler;
  }

  /** stand-in: loads a page (Electron's loadURL): the document, then the preload, then 'did-finish-load'. */
  async load(url: string): Promise<void> {
    if (url.startsWith('file:') && !existsSync(fileURLToPath(url)))
      throw new Error(`ERR_FILE_NOT_FOUND (-6) loading '${url}'`);
    this.mainFrame = new StandInFrame(url, null);
    this.world = this.prefs.preload ? runPreload(this, this.prefs) : null;
    await new Promise((r) => setImmediate(r));
    this.emit('did-finish-load');
  }

  /** stand-in: the page starts a navigation; it happens unless a listener prevents it. */
  async navigate(kind: 'will-navigate' | 'will-redirect', url: string): Promise<boolean> {
    const event = new StandInEvent();
    this.emit(kind, event, url);
    if (!event.defaultPrevented) await this.load(url);
    return event.defaultPrevented;
  }

  /** stand-in: the page asks for a new window (window.open, a target=_blank link). */
  openWindow(url: string): E.WindowOpenHandlerResponse {
    // Electron allows it when no handler is set.
    return this.windowOpenHandler ? this.windowOpenHandler({ url }) : { action: 'allow' };
  }

  destroy(): void {
    this.#destroyed = true;
    this.world = null;
    this.emit('destroyed');
  }
}

// ---------- windows ----------

const windows: StandInWindow[] = [];
let nextWindowId = 1;

export class StandInWindow extends EventEmitter implements E.BrowserWindow {
  static getAllWindows(): StandInWindow[] {
    return windows.filter((w) => !w.isDestroyed());
  }
  /** stand-in: every window made, closed ones included, oldest first. */
  static all(): StandInWindow[] {
    return [...windows];
  }

  readonly id = nextWindowId++;
  readonly webContents: StandInWebContents;
  shown = false;
  focusCalls = 0;
  restoreCalls = 0;
  #minimized = false;
  #destroyed = false;

  constructor(readonly options: E.BrowserWindowConstructorOptions = {}) {
    notBeforeReady('BrowserWindow');
    super();
    use('new BrowserWindow', options);
    this.webContents = new StandInWebContents({ ...options.webPreferences });
    windows.push(this);
    app.emit('web-contents-created', new StandInEvent(), this.webContents);
  }

  async loadURL(url: string): Promise<void> {
    use('BrowserWindow.loadURL', url);
    await this.webContents.load(url);
    if (!this.shown) this.emit('ready-to-show');
  }
  async loadFile(filePath: string): Promise<void> {
    use('BrowserWindow.loadFile', filePath);
    await this.webContents.load(pathToFileURL(path.resolve(appPath(), filePath)).href);
    if (!this.shown) this.emit('ready-to-show');
  }
  show(): void {
    use('BrowserWindow.show');
    this.shown = true;
  }
  focus(): void {
    this.focusCalls++;
  }
  restore(): void {
    this.restoreCalls++;
    this.#minimized = false;
  }
  /** stand-in: the user minimises the window. */
  minimize(): void {
    this.#minimized = true;
  }
  isMinimized(): boolean {
    return this.#minimized;
  }
  isDestroyed(): boolean {
    return this.#destroyed;
  }
  getTitle(): string {
    return this.options.title ?? '';
  }

  /** Electron's close(): 'close' (preventable), then the window is destroyed and 'closed' follows. */
  close(): void {
    if (this.#destroyed) return;
    const event = new StandInEvent();
    this.emit('close', event);
    if (event.defaultPrevented) return;
    this.#destroyed = true;
    this.webContents.destroy();
    this.emit('closed');
    if (!quitting && StandInWindow.getAllWindows().length === 0) {
      if (app.listenerCount('window-all-closed') > 0) app.emit('window-all-closed', new StandInEvent());
      else app.quit();
    }
  }

  state(): WindowState {
    const o = this.options;
    const wc = this.webContents;
    return {
      id: this.id,
      options: { title: o.title, icon: o.icon, show: o.show, webPreferences: o.webPreferences },
      url: wc.isDestroyed() ? '' : wc.getURL(),
      shown: this.shown,
      destroyed: this.#destroyed,
      minimized: this.#minimized,
      focusCalls: this.focusCalls,
      restoreCalls: this.restoreCalls,
      guards: {
        windowOpenHandler: wc.windowOpenHandler !== null,
        willNavigate: wc.listenerCount('will-navigate'),
        willRedirect: wc.listenerCount('will-redirect'),
        willAttachWebview: wc.listenerCount('will-attach-webview'),
      },
    };
  }
}

export const BrowserWindow = StandInWindow;

// ---------- IPC ----------

export const ipcMain: E.IpcMain = {
  handle(channel, listener) {
    use('ipcMain.handle', channel, listener);
    if (ipcHandlers.has(channel)) throw new Error(`Attempted to register a second handler for '${channel}'`);
    ipcHandlers.set(channel, listener);
  },
  removeHandler(channel) {
    use('ipcMain.removeHandler', channel);
    ipcHandlers.delete(channel);
  },
};

/** An ipcRenderer.invoke arriving in the main process: arguments and reply are structured clones. */
export async function invokeMain(event: E.IpcMainInvokeEvent, channel: string, args: unknown[]): Promise<unknown> {
  const copy = structuredClone(args);
  await new Promise((r) => setImmediate(r));
  ipcTraffic.push({ channel, call: copy[0] });
  const handler = ipcHandlers.get(channel);
  if (!handler)
    throw new Error(`Error invoking remote method '${channel}': Error: No handler registered for '${channel}'`);
  let reply: unknown;
  try {
    reply = await handler(event, ...copy);
  } catch (e) {
    throw new Error(`Error invoking remote method '${channel}': ${String(e)}`);
  }
  return structuredClone(reply);
}

/** An invoke from a frame of a webContents (for senders other than a page's main frame). */
export function frameOf(url: string, parent: E.WebFrameMain | null): E.WebFrameMain {
  return new StandInFrame(url, parent as StandInFrame | null);
}

// ---------- protocol, menu, dialog, shell ----------

export const protocol: E.Protocol = {
  registerSchemesAsPrivileged(customSchemes) {
    use('protocol.registerSchemesAsPrivileged', customSchemes);
    if (isReady) throw new Error('protocol.registerSchemesAsPrivileged should be called before app is ready');
    privilegedSchemes.push(...structuredClone(customSchemes));
  },
  handle(scheme, handler) {
    use('protocol.handle', scheme, handler);
    notBeforeReady('protocol.handle');
    if (schemeHandlers.has(scheme)) throw new Error(`The scheme "${scheme}" is already handled`);
    schemeHandlers.set(scheme, handler);
  },
};

export const Menu: E.MenuClass = {
  buildFromTemplate(template) {
    use('Menu.buildFromTemplate', template);
    return { items: template };
  },
  setApplicationMenu(menu) {
    use('Menu.setApplicationMenu', menu);
  },
};

export const dialog: E.ElectronMain['dialog'] = {
  showErrorBox(title, content) {
    use('dialog.showErrorBox', title, content);
    errorBoxes.push({ title, content });
    process.stderr.write(`[stand-in] error box: ${title}\n${content}\n`);
  },
};

export const shell: E.ElectronMain['shell'] = {
  async openExternal(url) {
    use('shell.openExternal', url);
    openedExternally.push(url);
  },
};

// ---------- app ----------

let quitting = false;
let ended = false;
let singletonLock: string | null = null;
let beforeExit: (code: number) => Promise<void> = async () => {};
/** stand-in: `observer` is called with the exit code as the process ends; it exits when that settles. */
export function onBeforeExit(observer: (code: number) => Promise<void>): void {
  beforeExit = observer;
}

function endProcess(code: number): void {
  if (ended) return;
  ended = true;
  if (singletonLock) rmSync(singletonLock, { force: true });
  singletonLock = null;
  void beforeExit(code).finally(() => process.exit(code));
}

class StandInApp extends EventEmitter implements E.App {
  readonly isPackaged = false;
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;

  constructor() {
    super();
    this.#ready = new Promise((r) => (this.#resolveReady = r));
  }

  getPath(name: 'userData' | 'appData' | 'home' | 'temp'): string {
    if (name === 'home') return homedir();
    if (name === 'temp') return tmpdir();
    const appData = process.env[APP_DATA_ENV];
    if (!appData) throw new Error(`${APP_DATA_ENV} is not set: the stand-in will not use a real user folder`);
    if (name === 'appData') return appData;
    const pkg = appPackage();
    return path.join(appData, pkg.productName ?? pkg.name);
  }
  getVersion(): string {
    return appPackage().version;
  }
  getName(): string {
    const pkg = appPackage();
    return pkg.productName ?? pkg.name;
  }
  whenReady(): Promise<void> {
    return this.#ready;
  }
  isReady(): boolean {
    return isReady;
  }

  /** stand-in: Electron emits 'ready' once the main script has run (harness.ts calls this then). */
  emitReady(): void {
    if (isReady) return;
    isReady = true;
    this.emit('ready', new StandInEvent(), {});
    this.#resolveReady();
  }

  quit(): void {
    use('app.quit');
    // Electron quits asynchronously, after the current task.
    setImmediate(() => this.#quit());
  }

  #quit(): void {
    if (quitting || ended) return;
    quitting = true;
    try {
      const before = new StandInEvent();
      this.emit('before-quit', before);
      if (before.defaultPrevented) return;
      for (const w of StandInWindow.getAllWindows()) w.close();
      if (StandInWindow.getAllWindows().length > 0) return; // a window refused to close
      const willQuit = new StandInEvent();
      this.emit('will-quit', willQuit);
      if (willQuit.defaultPrevented) return;
      this.emit('quit', new StandInEvent(), 0);
      endProcess(0);
    } finally {
      quitting = false;
    }
  }

  exit(exitCode = 0): void {
    use('app.exit', exitCode);
    for (const w of StandInWindow.getAllWindows()) w.webContents.destroy();
    endProcess(exitCode);
  }

  requestSingleInstanceLock(): boolean {
    use('app.requestSingleInstanceLock');
    if (singletonLock) return true;
    const file = path.join(this.getPath('userData'), 'SingletonLock');
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        writeFileSync(file, String(process.pid), { flag: 'wx' });
        singletonLock = file;
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          mkdirSync(path.dirname(file), { recursive: true });
          continue;
        }
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = Number(readFileSync(file, 'utf8'));
      if (holder > 0 && processAlive(holder)) return false;
      rmSync(file, { force: true }); // left by a process that is gone
    }
    return false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export const app = new StandInApp();

// The module's shape is Electron's main-process API as the app declares it.
const _shape: E.ElectronMain = { app, BrowserWindow, dialog, ipcMain, Menu, protocol, session, shell };

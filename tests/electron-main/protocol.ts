// The messages between the smoke test (tests/unit/electron/main-smoke.test.ts) and the built app's
// process, which runs out/main/index.js in plain Node under harness.ts with `electron` resolved to
// electron-stand-in.ts. The test asks; the harness acts through the stand-in (as Electron or the
// renderer would) and answers with what happened. Everything here crosses a process boundary.
import type { CustomScheme, WebPreferences } from '../../src/main/electron/electron-api.js';

/** Where the stand-in's app.getPath('appData') points (required: it never touches the real one). */
export const APP_DATA_ENV = 'FSTUDIO_STAND_IN_APP_DATA';

/** One recorded use of the electron API by the app. */
export interface ApiUse {
  api: string;
  /** The arguments, with functions as '[function]'. */
  args: unknown[];
  /** Whether the app had emitted 'ready' when it was used. */
  afterReady: boolean;
}

export interface WindowState {
  id: number;
  options: { title?: string; icon?: string; show?: boolean; webPreferences?: WebPreferences };
  url: string;
  shown: boolean;
  destroyed: boolean;
  minimized: boolean;
  focusCalls: number;
  restoreCalls: number;
  /** What the app installed on this window's webContents. */
  guards: { windowOpenHandler: boolean; willNavigate: number; willRedirect: number; willAttachWebview: number };
}

export interface PreloadState {
  file: string;
  /** Every module the preload asked `require` for, in order. */
  required: string[];
  /** The keys exposed on the renderer's window by contextBridge. */
  exposed: string[];
  /** The members of window.studio. */
  studioMembers: string[];
  /** What the preload threw (Electron logs it in the page's console and loads the page without it). */
  error: string | null;
}

export interface Snapshot {
  ready: boolean;
  uses: ApiUse[];
  windows: WindowState[];
  preload: PreloadState | null;
  privilegedSchemes: CustomScheme[];
  handledSchemes: string[];
  ipcHandlers: string[];
  /** Every ipcRenderer.invoke that reached the main process: channel and call name. */
  ipcTraffic: { channel: string; call: unknown }[];
  session: { permissionRequestHandler: boolean; permissionCheckHandler: boolean; headersListener: boolean };
  openedExternally: string[];
  errorBoxes: { title: string; content: string }[];
  /** Worker threads the app started: entry (a file name, or 'eval') and whether the thread has ended. */
  workers: { entry: string; ended: boolean }[];
  /** Paths this process has open (Linux /proc/self/fd); null where that cannot be read. */
  openFiles: string[] | null;
}

export type Outcome = { ok: true; value: unknown } | { ok: false; message: string };

/** Who sends an invoke that is not our window's main frame showing our page. */
export type Stranger = 'subframe' | 'foreign-page' | 'other-window' | 'no-frame';

/** Requests, and what each answers. */
export interface Ops {
  snapshot: { req: object; res: Snapshot };
  /** window.studio[name](args) in the renderer: what the page would get. */
  call: { req: { name: string; args: unknown }; res: Outcome };
  /** The raw invoke of a call from someone else: the main process's reply. */
  invokeAs: { req: { from: Stranger; name: string; args: unknown }; res: Outcome };
  /** Subscribes window.studio.onX for these events; what arrives is in `received`. */
  subscribe: { req: { events: string[] }; res: null };
  received: { req: object; res: { event: string; payload: unknown }[] };
  /** A navigation the page starts: whether the app prevented it. */
  navigate: { req: { kind: 'will-navigate' | 'will-redirect'; url: string }; res: { prevented: boolean } };
  attachWebview: { req: object; res: { prevented: boolean } };
  /** window.open / target=_blank: the app's answer. */
  openWindow: { req: { url: string }; res: { action: string } };
  permission: { req: { permission: string }; res: { requestGranted: boolean; checkGranted: boolean } };
  /** A response arriving for the page: the headers the app lets through. */
  headers: {
    req: { url: string; responseHeaders: Record<string, string[]> };
    res: { responseHeaders?: Record<string, string[] | string> };
  };
  /** A request of the page for a studio-asset: URL. */
  asset: { req: { url: string; method: string }; res: { status: number; type: string | null; body: Uint8Array } };
  minimize: { req: object; res: null };
  /** What Electron does in the first instance when a second one is started. */
  secondInstance: { req: { argv: string[] }; res: null };
  /** The user closes the window (the process then quits on its own; see ExitReport). */
  closeWindow: { req: object; res: null };
}

export type OpName = keyof Ops;
export type Request = { [K in OpName]: { id: number; op: K } & Ops[K]['req'] }[OpName];

export type Message =
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; message: string }
  /** Sent once the main module has been evaluated and 'ready' emitted. */
  | { type: 'started' }
  /** Sent as the process ends (app.quit went through, or app.exit): the state at that moment. */
  | { type: 'exit'; code: number; snapshot: Snapshot };

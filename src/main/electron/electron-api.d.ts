// The part of Electron's API that src/main/electron and src/preload use, declared here because
// Electron is an optional dependency that is absent where its binary cannot be downloaded (CI,
// this repository's build machine), and `tsc` must pass without it. An ambient module
// declaration wins over node_modules/electron, so these are written to match Electron 39's
// own typings member for member; add a member here (from electron.d.ts) before using it.
declare module 'electron' {
  import type { EventEmitter } from 'node:events';

  interface Event {
    preventDefault(): void;
  }

  interface WebFrameMain {
    readonly url: string;
    readonly origin: string;
    readonly parent: WebFrameMain | null;
  }

  interface IpcMainInvokeEvent {
    readonly sender: WebContents;
    readonly senderFrame: WebFrameMain | null;
  }

  interface IpcMain {
    handle(channel: string, listener: (event: IpcMainInvokeEvent, ...args: unknown[]) => unknown): void;
    removeHandler(channel: string): void;
  }

  interface IpcRendererEvent {
    readonly sender: IpcRenderer;
  }

  interface IpcRenderer {
    invoke(channel: string, ...args: unknown[]): Promise<unknown>;
    on(channel: string, listener: (event: IpcRendererEvent, ...args: never[]) => void): this;
    removeListener(channel: string, listener: (...args: never[]) => void): this;
  }

  interface ContextBridge {
    exposeInMainWorld(apiKey: string, api: unknown): void;
  }

  type HandlerDetails = { url: string };
  type WindowOpenHandlerResponse = { action: 'deny' } | { action: 'allow' };

  interface OnHeadersReceivedListenerDetails {
    url: string;
    responseHeaders?: Record<string, string[]>;
  }

  interface WebRequest {
    onHeadersReceived(
      listener: (
        details: OnHeadersReceivedListenerDetails,
        callback: (response: { responseHeaders?: Record<string, string[] | string> }) => void,
      ) => void,
    ): void;
  }

  interface Session {
    readonly webRequest: WebRequest;
    setPermissionRequestHandler(
      handler: ((webContents: WebContents, permission: string, callback: (granted: boolean) => void) => void) | null,
    ): void;
    setPermissionCheckHandler(handler: ((webContents: WebContents | null, permission: string) => boolean) | null): void;
  }

  interface WebContents extends EventEmitter {
    readonly id: number;
    readonly session: Session;
    readonly mainFrame: WebFrameMain;
    getURL(): string;
    isDestroyed(): boolean;
    send(channel: string, ...args: unknown[]): void;
    setWindowOpenHandler(handler: (details: HandlerDetails) => WindowOpenHandlerResponse): void;
    on(event: 'will-navigate' | 'will-redirect', listener: (event: Event, url: string) => void): this;
    on(event: 'will-attach-webview', listener: (event: Event) => void): this;
    on(event: string, listener: (...args: never[]) => void): this;
  }

  interface WebPreferences {
    preload?: string;
    contextIsolation?: boolean;
    sandbox?: boolean;
    nodeIntegration?: boolean;
    nodeIntegrationInSubFrames?: boolean;
    webSecurity?: boolean;
    allowRunningInsecureContent?: boolean;
    webviewTag?: boolean;
    spellcheck?: boolean;
  }

  interface BrowserWindowConstructorOptions {
    width?: number;
    height?: number;
    minWidth?: number;
    minHeight?: number;
    show?: boolean;
    title?: string;
    backgroundColor?: string;
    icon?: string;
    webPreferences?: WebPreferences;
  }

  class BrowserWindow extends EventEmitter {
    constructor(options?: BrowserWindowConstructorOptions);
    static getAllWindows(): BrowserWindow[];
    readonly webContents: WebContents;
    loadURL(url: string): Promise<void>;
    loadFile(filePath: string): Promise<void>;
    show(): void;
    focus(): void;
    restore(): void;
    isMinimized(): boolean;
    isDestroyed(): boolean;
    getTitle(): string;
  }

  interface App extends EventEmitter {
    readonly isPackaged: boolean;
    getPath(name: 'userData' | 'appData' | 'home' | 'temp'): string;
    getVersion(): string;
    getName(): string;
    whenReady(): Promise<void>;
    quit(): void;
    exit(exitCode?: number): void;
    requestSingleInstanceLock(): boolean;
  }

  interface CustomScheme {
    scheme: string;
    privileges?: {
      standard?: boolean;
      secure?: boolean;
      bypassCSP?: boolean;
      allowServiceWorkers?: boolean;
      supportFetchAPI?: boolean;
      corsEnabled?: boolean;
      stream?: boolean;
      codeCache?: boolean;
    };
  }

  interface Protocol {
    registerSchemesAsPrivileged(customSchemes: CustomScheme[]): void;
    handle(scheme: string, handler: (request: Request) => Response | Promise<Response>): void;
  }

  interface Dialog {
    showErrorBox(title: string, content: string): void;
  }

  interface Shell {
    openExternal(url: string): Promise<void>;
  }

  interface MenuItemConstructorOptions {
    label?: string;
    role?: string;
    type?: 'normal' | 'separator' | 'submenu' | 'checkbox' | 'radio';
    accelerator?: string;
    click?: () => void;
    submenu?: MenuItemConstructorOptions[];
  }

  class Menu {
    static buildFromTemplate(template: MenuItemConstructorOptions[]): Menu;
    static setApplicationMenu(menu: Menu | null): void;
  }

  const app: App;
  const ipcMain: IpcMain;
  const ipcRenderer: IpcRenderer;
  const contextBridge: ContextBridge;
  const protocol: Protocol;
  const shell: Shell;
  const dialog: Dialog;
  const session: { readonly defaultSession: Session };

  export {
    app,
    BrowserWindow,
    contextBridge,
    dialog,
    ipcMain,
    ipcRenderer,
    Menu,
    protocol,
    session,
    shell,
    type BrowserWindowConstructorOptions,
    type Event,
    type IpcMain,
    type IpcMainInvokeEvent,
    type IpcRendererEvent,
    type MenuItemConstructorOptions,
    type Session,
    type WebContents,
    type WebFrameMain,
  };
}

// The part of Electron's main-process API this shell uses, typed here because Electron is an
// optional dependency: where its binary cannot be downloaded (this build machine, offline CI)
// the package is absent and `tsc` must still pass. The members match Electron 39's own
// typings; add one here (copied from electron.d.ts) before using it. See electron.ts.
import type { EventEmitter } from 'node:events';

export interface Event {
  preventDefault(): void;
}

export interface WebFrameMain {
  readonly url: string;
  readonly origin: string;
  readonly parent: WebFrameMain | null;
}

export interface IpcMainInvokeEvent {
  readonly sender: WebContents;
  readonly senderFrame: WebFrameMain | null;
}

export interface IpcMain {
  handle(channel: string, listener: (event: IpcMainInvokeEvent, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}

export type WindowOpenHandlerResponse = { action: 'deny' } | { action: 'allow' };

export interface OnHeadersReceivedListenerDetails {
  url: string;
  responseHeaders?: Record<string, string[]>;
}

export interface WebRequest {
  onHeadersReceived(
    listener: (
      details: OnHeadersReceivedListenerDetails,
      callback: (response: { responseHeaders?: Record<string, string[] | string> }) => void,
    ) => void,
  ): void;
}

export interface Session {
  readonly webRequest: WebRequest;
  setPermissionRequestHandler(
    handler: ((webContents: WebContents, permission: string, callback: (granted: boolean) => void) => void) | null,
  ): void;
  setPermissionCheckHandler(handler: ((webContents: WebContents | null, permission: string) => boolean) | null): void;
}

export interface WebContents extends EventEmitter {
  readonly id: number;
  readonly session: Session;
  readonly mainFrame: WebFrameMain;
  getURL(): string;
  isDestroyed(): boolean;
  send(channel: string, ...args: unknown[]): void;
  setWindowOpenHandler(handler: (details: { url: string }) => WindowOpenHandlerResponse): void;
  on(event: 'will-navigate' | 'will-redirect', listener: (event: Event, url: string) => void): this;
  on(event: 'will-attach-webview', listener: (event: Event) => void): this;
}

export interface WebPreferences {
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

export interface BrowserWindowConstructorOptions {
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

export interface BrowserWindow extends EventEmitter {
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

export interface BrowserWindowClass {
  new (options?: BrowserWindowConstructorOptions): BrowserWindow;
  getAllWindows(): BrowserWindow[];
}

export interface App extends EventEmitter {
  readonly isPackaged: boolean;
  getPath(name: 'userData' | 'appData' | 'home' | 'temp'): string;
  getVersion(): string;
  getName(): string;
  whenReady(): Promise<void>;
  quit(): void;
  exit(exitCode?: number): void;
  requestSingleInstanceLock(): boolean;
}

export interface CustomScheme {
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

export interface Protocol {
  registerSchemesAsPrivileged(customSchemes: CustomScheme[]): void;
  handle(scheme: string, handler: (request: Request) => Response | Promise<Response>): void;
}

export interface MenuItemConstructorOptions {
  label?: string;
  role?: 'appMenu' | 'fileMenu' | 'editMenu' | 'viewMenu' | 'windowMenu' | 'help' | 'about' | 'quit';
  type?: 'normal' | 'separator' | 'submenu' | 'checkbox' | 'radio';
  accelerator?: string;
  click?: () => void;
  submenu?: MenuItemConstructorOptions[];
}

export interface Menu {
  readonly items: unknown[];
}

export interface MenuClass {
  buildFromTemplate(template: MenuItemConstructorOptions[]): Menu;
  setApplicationMenu(menu: Menu | null): void;
}

export interface ElectronMain {
  app: App;
  BrowserWindow: BrowserWindowClass;
  dialog: { showErrorBox(title: string, content: string): void };
  ipcMain: IpcMain;
  Menu: MenuClass;
  protocol: Protocol;
  session: { readonly defaultSession: Session };
  shell: { openExternal(url: string): Promise<void> };
}

// The Electron shell: one window over the studio services, with Electron's secure defaults
// (context isolation, sandbox, no Node in the renderer, strict CSP, no permissions, no
// navigation or new windows), images through the studio-asset: scheme, and the StudioApi on
// IPC (see ipc.ts). The only place besides the preload that imports Electron.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  app,
  BrowserWindow,
  dialog,
  type IpcMainInvokeEvent,
  ipcMain,
  Menu,
  type MenuItemConstructorOptions,
  protocol,
  session,
  shell,
  type WebContents,
} from './electron.js';
import { openStudio } from '../studio/index.js';
import type { Studio } from '../studio/types.js';
import { assetResponse } from './asset-protocol.js';
import type { BrowserWindow as Window } from './electron-api.js';
import { bindStudioIpc, EVENT_CHANNEL } from './ipc.js';
import { ASSET_SCHEME, contentSecurityPolicy, externalLinkAllowed, isOurPage } from './security.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Set by `electron-vite dev`; absent in a built app, which loads out/renderer/index.html. */
const devUrl = !app.isPackaged ? process.env.ELECTRON_RENDERER_URL : undefined;
const appUrl = devUrl ?? pathToFileURL(path.join(here, '../renderer/index.html')).href;
/**
 * The window's icon on Linux and Windows: resources/ sits two levels above the bundle, in the
 * project and in the packaged app (electron-builder.yml packs it). macOS takes the bundle's icon.
 */
const windowIcon = process.platform === 'darwin' ? undefined : path.join(here, '../../resources/icon.png');

let win: Window | null = null;

// Must happen before `ready`: a standard, secure scheme behaves like https for the renderer
// (relative URLs, fetch, CSP `img-src studio-asset:`).
protocol.registerSchemesAsPrivileged([
  { scheme: ASSET_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true, stream: true } },
]);

function hardenContents(contents: WebContents): void {
  contents.on('will-navigate', (event, url) => {
    if (!isOurPage(url, appUrl)) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!isOurPage(url, appUrl)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    // Web links go to the user's browser, never a new Electron window; everything else is dropped.
    if (externalLinkAllowed(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
}

function createWindow(): Window {
  const w = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 720,
    minHeight: 480,
    show: false,
    title: 'Foundation Studio',
    backgroundColor: '#16171a',
    ...(windowIcon ? { icon: windowIcon } : {}),
    webPreferences: {
      preload: path.join(here, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
    },
  });
  w.once('ready-to-show', () => w.show());
  w.on('closed', () => {
    if (win === w) win = null;
  });
  if (devUrl) void w.loadURL(devUrl);
  else void w.loadFile(path.join(here, '../renderer/index.html'));
  return w;
}

function trustedSender(event: IpcMainInvokeEvent): boolean {
  const frame = event.senderFrame;
  return (
    win !== null &&
    !win.isDestroyed() &&
    event.sender === win.webContents &&
    frame !== null &&
    frame.parent === null &&
    isOurPage(frame.url, appUrl)
  );
}

function setMenu(): void {
  const appMenu: MenuItemConstructorOptions[] = process.platform === 'darwin' ? [{ role: 'appMenu' }] : [];
  const template: MenuItemConstructorOptions[] = [
    ...appMenu,
    { role: 'fileMenu' },
    { role: 'editMenu' },
    { role: 'viewMenu' },
    { role: 'windowMenu' },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

async function start(): Promise<void> {
  app.on('web-contents-created', (_event: unknown, contents: WebContents) => hardenContents(contents));
  app.on('second-instance', () => {
    if (!win) return;
    if (win.isMinimized()) win.restore();
    win.focus();
  });

  await app.whenReady();
  const dataDir = process.env.FSTUDIO_DATA_DIR || app.getPath('userData');
  let studio: Studio;
  try {
    studio = await openStudio({
      dataDir,
      host: { electron: process.versions.electron ?? null, chrome: process.versions.chrome ?? null },
    });
  } catch (e) {
    // A database from a newer version, a full disk, a read-only folder: say so and stop.
    dialog.showErrorBox('Foundation Studio could not open its data folder', `${dataDir}\n\n${(e as Error).message}`);
    app.exit(1);
    return;
  }

  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  const csp = contentSecurityPolicy(Boolean(devUrl));
  ses.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [csp] } });
  });
  protocol.handle(ASSET_SCHEME, (request) => assetResponse(studio, request.url, request.method));

  setMenu();
  win = createWindow();
  const unbind = bindStudioIpc(ipcMain, studio, {
    isTrustedSender: trustedSender,
    send: (name, payload) => {
      if (win && !win.isDestroyed() && !win.webContents.isDestroyed())
        win.webContents.send(EVENT_CHANNEL, name, payload);
    },
    log: (m) => console.error(`[ipc] ${m}`),
  });

  app.on('window-all-closed', () => app.quit());
  app.on('activate', () => {
    if (!win) win = createWindow();
  });
  let closing = false;
  app.on('will-quit', (event: { preventDefault(): void }) => {
    if (closing) return;
    closing = true;
    // Let the studio finish its writes (WAL checkpoint, pending imports) before the process ends.
    event.preventDefault();
    unbind();
    studio
      .close()
      .catch((e: unknown) => console.error('closing the studio failed', e))
      .finally(() => app.quit());
  });
}

if (!app.requestSingleInstanceLock()) {
  // Another window of the app already owns the data folder; it gets focus from 'second-instance'.
  app.quit();
} else {
  start().catch((e: unknown) => {
    console.error(e);
    dialog.showErrorBox('Foundation Studio failed to start', e instanceof Error ? e.message : String(e));
    app.exit(1);
  });
}

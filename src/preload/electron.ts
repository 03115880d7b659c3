// Electron's renderer-side modules for the preload, typed here because the electron package is
// optional (see src/main/electron/electron.ts for the same arrangement in the main process).
// eslint-disable-next-line @typescript-eslint/ban-ts-comment -- "cannot find module" only where Electron is absent
// @ts-ignore
import * as electronModule from 'electron';

export interface IpcRendererEvent {
  readonly sender: unknown;
}

export interface IpcRenderer {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  // The preload listens on one channel whose messages are (event name, payload).
  on(channel: string, listener: (event: IpcRendererEvent, name: string, payload: unknown) => void): this;
  removeListener(channel: string, listener: (event: IpcRendererEvent, name: string, payload: unknown) => void): this;
}

export interface ContextBridge {
  exposeInMainWorld(apiKey: string, api: unknown): void;
}

const electron = electronModule as unknown as { contextBridge: ContextBridge; ipcRenderer: IpcRenderer };

export const { contextBridge, ipcRenderer } = electron;

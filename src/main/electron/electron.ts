// Electron's main-process modules, typed by electron-api.ts. The package is optional (absent
// where its binary cannot be downloaded), so its own typings cannot be relied on: the import
// below type-checks either way, and the cast gives the same types with or without it.
// eslint-disable-next-line @typescript-eslint/ban-ts-comment -- "cannot find module" only where Electron is absent
// @ts-ignore
import * as electronModule from 'electron';
import type { ElectronMain } from './electron-api.js';

const electron = electronModule as unknown as ElectronMain;

export const { app, BrowserWindow, dialog, ipcMain, Menu, protocol, session, shell } = electron;
export type * from './electron-api.js';

// What the preload puts on the renderer's window (see index.ts). Absent when the renderer is
// served by `fstudio serve`; use getStudio() from src/renderer/src/lib/studio-client.ts.
import type { StudioApi } from '../shared/api.js';

declare global {
  interface Window {
    studio?: StudioApi;
  }
}

export {};

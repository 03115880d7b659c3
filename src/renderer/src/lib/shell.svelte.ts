// App-wide state: which page is shown, the current settings, and the shortcuts sheet.
// One exported $state object mutated in place (the Podman Desktop store pattern).
import type { Settings } from '../../../shared/api.js';

export type PageId = 'generate' | 'prompt' | 'classify' | 'gallery' | 'history' | 'settings' | 'system' | 'models';

export interface PageEntry {
  id: PageId;
  label: string;
}

/** Navigation order; Ctrl/Cmd+1..n follow it. Pages for later features join when they work. */
export const pageList: readonly PageEntry[] = [
  { id: 'generate', label: 'Generate' },
  { id: 'prompt', label: 'Prompt Lab' },
  { id: 'classify', label: 'Classify' },
  { id: 'gallery', label: 'Gallery' },
  { id: 'history', label: 'History' },
  { id: 'settings', label: 'Settings' },
  { id: 'system', label: 'System' },
  { id: 'models', label: 'Models' },
];

export const shell = $state<{
  page: PageId;
  settings: Settings | null;
  shortcutsOpen: boolean;
  /** An image the Gallery is to select and open in its detail panel when it shows (Open in Gallery). */
  reveal: number | null;
  /** A run the Prompt Lab or Classify page is to open when it shows (History's Open). */
  openRun: { kind: 'prompt' | 'classify'; runId: number } | null;
}>({
  page: 'gallery',
  settings: null,
  shortcutsOpen: false,
  reveal: null,
  openRun: null,
});

export const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform);
export const modKey = isMac ? '⌘' : 'Ctrl';

/** Shown by the shortcuts sheet; the handlers live beside the views they act on. */
export const shortcutList: readonly { keys: string; does: string }[] = [
  { keys: `${modKey}+1 … 8`, does: 'Go to Generate, Prompt Lab, Classify, Gallery, History, Settings, System, Models' },
  { keys: `${modKey}+Enter`, does: 'Generate (queue a run with the form as it is)' },
  { keys: 'Alt+↑ / Alt+↓', does: 'Move the focused run up or down the queue' },
  { keys: `${modKey}+Enter in Prompt Lab`, does: 'Try, run or explore (what the open tab does)' },
  { keys: 'Esc in Prompt Lab', does: 'Cancel the running prompt run or exploration' },
  { keys: 'Alt+1 … 4 in Prompt Lab', does: 'Try, Run over a file, Explorer, History' },
  { keys: `${modKey}+Enter on Classify`, does: 'Classify the images with the labels as they are' },
  { keys: 'Esc on Classify', does: 'Cancel the classify run under way' },
  { keys: '← / → on the threshold', does: 'Move the threshold (Shift: in bigger steps)' },
  { keys: '← / → on the trajectory', does: 'Step through a run’s snapshots' },
  { keys: '/', does: 'Search the gallery' },
  { keys: 'Arrow keys, Home, End, Page Up/Down', does: 'Move in the gallery grid' },
  { keys: 'Enter', does: 'Open the detail panel' },
  { keys: '← / →, + / −, 0, 1 in the viewer', does: 'Previous / next image, zoom, fit, actual size' },
  { keys: 'Esc', does: 'Close the detail panel or this sheet' },
  { keys: 'F', does: 'Toggle favourite' },
  { keys: isMac ? 'Delete (⌫)' : 'Delete', does: 'Delete (with undo)' },
  { keys: `${modKey}+Z`, does: 'Undo the last delete' },
  { keys: '?', does: 'Show these shortcuts' },
];

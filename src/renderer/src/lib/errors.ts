// Turns a thrown API error into a sentence that says what happened and what to do next.
// Errors cross the transports as {name, message}; `name` is a stable code (see api.ts).
import { showToast } from './toasts.svelte.js';

/** What the user can do about each error code, when the message alone does not say. */
const nextStep: Record<string, string> = {
  InvalidArgument: 'This is a bug in the app; please report it with the steps that led here.',
  UnknownCall: 'The app and the server are different versions; restart the studio.',
  InternalError: 'Try again; if it keeps failing, copy the report from the System page and report it.',
  NotFound: 'It may have been deleted in another window; the view has been refreshed.',
  FileMissing: 'The file is gone from the data folder; delete this entry and import the image again.',
  Unauthorized: 'Open the link the studio server printed when it started (it carries the access token).',
  Forbidden: 'Open the studio from the link the studio server printed when it started.',
  NetworkError: 'Check that the studio server is still running, then try again.',
};

export function describeError(error: unknown, doing: string): string {
  const e = error instanceof Error ? error : new Error(String(error));
  const message = e.message.trim().replace(/\.?$/, '.');
  const hint = nextStep[e.name];
  // Messages from the services usually end with their own advice; add ours only when it is new.
  return hint && !message.includes(hint) ? `${doing} failed: ${message} ${hint}` : `${doing} failed: ${message}`;
}

/** An action's failure: a newer failure of the same action replaces it. */
export function toastError(error: unknown, doing: string): void {
  showToast('error', describeError(error, doing), { key: `failed|${doing}` });
}

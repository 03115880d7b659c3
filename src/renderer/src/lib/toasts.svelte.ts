// Transient messages for results and errors. One shared list, mutated in place, rendered
// by components/Toasts.svelte. Errors stay longer because they carry what to do next. One toast per
// action: a toast given a `key` replaces the one showing with the same key (the delete's "Undo" gives
// way to "Restored", a second save of a note to the first), instead of stacking beside it.

export type ToastKind = 'info' | 'success' | 'error';

export interface ToastAction {
  label: string;
  run: () => void;
}

export interface Toast {
  id: number;
  kind: ToastKind;
  message: string;
  /** Optional second line, e.g. the list of files that failed to import. */
  details?: string[];
  action?: ToastAction;
  /** What the toast is about ("note", "delete"): a newer toast with the same key takes its place. */
  key?: string;
}

export const toasts = $state<{ list: Toast[] }>({ list: [] });

let nextId = 1;
// Timers are bookkeeping, never rendered.
// eslint-disable-next-line svelte/prefer-svelte-reactivity
const timers = new Map<number, ReturnType<typeof setTimeout>>();

// Long enough to read two lines and reach the Undo button; errors wait for the user.
const lifetimeMs: Record<ToastKind, number | null> = { info: 6000, success: 6000, error: null };

export function showToast(
  kind: ToastKind,
  message: string,
  extra: Pick<Toast, 'details' | 'action' | 'key'> = {},
): number {
  const id = nextId++;
  // Without a key, the same words again replace themselves (a result said twice is said once).
  const key = extra.key ?? `${kind}|${message}`;
  const toast: Toast = { id, kind, message, ...extra, key };
  const same = toasts.list.findIndex((t) => t.key === key);
  if (same >= 0) {
    // In the old one's place, so the stack does not jump.
    const old = toasts.list[same]!;
    clearTimeout(timers.get(old.id));
    timers.delete(old.id);
    toasts.list[same] = toast;
  } else toasts.list.push(toast);
  // Keep the stack short: the oldest non-error toasts go first.
  while (toasts.list.length > 5) dismissToast(toasts.list.find((t) => t.kind !== 'error')?.id ?? toasts.list[0]!.id);
  const ms = lifetimeMs[kind];
  if (ms !== null)
    timers.set(
      id,
      setTimeout(() => dismissToast(id), extra.action ? ms * 2 : ms),
    );
  return id;
}

export function dismissToast(id: number): void {
  clearTimeout(timers.get(id));
  timers.delete(id);
  const i = toasts.list.findIndex((t) => t.id === id);
  if (i >= 0) toasts.list.splice(i, 1);
}

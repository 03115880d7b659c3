// The StudioApi bound to Electron IPC, in plain TypeScript so it is tested without Electron:
// `ipcMain.handle('studio:call', (event, name, args))` answers {ok, result} or {ok:false, error}
// (errors as data, never a rejected invoke), after checking that the sender is our window's
// main frame; studio events are sent to the window on 'studio:event' as (name, payload).
import { apiEvents, type EventName, type WireError } from '../../shared/api.js';
import { CALL_CHANNEL, EVENT_CHANNEL } from '../../preload/names.js';
import { dispatchCall } from '../api/dispatch.js';
import type { Studio } from '../studio/types.js';

/** The slice of Electron's ipcMain this binding uses. */
export interface IpcMainLike<E> {
  handle(channel: string, listener: (event: E, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}

export type IpcReply = { ok: true; result: unknown } | { ok: false; error: WireError };

export interface IpcBindingOptions<E> {
  /** True only for the main frame of our window showing our own page. */
  isTrustedSender(event: E): boolean;
  /** Sends one event to the window (a no-op when it is gone). */
  send(name: EventName, payload: unknown): void;
  log?: (message: string) => void;
}

export function bindStudioIpc<E>(ipcMain: IpcMainLike<E>, studio: Studio, opts: IpcBindingOptions<E>): () => void {
  ipcMain.handle(
    CALL_CHANNEL,
    async (event: E, name: unknown, args: unknown, ...rest: unknown[]): Promise<IpcReply> => {
      if (!opts.isTrustedSender(event)) {
        opts.log?.(`refused a ${CALL_CHANNEL} from an untrusted sender`);
        return { ok: false, error: { name: 'Forbidden', message: 'Only the studio window may call the StudioApi.' } };
      }
      if (typeof name !== 'string' || rest.length > 0)
        return {
          ok: false,
          error: { name: 'InvalidArgument', message: `${CALL_CHANNEL} takes a call name and one argument object.` },
        };
      const outcome = await dispatchCall(studio.handlers, name, args, { log: opts.log });
      return outcome.ok ? outcome : { ok: false, error: outcome.error };
    },
  );

  const unsubscribe = (Object.keys(apiEvents) as EventName[]).map((name) =>
    studio.on(name, (payload) => opts.send(name, payload)),
  );

  return () => {
    ipcMain.removeHandler(CALL_CHANNEL);
    for (const off of unsubscribe) off();
  };
}

export { EVENT_CHANNEL };

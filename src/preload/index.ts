// Exposes the StudioApi to the sandboxed renderer as `window.studio`: one method per call
// (invoke on one channel, unwrap {ok, result | error}) and one onX per event.
// contextBridge keeps only the message of a rejected Error, so the wire name travels as
// "Name: message"; the renderer's studio-client turns it back into `error.name`.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from './electron.js';
import type { WireError } from '../shared/api.js';
import { CALL_CHANNEL, callNames, EVENT_CHANNEL, eventNames, subscriberName } from './names.js';

type Reply = { ok: true; result: unknown } | { ok: false; error: WireError };

const studio: Record<string, unknown> = {};

for (const name of callNames) {
  studio[name] = async (args: unknown) => {
    const reply = (await ipcRenderer.invoke(CALL_CHANNEL, name, args)) as Reply;
    if (reply.ok) return reply.result;
    throw new Error(`${reply.error.name}: ${reply.error.message}`);
  };
}

// One IPC listener for all events (many UI subscriptions would otherwise trip EventEmitter's
// leak warning), fanned out here to the subscribers of each event.
const subscribers = new Map<string, Set<(payload: unknown) => void>>();
ipcRenderer.on(EVENT_CHANNEL, (_e: IpcRendererEvent, name: string, payload: unknown) => {
  for (const listener of subscribers.get(name) ?? []) {
    try {
      listener(payload);
    } catch (err) {
      console.error(`a ${name} listener threw`, err);
    }
  }
});

for (const event of eventNames) {
  const set = new Set<(payload: unknown) => void>();
  subscribers.set(event, set);
  studio[subscriberName(event)] = (listener: (payload: unknown) => void) => {
    if (typeof listener !== 'function') throw new TypeError(`${subscriberName(event)} needs a function`);
    // Wrapped so that subscribing the same function twice gives two independent subscriptions.
    const entry = (payload: unknown) => listener(payload);
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  };
}

contextBridge.exposeInMainWorld('studio', studio);

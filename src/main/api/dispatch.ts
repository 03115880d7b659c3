// One StudioApi call, transport-neutral: look the call up, validate its argument with the
// contract's zod schema, run the handler, and turn every failure into data ({name, message}).
// Both bindings (HTTP in server.ts, Electron IPC in electron/ipc.ts) go through here, so they
// refuse the same inputs with the same words.
import type { z } from 'zod';
import { apiCalls, type CallName, type StudioHandlers, StudioError, type WireError } from '../../shared/api.js';

export type CallOutcome = { ok: true; result: unknown } | { ok: false; error: WireError; status: number };

/** HTTP status for each error name a handler may throw; anything else from a StudioError is 422. */
const statusByName: Record<string, number> = {
  InvalidArgument: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  UnknownCall: 404,
  Conflict: 409,
  PayloadTooLarge: 413,
  InternalError: 500,
};

export function statusFor(name: string): number {
  return statusByName[name] ?? 422;
}

export function isCallName(name: string): name is CallName {
  return Object.prototype.hasOwnProperty.call(apiCalls, name);
}

/** zod's issues as one line a person can act on: `getItem: id: Invalid input: expected number, received string`. */
export function describeZodError(call: string, error: z.ZodError): string {
  const parts = error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.map(String).join('.') : 'argument';
    return `${where}: ${issue.message}`;
  });
  return `${call}: ${parts.join('; ')}`;
}

export function toWireError(e: unknown): WireError {
  if (e instanceof StudioError) return { name: e.code, message: e.message };
  // Unexpected errors: the first line only (no stack, nothing multi-line a library packed in), bounded.
  const text = e instanceof Error ? e.message : String(e);
  const first = text.split('\n')[0]!.trim().slice(0, 500);
  return { name: 'InternalError', message: first || 'internal error' };
}

export interface DispatchOptions {
  /** Where unexpected (non-StudioError) failures are reported with their stack; never sent to the client. */
  log?: (message: string) => void;
}

export async function dispatchCall(
  handlers: StudioHandlers,
  name: string,
  rawArgs: unknown,
  opts: DispatchOptions = {},
): Promise<CallOutcome> {
  if (!isCallName(name)) {
    const known = Object.keys(apiCalls).join(', ');
    const error = { name: 'UnknownCall', message: `No StudioApi call named "${name}". Known calls: ${known}.` };
    return { ok: false, error, status: 404 };
  }
  // A call with no parameters may be sent with no argument at all.
  const parsed = apiCalls[name].args.safeParse(rawArgs === undefined ? {} : rawArgs);
  if (!parsed.success) {
    return {
      ok: false,
      error: { name: 'InvalidArgument', message: describeZodError(name, parsed.error) },
      status: 400,
    };
  }
  try {
    const handler = handlers[name] as (args: unknown) => Promise<unknown>;
    const result = await handler(parsed.data);
    return { ok: true, result };
  } catch (e) {
    const error = toWireError(e);
    if (!(e instanceof StudioError))
      opts.log?.(`${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return { ok: false, error, status: e instanceof StudioError ? statusFor(error.name) : 500 };
  }
}

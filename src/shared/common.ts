// Schemas the call groups share.
import { z } from 'zod';

export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex SHA-256');
export const Id = z.number().int().positive();

/** Bytes cross IPC as Uint8Array (structured clone), HTTP as {$bytes: base64} and WebSocket events as binary frames (wire.ts). */
export const Bytes = z.instanceof(Uint8Array);

/** The argument of a call that takes none. */
export const Void = z.object({}).strict();

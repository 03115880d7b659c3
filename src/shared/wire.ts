// JSON encoding for the server transport: Uint8Array <-> {"$bytes": base64} in calls, and binary frames for
// events that carry bytes (below).
// IPC does not need it (structured clone carries Uint8Array as is).

function toBase64(u8: Uint8Array): string {
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const u8 = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u8[i] = s.charCodeAt(i);
  return u8;
}

export function encodeWire(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Uint8Array) return { $bytes: toBase64(v) };
    // JSON.stringify hands Buffers to the replacer already converted by their toJSON.
    if (
      v &&
      typeof v === 'object' &&
      (v as { type?: unknown }).type === 'Buffer' &&
      Array.isArray((v as { data?: unknown }).data)
    )
      return { $bytes: toBase64(Uint8Array.from((v as { data: number[] }).data)) };
    return v;
  });
}

export function decodeWire(text: string): unknown {
  return JSON.parse(text, (_k, v: unknown) => {
    if (
      v &&
      typeof v === 'object' &&
      typeof (v as { $bytes?: unknown }).$bytes === 'string' &&
      Object.keys(v).length === 1
    )
      return fromBase64((v as { $bytes: string }).$bytes);
    return v;
  });
}

// ---------- binary frames (WebSocket events that carry bytes) ----------
// A message whose value holds bytes (a preview frame) travels as one binary frame, the bytes as they
// are: "FSW1" | u32 LE length of the header | header (UTF-8 JSON, each byte array replaced by
// {"$bin": index}) | for each byte array in index order: u32 LE length | the bytes.

const MAGIC = [0x46, 0x53, 0x57, 0x31]; // FSW1
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** True when the value holds a Uint8Array somewhere (it should travel as a binary frame). */
export function hasBytes(value: unknown, depth = 0): boolean {
  if (value instanceof Uint8Array) return true;
  if (depth > 32 || value === null || typeof value !== 'object') return false;
  return Object.values(value as Record<string, unknown>).some((v) => hasBytes(v, depth + 1));
}

export function encodeWireBinary(value: unknown): Uint8Array {
  const blobs: Uint8Array[] = [];
  const header = utf8.encode(
    JSON.stringify(value, (_k, v: unknown) => {
      if (v instanceof Uint8Array) return { $bin: blobs.push(v) - 1 };
      return v;
    }),
  );
  const size = 8 + header.length + blobs.reduce((n, b) => n + 4 + b.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(4, header.length, true);
  out.set(header, 8);
  let off = 8 + header.length;
  for (const b of blobs) {
    view.setUint32(off, b.length, true);
    out.set(b, off + 4);
    off += 4 + b.length;
  }
  return out;
}

export function decodeWireBinary(frame: ArrayBuffer | Uint8Array): unknown {
  // A plain Uint8Array view even of a Node Buffer (whose slice() would share memory and stay a Buffer).
  const bytes =
    frame instanceof Uint8Array
      ? new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength)
      : new Uint8Array(frame);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string) => new Error(`not a studio binary frame: ${why}`);
  if (bytes.length < 8 || MAGIC.some((m, i) => bytes[i] !== m)) throw bad('no FSW1 signature');
  const headerLength = view.getUint32(4, true);
  if (8 + headerLength > bytes.length) throw bad('the header runs past the end');
  const blobs: Uint8Array[] = [];
  let off = 8 + headerLength;
  while (off < bytes.length) {
    if (off + 4 > bytes.length) throw bad('a length runs past the end');
    const n = view.getUint32(off, true);
    if (off + 4 + n > bytes.length) throw bad('a byte array runs past the end');
    blobs.push(bytes.slice(off + 4, off + 4 + n));
    off += 4 + n;
  }
  return JSON.parse(fromUtf8.decode(bytes.subarray(8, 8 + headerLength)), (_k, v: unknown) => {
    if (
      v &&
      typeof v === 'object' &&
      typeof (v as { $bin?: unknown }).$bin === 'number' &&
      Object.keys(v).length === 1
    ) {
      const b = blobs[(v as { $bin: number }).$bin];
      if (!b) throw bad('a reference to a missing byte array');
      return b;
    }
    return v;
  });
}

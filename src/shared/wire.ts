// JSON encoding for the server transport: Uint8Array <-> {"$bytes": base64}.
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

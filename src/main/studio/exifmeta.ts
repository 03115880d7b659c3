// AUTOMATIC1111 saves its infotext in JPEG and WebP files as the EXIF UserComment (tag 0x9286
// in the Exif IFD), written by piexif as "UNICODE\0" + UTF-16 big-endian. This reads that one
// tag by hand from the TIFF structure: pure, no sharp (images.ts hands over the EXIF block).
// A comment is read up to MAX_COMMENT_BYTES, in one pass; a longer one is cut there (and said so).
//
// Public API: MAX_COMMENT_BYTES, UserComment, readUserComment, exifUserComment.

const EXIF_IFD_POINTER = 0x8769;
const USER_COMMENT = 0x9286;
/** A UserComment is decoded up to this many bytes (1 MiB, the 8-byte encoding prefix included). */
export const MAX_COMMENT_BYTES = 1 << 20;

/** The text without the NUL padding some writers put at its end. */
function trimNuls(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0) end--;
  return end === s.length ? s : s.slice(0, end);
}

function decodeUserComment(b: Uint8Array, littleEndian: boolean): string | null {
  if (b.length < 8) return null;
  const prefix = String.fromCharCode(...b.subarray(0, 8));
  const body = b.subarray(8);
  if (prefix.startsWith('UNICODE')) {
    // piexif writes big-endian whatever the TIFF byte order; some Windows tools write little-endian.
    // Decide by where the zero bytes of ASCII text fall.
    let zeroEven = 0;
    let zeroOdd = 0;
    for (let i = 0; i + 1 < body.length && i < 400; i += 2) {
      if (body[i] === 0) zeroEven++;
      if (body[i + 1] === 0) zeroOdd++;
    }
    const le = zeroOdd > zeroEven || (zeroOdd === zeroEven && littleEndian);
    const swapped = new Uint8Array(body.length - (body.length % 2));
    for (let i = 0; i + 1 < body.length; i += 2) {
      swapped[i] = le ? body[i]! : body[i + 1]!;
      swapped[i + 1] = le ? body[i + 1]! : body[i]!;
    }
    return trimNuls(new TextDecoder('utf-16le').decode(swapped));
  }
  if (prefix.startsWith('ASCII') || prefix === '\0'.repeat(8)) return trimNuls(new TextDecoder('utf-8').decode(body));
  return null; // JIS and unknown encodings: not worth guessing
}

export interface UserComment {
  text: string;
  /** The comment's size in the file, in bytes (its encoding prefix included). */
  bytes: number;
  /** Whether it was over MAX_COMMENT_BYTES, so only that much was decoded. */
  truncated: boolean;
}

/**
 * The UserComment of an EXIF block (with or without the "Exif\0\0" prefix of a JPEG APP1
 * segment), or null when there is none or the structure is broken.
 */
export function readUserComment(exif: Uint8Array): UserComment | null {
  let tiff = exif;
  if (tiff.length >= 6 && String.fromCharCode(...tiff.subarray(0, 6)) === 'Exif\0\0') tiff = tiff.subarray(6);
  if (tiff.length < 8) return null;
  const order = String.fromCharCode(tiff[0]!, tiff[1]!);
  if (order !== 'II' && order !== 'MM') return null;
  const le = order === 'II';
  const v = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const u16 = (o: number) => v.getUint16(o, le);
  const u32 = (o: number) => v.getUint32(o, le);
  if (u16(2) !== 42) return null;

  const entries = (ifd: number): { tag: number; type: number; count: number; at: number }[] => {
    if (ifd + 2 > tiff.length) return [];
    const n = u16(ifd);
    const out = [];
    for (let i = 0; i < n && ifd + 2 + i * 12 + 12 <= tiff.length; i++) {
      const at = ifd + 2 + i * 12;
      out.push({ tag: u16(at), type: u16(at + 2), count: u32(at + 4), at: at + 8 });
    }
    return out;
  };
  const ifd0 = entries(u32(4));
  const pointer = ifd0.find((e) => e.tag === EXIF_IFD_POINTER);
  const exifIfd = pointer ? entries(u32(pointer.at)) : [];
  const uc = [...exifIfd, ...ifd0].find((e) => e.tag === USER_COMMENT);
  if (!uc) return null;
  const start = uc.count <= 4 ? uc.at : u32(uc.at);
  if (start + uc.count > tiff.length) return null;
  const truncated = uc.count > MAX_COMMENT_BYTES;
  const text = decodeUserComment(tiff.subarray(start, start + Math.min(uc.count, MAX_COMMENT_BYTES)), le);
  return text === null ? null : { text, bytes: uc.count, truncated };
}

/** The text of readUserComment: the UserComment, cut at MAX_COMMENT_BYTES; null when there is none. */
export function exifUserComment(exif: Uint8Array): string | null {
  return readUserComment(exif)?.text ?? null;
}

// Positioned reads that either fill the buffer or say the file is too short, and an atomic writer
// (temp file in the same folder, fsync, rename) so a crash never leaves half a checkpoint in the cache.
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/** Reads exactly `length` bytes at `position`; a short file is reported with `what` in the message. */
export async function readExactly(fh: FileHandle, position: number, length: number, what: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  await readInto(fh, buf, 0, position, length, what);
  return buf;
}

/** Reads exactly `length` bytes at `position` into `buf` at `offset`. */
export async function readInto(
  fh: FileHandle,
  buf: Uint8Array,
  offset: number,
  position: number,
  length: number,
  what: string,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, offset + done, length - done, position + done);
    if (bytesRead === 0) {
      throw new Error(`${what}: file is truncated (wanted ${length} bytes at offset ${position}, got ${done})`);
    }
    done += bytesRead;
  }
}

/**
 * Writes a file through `write(fh)` into a temp file beside `dest`, fsyncs it and renames it into
 * place; on any error the temp file is removed and `dest` is left as it was.
 */
export async function writeAtomically(dest: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const tmp = path.join(
    path.dirname(dest),
    `.${path.basename(dest)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  const fh = await open(tmp, 'wx');
  try {
    await write(fh);
    await fh.sync();
    await fh.close();
    await rename(tmp, dest);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Writes all of `data` at the handle's current position. */
export async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    const { bytesWritten } = await fh.write(data, done, data.byteLength - done);
    done += bytesWritten;
  }
}

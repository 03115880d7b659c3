// Binary event frames: bytes as they are (no base64), everything else as JSON; malformed frames refused.
import { describe, expect, it } from 'vitest';
import { decodeWireBinary, encodeWire, encodeWireBinary, hasBytes } from '../../../src/shared/wire.js';

describe('binary wire frames', () => {
  it('round-trips nested byte arrays and plain values, at the size of the bytes', () => {
    const a = new Uint8Array(100_000).map((_, i) => i % 251);
    const b = new Uint8Array([0, 255, 7]);
    const value = { event: 'jobFrame', payload: { jobId: 'j', step: 3, data: a, more: [{ thumb: b }, null, 'é'] } };
    const frame = encodeWireBinary(value);
    expect(Buffer.from(frame.subarray(0, 4)).toString('latin1')).toBe('FSW1');
    expect(frame.length).toBeLessThan(a.length + b.length + 200);
    expect(encodeWire(value).length).toBeGreaterThan((a.length * 4) / 3); // what base64 JSON would cost
    expect(decodeWireBinary(frame)).toEqual(value);
    expect(decodeWireBinary(frame.buffer as ArrayBuffer)).toEqual(value);
  });

  it('says whether a value holds bytes', () => {
    expect(hasBytes({ a: [{ b: new Uint8Array(1) }] })).toBe(true);
    expect(hasBytes({ a: [{ b: 'no' }], n: 1 })).toBe(false);
    expect(hasBytes(null)).toBe(false);
  });

  it('refuses frames that are not whole', () => {
    const frame = encodeWireBinary({ data: new Uint8Array(10) });
    expect(() => decodeWireBinary(new Uint8Array([1, 2, 3]))).toThrow(/no FSW1 signature/);
    expect(() => decodeWireBinary(frame.subarray(0, frame.length - 3))).toThrow(/runs past the end/);
    const header = new DataView(frame.buffer).getUint32(4, true);
    expect(() => decodeWireBinary(frame.subarray(0, 8 + header))).toThrow(/missing byte array/);
    const lying = frame.slice();
    new DataView(lying.buffer).setUint32(4, 1e9, true);
    expect(() => decodeWireBinary(lying)).toThrow(/header runs past the end/);
  });
});

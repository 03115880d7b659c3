import { describe, expect, it } from 'vitest';
import { formatBytes } from '../../../src/shared/format.js';

describe('formatBytes', () => {
  it('uses decimal units, one decimal below 10 and whole numbers above', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1000)).toBe('1.0 KB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.1 MB'); // 3,145,728 bytes
    expect(formatBytes(605_000_000)).toBe('605 MB');
    expect(formatBytes(9_960)).toBe('10 KB'); // rounds to 10.0: no "10.0 KB"
    expect(formatBytes(1.5e12)).toBe('1.5 TB');
  });
  it('says unknown for a missing size', () => {
    expect(formatBytes(null)).toBe('unknown');
    expect(formatBytes(undefined)).toBe('unknown');
    expect(formatBytes(Number.NaN)).toBe('unknown');
  });
});

// `fstudio generate`'s arguments as nerdyrodent/VQGAN-CLIP users type them.
import { describe, expect, it } from 'vitest';
import { normalizeGenerateArgs, parseSizeArgs } from '../../../src/main/cli/generate.js';

describe('fstudio generate arguments', () => {
  it('turns the multi-letter short options into their long names, only after `generate`', () => {
    expect(
      normalizeGenerateArgs([
        'node',
        'fstudio',
        'generate',
        '-p',
        'a fox',
        '-ip',
        'a.png',
        '-cutp',
        '2',
        '-sd',
        '7',
        '-i',
        '0',
      ]),
    ).toEqual([
      'node',
      'fstudio',
      'generate',
      '-p',
      'a fox',
      '--image_prompts',
      'a.png',
      '--cut_pow',
      '2',
      '--seed',
      '7',
      '-i',
      '0',
    ]);
    expect(normalizeGenerateArgs(['node', 'fstudio', 'import', '-ip'])).toEqual(['node', 'fstudio', 'import', '-ip']);
  });

  it('reads a size as W H, WxH or one side', () => {
    expect(parseSizeArgs(['512', '384'])).toEqual({ width: 512, height: 384 });
    expect(parseSizeArgs(['512x384'])).toEqual({ width: 512, height: 384 });
    expect(parseSizeArgs(['256'])).toEqual({ width: 256, height: 256 });
    expect(parseSizeArgs(undefined)).toBeNull();
    expect(() => parseSizeArgs(['big'])).toThrow(/expected a width and a height in pixels, like -s 512 384/);
    expect(() => parseSizeArgs(['8', '8'])).toThrow(/expected a width and a height/);
  });
});

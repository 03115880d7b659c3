// The built-in template sets (the CLIP notebook's 80 and the paper's 7, every one with its label slot), filling a
// template literally, and reading template files: errors that say what to fix, bounded and linear on
// megabyte-long adversarial input.
import { describe, expect, it } from 'vitest';
import {
  fillTemplate,
  MAX_TEMPLATES,
  parseTemplateText,
  TEMPLATE_SETS,
} from '../../../src/main/engine/classify/templates.js';

describe('built-in sets', () => {
  it('80 and 7 distinct templates, each with one {} slot; the 7 are among the 80', () => {
    const { imagenet80, imagenet7 } = TEMPLATE_SETS;
    expect(imagenet80.templates).toHaveLength(80);
    expect(new Set(imagenet80.templates).size).toBe(80);
    expect(imagenet7.templates).toHaveLength(7);
    for (const t of [...imagenet80.templates, ...imagenet7.templates]) expect(t.split('{}')).toHaveLength(2);
    for (const t of imagenet7.templates) expect(imagenet80.templates).toContain(t);
    expect(imagenet80.templates[0]).toBe('a bad photo of a {}.');
    expect(imagenet80.templates[79]).toBe('a tattoo of the {}.');
  });
});

describe('fillTemplate', () => {
  it('replaces every slot literally', () => {
    expect(fillTemplate('a photo of a {}.', 'cat')).toBe('a photo of a cat.');
    expect(fillTemplate('{} and {}', '$& {}')).toBe('$& {} and $& {}');
  });
});

describe('template files', () => {
  it('one template a line; blank lines and # comments skipped; CRLF accepted', () => {
    expect(parseTemplateText('# mine\r\na photo of a {}.\r\n\r\n  art of the {}.  \n')).toEqual([
      'a photo of a {}.',
      'art of the {}.',
    ]);
  });

  it('a template without {} is refused with its line and what to write', () => {
    expect(() => parseTemplateText('a photo of a {}.\na photo of a cat.\n', 't.txt')).toThrow(
      /t\.txt, line 2: "a photo of a cat\." has no \{\} where the label goes\. Write \{\} in each template/,
    );
  });

  it('an empty file says what a template file holds', () => {
    expect(() => parseTemplateText('\n# nothing\n')).toThrow(/has no templates\. Write one template a line/);
  });

  it('megabyte-long adversarial input is refused fast, by size, line length or count', () => {
    expect(() => parseTemplateText('{}'.repeat(600_000))).toThrow(/over the limit/);
    expect(() => parseTemplateText('a'.repeat(200_000) + '{}')).toThrow(/line 1: a template of 200002 characters/);
    expect(() => parseTemplateText('{}\n'.repeat(80_000))).toThrow(new RegExp(`more than ${MAX_TEMPLATES} templates`));
    expect(() => parseTemplateText('\n'.repeat(250_000))).toThrow(/has no templates/);
  });
});

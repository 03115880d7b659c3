// CLIP prompt templates for zero-shot classification: the built-in sets (one plain template, the 7 the CLIP
// authors selected for ImageNet, and the 80-template ImageNet ensemble of the CLIP repository's
// notebooks/Prompt_Engineering_for_ImageNet.ipynb), filling a template with a label, and reading a template
// file (one template a line, `{}` standing for the label) in linear time with bounded sizes.
//
// Public API
//   TEMPLATE_SETS: { plain, imagenet7, imagenet80 }      each { id, name, templates }
//   TemplateSetId, isTemplateSetId(s)
//   fillTemplate(template, label) -> string               every `{}` replaced by the label, literally
//   parseTemplateText(text, what?) -> string[]             a template file's lines; errors say what to fix
//   MAX_TEMPLATES, MAX_TEMPLATE_CHARS, MAX_TEMPLATE_FILE_BYTES

/** The slot a template holds for the label. */
export const LABEL_SLOT = '{}';
export const MAX_TEMPLATES = 200;
export const MAX_TEMPLATE_CHARS = 300;
export const MAX_TEMPLATE_FILE_BYTES = 256 * 1024;

/** The 7 templates the CLIP authors selected for ImageNet (found by sequential forward selection). */
const IMAGENET7 = [
  'itap of a {}.',
  'a bad photo of the {}.',
  'a origami {}.',
  'a photo of the large {}.',
  'a {} in a video game.',
  'art of the {}.',
  'a photo of the small {}.',
];

/** The 80 ImageNet templates of CLIP's Prompt_Engineering_for_ImageNet notebook, in its order. */
const IMAGENET80 = [
  'a bad photo of a {}.',
  'a photo of many {}.',
  'a sculpture of a {}.',
  'a photo of the hard to see {}.',
  'a low resolution photo of the {}.',
  'a rendering of a {}.',
  'graffiti of a {}.',
  'a bad photo of the {}.',
  'a cropped photo of the {}.',
  'a tattoo of a {}.',
  'the embroidered {}.',
  'a photo of a hard to see {}.',
  'a bright photo of a {}.',
  'a photo of a clean {}.',
  'a photo of a dirty {}.',
  'a dark photo of the {}.',
  'a drawing of a {}.',
  'a photo of my {}.',
  'the plastic {}.',
  'a photo of the cool {}.',
  'a close-up photo of a {}.',
  'a black and white photo of the {}.',
  'a painting of the {}.',
  'a painting of a {}.',
  'a pixelated photo of the {}.',
  'a sculpture of the {}.',
  'a bright photo of the {}.',
  'a cropped photo of a {}.',
  'a plastic {}.',
  'a photo of the dirty {}.',
  'a jpeg corrupted photo of a {}.',
  'a blurry photo of the {}.',
  'a photo of the {}.',
  'a good photo of the {}.',
  'a rendering of the {}.',
  'a {} in a video game.',
  'a photo of one {}.',
  'a doodle of a {}.',
  'a close-up photo of the {}.',
  'a photo of a {}.',
  'the origami {}.',
  'the {} in a video game.',
  'a sketch of a {}.',
  'a doodle of the {}.',
  'a origami {}.',
  'a low resolution photo of a {}.',
  'the toy {}.',
  'a rendition of the {}.',
  'a photo of the clean {}.',
  'a photo of a large {}.',
  'a rendition of a {}.',
  'a photo of a nice {}.',
  'a photo of a weird {}.',
  'a blurry photo of a {}.',
  'a cartoon {}.',
  'art of a {}.',
  'a sketch of the {}.',
  'a embroidered {}.',
  'a pixelated photo of a {}.',
  'itap of the {}.',
  'a jpeg corrupted photo of the {}.',
  'a good photo of a {}.',
  'a plushie {}.',
  'a photo of the nice {}.',
  'a photo of the small {}.',
  'a photo of the weird {}.',
  'the cartoon {}.',
  'art of the {}.',
  'a drawing of the {}.',
  'a photo of the large {}.',
  'a black and white photo of a {}.',
  'the plushie {}.',
  'a dark photo of a {}.',
  'itap of a {}.',
  'graffiti of the {}.',
  'a toy {}.',
  'itap of my {}.',
  'a photo of a cool {}.',
  'a photo of a small {}.',
  'a tattoo of the {}.',
];

export const TEMPLATE_SETS = {
  plain: { id: 'plain', name: 'The label as it is', templates: ['{}'] },
  imagenet7: { id: 'imagenet7', name: 'ImageNet, 7 selected (CLIP paper)', templates: IMAGENET7 },
  imagenet80: { id: 'imagenet80', name: 'ImageNet, 80 templates (CLIP notebook)', templates: IMAGENET80 },
} as const satisfies Record<string, { id: string; name: string; templates: readonly string[] }>;

export type TemplateSetId = keyof typeof TEMPLATE_SETS;

export function isTemplateSetId(s: string): s is TemplateSetId {
  return Object.prototype.hasOwnProperty.call(TEMPLATE_SETS, s);
}

/** The template with every `{}` replaced by the label, literally (a label holding `{}` or `$&` stays as typed). */
export function fillTemplate(template: string, label: string): string {
  return template.split(LABEL_SLOT).join(label);
}

/**
 * A template file's templates: one a line (blank lines and lines starting with `#` skipped), each holding
 * `{}` where the label goes. Linear in the text; at most MAX_TEMPLATES templates of MAX_TEMPLATE_CHARS
 * characters. Errors name the line and say what to do.
 */
export function parseTemplateText(text: string, what = 'the template file'): string[] {
  if (text.length > MAX_TEMPLATE_FILE_BYTES) {
    throw new Error(
      `${what} is ${text.length} characters, over the limit of ${MAX_TEMPLATE_FILE_BYTES}: keep one short template a line.`,
    );
  }
  const out: string[] = [];
  let lineNo = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    const line = text.slice(start, end).replace(/\r$/, '').trim();
    start = end + 1;
    if (line === '' || line.startsWith('#')) continue;
    if (line.length > MAX_TEMPLATE_CHARS) {
      throw new Error(
        `${what}, line ${lineNo}: a template of ${line.length} characters, over the limit of ${MAX_TEMPLATE_CHARS}. Shorten it.`,
      );
    }
    if (!line.includes(LABEL_SLOT)) {
      throw new Error(
        `${what}, line ${lineNo}: "${line.slice(0, 60)}" has no {} where the label goes. ` +
          'Write {} in each template, like "a photo of a {}.".',
      );
    }
    if (out.length === MAX_TEMPLATES) {
      throw new Error(`${what} has more than ${MAX_TEMPLATES} templates. Keep the ${MAX_TEMPLATES} you need most.`);
    }
    out.push(line);
  }
  if (out.length === 0) {
    throw new Error(`${what} has no templates. Write one template a line, with {} where the label goes.`);
  }
  return out;
}

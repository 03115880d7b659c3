// Matching a checkpoint's names and shapes against what a model expects: renaming hooks (OpenAI's
// CLIP names to Hugging Face's, prefixes Lightning adds) and one assertion that says exactly which
// names are missing, unexpected or mis-shaped.
import { WEIGHT_DTYPE_SIZE, gather, type TensorInfo, type WeightTensor } from './tensor.js';

/** Maps a checkpoint name to the model's name, or null to drop the tensor (e.g. `loss.*`). */
export type NameMap = (name: string) => string | null;

/** Applies `map` to every key; two names mapped to the same one is an error. */
export function renameKeys<T>(entries: ReadonlyMap<string, T>, map: NameMap): Map<string, T> {
  const out = new Map<string, T>();
  const from = new Map<string, string>();
  for (const [name, v] of entries) {
    const to = map(name);
    if (to === null) continue;
    const prev = from.get(to);
    if (prev !== undefined) throw new Error(`name map sends both '${prev}' and '${name}' to '${to}'`);
    from.set(to, name);
    out.set(to, v);
  }
  return out;
}

/** Rewrites the first matching prefix of each rule list; `to: null` drops names with that prefix. */
export function prefixMap(rules: ReadonlyArray<readonly [from: string, to: string | null]>): NameMap {
  return (name) => {
    for (const [from, to] of rules) {
      if (name.startsWith(from)) return to === null ? null : to + name.slice(from.length);
    }
    return name;
  };
}

/** Applies maps left to right; a null from any of them drops the name. */
export function composeMaps(...maps: NameMap[]): NameMap {
  return (name) => {
    let n: string | null = name;
    for (const m of maps) {
      if (n === null) return null;
      n = m(n);
    }
    return n;
  };
}

export class StateDictMismatchError extends Error {
  override name = 'StateDictMismatchError';
  constructor(
    readonly missing: string[],
    readonly unexpected: string[],
    readonly misshaped: { name: string; expected: number[]; actual: number[] }[],
    what: string,
  ) {
    const list = (items: string[]) => {
      const shown = items.slice(0, 50).map((s) => `    ${s}`);
      if (items.length > 50) shown.push(`    ... and ${items.length - 50} more`);
      return shown.join('\n');
    };
    const parts = [`${what} does not match the model:`];
    if (missing.length) parts.push(`  missing (${missing.length}):\n${list(missing)}`);
    if (unexpected.length) parts.push(`  unexpected (${unexpected.length}):\n${list(unexpected)}`);
    if (misshaped.length) {
      const lines = misshaped.map(
        (m) => `${m.name}: expected [${m.expected.join(', ')}], got [${m.actual.join(', ')}]`,
      );
      parts.push(`  wrong shape (${misshaped.length}):\n${list(lines)}`);
    }
    super(parts.join('\n'));
  }
}

type Shapes = ReadonlyMap<string, readonly number[] | { shape: readonly number[] }> | Record<string, readonly number[]>;

function shapesOf(s: Shapes): Map<string, readonly number[]> {
  const entries = s instanceof Map ? [...s.entries()] : Object.entries(s);
  return new Map(entries.map(([k, v]) => [k, Array.isArray(v) ? (v as readonly number[]) : (v as TensorInfo).shape]));
}

export interface AssertOptions {
  /** Checkpoint names to ignore when they are not expected (e.g. `loss.` for taming's discriminator). */
  ignore?: (name: string) => boolean;
  /** What to call the checkpoint in the message. */
  what?: string;
}

/**
 * Throws a StateDictMismatchError listing every missing, unexpected and mis-shaped name, unless
 * `actual` has exactly the expected names with the expected shapes.
 */
export function assertStateDict(expected: Shapes, actual: Shapes, opts: AssertOptions = {}): void {
  const exp = shapesOf(expected);
  const act = shapesOf(actual);
  const missing = [...exp.keys()].filter((n) => !act.has(n)).sort();
  const unexpected = [...act.keys()].filter((n) => !exp.has(n) && !opts.ignore?.(n)).sort();
  const misshaped: { name: string; expected: number[]; actual: number[] }[] = [];
  for (const [name, shape] of exp) {
    const got = act.get(name);
    if (got && (got.length !== shape.length || got.some((d, i) => d !== shape[i]))) {
      misshaped.push({ name, expected: [...shape], actual: [...got] });
    }
  }
  if (missing.length || unexpected.length || misshaped.length) {
    throw new StateDictMismatchError(missing, unexpected, misshaped, opts.what ?? 'checkpoint');
  }
}

// Building blocks for name tables that also reshape tensors (OpenAI's CLIP files keep q, k and v in
// one `in_proj_weight` [3w, w] and store `proj` as [width, embed], transposed from Hugging Face's).

/** Splits a tensor along its first dimension into `parts` equal pieces (copies, contiguous). */
export function splitDim0(t: WeightTensor, parts: number): WeightTensor[] {
  const [rows, ...rest] = t.shape;
  if (rows === undefined || rows % parts !== 0) {
    throw new Error(`cannot split shape [${t.shape.join(', ')}] into ${parts} along dimension 0`);
  }
  const n = t.data.byteLength / parts;
  return Array.from({ length: parts }, (_, i) => ({
    dtype: t.dtype,
    shape: [rows / parts, ...rest],
    data: t.data.slice(i * n, (i + 1) * n),
  }));
}

/** The transpose of a 2-D tensor, contiguous. */
export function transpose2d(t: WeightTensor): WeightTensor {
  if (t.shape.length !== 2) throw new Error(`transpose2d needs a 2-D tensor, got [${t.shape.join(', ')}]`);
  const [r, c] = t.shape as [number, number];
  return { dtype: t.dtype, shape: [c, r], data: gather(t.data, [c, r], [1, c], WEIGHT_DTYPE_SIZE[t.dtype]) };
}

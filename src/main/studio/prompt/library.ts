// Prompt-made models as the studio keeps them: specs checked (in words a user can act on), the language model
// they name resolved (an installed catalog model or a folder under models/; paths only for the CLI and the SDK)
// and recorded with the hashes of its files, saved as numbered versions (LabStore), exported and imported as
// one JSON file, and the list of text models a prompt can run on.
//
// Public API
//   new PromptLibrary(ctx)
//     .list() / .get({ name, version? }) / .save(spec) / .remove(name)
//     .exportFile({ name, version? }) / .importFile(bytes, name?)
//     .resolveChoice(choice) -> { spec, saved: { name, version } | null }   a run's spec, validated
//     .resolveLm(spec, { allowPaths }) -> { spec (files recorded), ref, info }  the LM checked as a causal LM
//     .textModels()
//   checkedSpec(value) -> PromptModelSpec       zod + validateSpec, as StudioError('InvalidArgument')
//   specFromTemplate(text, { name, model, labels?, calibrate?, decoding? })   a template file's prompt as a spec
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type PromptModelSummary, type PromptTextModel } from '../../../shared/api.js';
import { PROMPT_MODEL_FORMAT, PromptModelSpec, type PromptModelInput } from '../../../shared/prompt-model.js';
import { StudioError } from '../../../shared/api.js';
import { parseTemplateFile, TemplateError, validateSpec } from '../../../shared/prompt-render.js';
import type { TextModelInfo } from '../../engine/text/types.js';
import type { StudioContext } from '../context.js';
import { hashFile } from '../models/hash.js';

export interface ResolvedLm {
  /** The spec with model.files recorded (name and SHA-256 of the files the model runs with). */
  spec: PromptModelSpec;
  /** What StudioCompute is given: the catalog id or folder name, or an absolute path (CLI, SDK). */
  ref: string;
  info: TextModelInfo;
}

const invalid = (message: string) => new StudioError('InvalidArgument', message);

/** A spec from anywhere (an API call, a file, the CLI): parsed with defaults and checked; problems in words. */
export function checkedSpec(value: unknown): PromptModelSpec {
  const parsed = PromptModelSpec.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || 'the spec'}: ${i.message}`);
    throw invalid(`This prompt model is not valid: ${issues.join('; ')}.`);
  }
  const problems = validateSpec(parsed.data);
  if (problems.length > 0) throw invalid(problems.join(' '));
  return parsed.data;
}

/**
 * A spec from a template file's text (`Q: {input}\nA:` after a few examples): a classifier with labels, else a
 * generator. A template that cannot be read is a StudioError('InvalidArgument') saying why.
 */
export function specFromTemplate(
  text: string,
  o: { name: string; model: string; labels?: string[]; calibrate?: boolean; decoding?: PromptModelInput['decoding'] },
): PromptModelInput {
  const labels = o.labels ?? [];
  try {
    return {
      name: o.name,
      task: labels.length > 0 ? 'classify' : 'generate',
      model: { id: o.model },
      ...parseTemplateFile(text, { labels }),
      calibrate: o.calibrate ?? false,
      ...(o.decoding ? { decoding: o.decoding } : {}),
    };
  } catch (e) {
    if (e instanceof TemplateError) throw invalid(e.message);
    throw e;
  }
}

/** Hashes of files already hashed in this process, by path, size and modification time. */
const hashCache = new Map<string, string>();

async function sha256Of(path: string): Promise<string | null> {
  const s = await stat(path).catch(() => null);
  if (!s?.isFile()) return null;
  const key = `${path}\0${s.size}\0${s.mtimeMs}`;
  const known = hashCache.get(key);
  if (known) return known;
  const { sha256 } = await hashFile(path);
  hashCache.set(key, sha256);
  return sha256;
}

function fileSlug(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[^\w.-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80);
  return slug || 'prompt-model';
}

export class PromptLibrary {
  constructor(private readonly ctx: StudioContext) {}

  list(): PromptModelSummary[] {
    return this.ctx.lab.models().flatMap((row) => {
      const r = PromptModelSpec.safeParse(row.spec);
      if (!r.success) return []; // a row written by a newer version: left alone
      const s = r.data;
      return [
        {
          name: row.name,
          version: row.version,
          versions: this.ctx.lab.modelVersions(row.name).length,
          task: s.task,
          description: s.description,
          lm: s.model.id,
          labels: s.labels.map((l) => l.name),
          examples: s.examples.length,
          createdAt: row.createdAt,
        },
      ];
    });
  }

  get(ref: { name: string; version?: number }): {
    spec: PromptModelSpec;
    versions: { version: number; createdAt: number }[];
  } {
    const row = this.ctx.lab.model(ref.name.trim(), ref.version);
    if (!row) {
      const versions = this.ctx.lab.modelVersions(ref.name.trim());
      throw new StudioError(
        'NotFound',
        versions.length > 0 && ref.version !== undefined
          ? `"${ref.name}" has no version ${ref.version} (its versions: ${versions.map((v) => v.version).join(', ')}).`
          : `No saved prompt model is named "${ref.name}". Saved ones: ${this.#names()}.`,
      );
    }
    const spec = checkedSpecOfRow(row.spec, row.name);
    return {
      spec: { ...spec, name: row.name, version: row.version },
      versions: this.ctx.lab.modelVersions(row.name).map((v) => ({ version: v.version, createdAt: v.createdAt })),
    };
  }

  #names(): string {
    const names = this.ctx.lab.models().map((m) => `"${m.name}"`);
    return names.length > 0 ? names.slice(0, 20).join(', ') : 'none yet';
  }

  /** A new version of the spec's name; model files are recorded when the model is installed. */
  async save(
    input: PromptModelInput | PromptModelSpec,
    o: { allowPaths?: boolean } = {},
  ): Promise<{ name: string; version: number; spec: PromptModelSpec }> {
    this.ctx.live();
    const checked = checkedSpec(input);
    const spec = await this.#withFiles(checked, o.allowPaths ?? false);
    const { version } = this.ctx.lab.saveModel(spec.name, { ...spec, version: undefined }, Date.now());
    return { name: spec.name.trim(), version, spec: { ...spec, name: spec.name.trim(), version } };
  }

  /** The spec with the model's files recorded when it can be resolved now (kept as given otherwise). */
  async #withFiles(spec: PromptModelSpec, allowPaths: boolean): Promise<PromptModelSpec> {
    try {
      const m = await this.ctx.models.resolve('text-lm', spec.model.id, { allowPaths });
      const { info } = await this.ctx.compute.textInfo({ model: m.ref });
      const files = await this.#files(m.location, m.entry?.id ?? null, info.onnxFile);
      return { ...spec, model: { id: spec.model.id, files } };
    } catch {
      return spec; // not installed (or not runnable) here: saved with the files it had
    }
  }

  remove(name: string): { deleted: number } {
    const deleted = this.ctx.lab.deleteModel(name.trim());
    if (deleted === 0) throw new StudioError('NotFound', `No saved prompt model is named "${name}".`);
    return { deleted };
  }

  exportFile(ref: { name: string; version?: number }) {
    const { spec } = this.get(ref);
    const data = new TextEncoder().encode(`${JSON.stringify(spec, null, 2)}\n`);
    return {
      fileName: `${fileSlug(spec.name)}-v${spec.version}.fstudio-prompt.json`,
      mime: 'application/json',
      data,
      path: null,
      bytes: data.byteLength,
    };
  }

  /** A file made by exportFile, as a new version of its name (or `name`). */
  async importFile(bytes: Uint8Array, name?: string) {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw invalid('This file is not text (UTF-8): a prompt model file is the JSON that Export writes.');
    }
    let value: unknown;
    try {
      value = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch (e) {
      throw invalid(
        `This file is not JSON (${(e as Error).message}): a prompt model file is the JSON that Export writes.`,
      );
    }
    const format = typeof value === 'object' && value !== null ? (value as { format?: unknown }).format : undefined;
    if (format !== PROMPT_MODEL_FORMAT)
      throw invalid(
        `This JSON is not a prompt model (its format is ${format === undefined ? 'missing' : JSON.stringify(format).slice(0, 60)}; ` +
          `expected "${PROMPT_MODEL_FORMAT}"). Export one from Prompt Lab or with \`fstudio prompt models export\`.`,
      );
    const spec = checkedSpec({ ...(value as object), ...(name ? { name } : {}), version: undefined });
    const { version } = this.ctx.lab.saveModel(spec.name, spec, Date.now());
    return { name: spec.name.trim(), version, spec: { ...spec, name: spec.name.trim(), version } };
  }

  /** What a run was asked to use, checked; a saved model by name and version. */
  resolveChoice(choice: { spec: PromptModelInput | PromptModelSpec } | { saved: { name: string; version?: number } }): {
    spec: PromptModelSpec;
    saved: { name: string; version: number } | null;
  } {
    if ('saved' in choice) {
      const { spec } = this.get(choice.saved);
      return { spec, saved: { name: spec.name, version: spec.version! } };
    }
    return { spec: checkedSpec(choice.spec), saved: null };
  }

  /**
   * The spec's language model, checked to be a causal LM this studio can run, with its files recorded. The API
   * names installed models only; the CLI and the SDK may give a folder (allowPaths).
   */
  async resolveLm(spec: PromptModelSpec, o: { allowPaths: boolean; signal?: AbortSignal }): Promise<ResolvedLm> {
    if (!o.allowPaths && /[\\/]/.test(spec.model.id))
      throw new StudioError(
        'InvalidArgument',
        `"${spec.model.id}" is a path: the studio runs installed models only (a catalog id like gpt2, or a folder ` +
          "under the data folder's models/). Put the folder there, or run it with `fstudio prompt run --model <folder>`.",
      );
    const model = await this.ctx.models.resolve('text-lm', spec.model.id, { allowPaths: o.allowPaths });
    let info: TextModelInfo;
    try {
      ({ info } = await this.ctx.compute.textInfo({ model: model.ref, signal: o.signal }));
    } catch (e) {
      if (e instanceof StudioError && e.code !== 'InternalError') throw e;
      const why = (e as Error).message.split('\n')[0]!.replace(/\.?\s*$/, '.');
      // The runtime's own message may already say what a text model folder holds.
      const hint = /onnx\//.test(why)
        ? ''
        : ' Prompt Lab needs a causal language model folder (config.json, tokenizer.json and onnx/model*.onnx), ' +
          "like the catalog's gpt2 or distilgpt2.";
      throw new StudioError('NotATextModel', `"${spec.model.id}" cannot run as a text model: ${why}${hint}`);
    }
    const files = await this.#files(model.location, model.entry?.id ?? null, info.onnxFile);
    return { spec: { ...spec, model: { id: spec.model.id, files } }, ref: model.ref, info };
  }

  /** Name and SHA-256 of a model's files: the state file's records for a catalog model, else hashed here. */
  async #files(dir: string, catalogId: string | null, onnxFile?: string) {
    if (catalogId) {
      const info = await this.ctx.models.info(catalogId);
      return info.files.filter((f) => f.state === 'present').map((f) => ({ name: f.name, sha256: f.sha256 }));
    }
    const names = ['config.json', 'tokenizer.json', 'tokenizer_config.json', ...(onnxFile ? [onnxFile] : [])];
    const out: { name: string; sha256: string | null }[] = [];
    for (const name of names) {
      const sha256 = await sha256Of(join(dir, name));
      if (sha256) out.push({ name, sha256 });
    }
    return out;
  }

  /** The catalog's text models (installed or not) and the folders of the user's own under models/. */
  async textModels(): Promise<PromptTextModel[]> {
    const catalog = (await this.ctx.models.list()).filter((m) => m.kind === 'text-lm');
    const known = new Set(catalog.map((m) => m.id));
    const root = join(this.ctx.dataDir, 'models');
    const folders: PromptTextModel[] = [];
    for (const d of await readdir(root, { withFileTypes: true }).catch(() => [])) {
      if (!d.isDirectory() || known.has(d.name) || d.name.startsWith('.')) continue;
      const dir = join(root, d.name);
      const isLm = (await stat(join(dir, 'onnx')).catch(() => null))?.isDirectory() && (await hasConfig(dir));
      if (isLm) folders.push({ id: d.name, title: d.name, source: 'folder', installed: true, default: false });
    }
    return [
      ...catalog.map((m) => ({
        id: m.id,
        title: m.title,
        source: 'catalog' as const,
        installed: m.state === 'installed',
        default: m.default,
      })),
      ...folders.sort((a, b) => a.id.localeCompare(b.id)),
    ];
  }
}

async function hasConfig(dir: string): Promise<boolean> {
  const text = await readFile(join(dir, 'config.json'), 'utf8').catch(() => null);
  if (text === null || text.length > 1_000_000) return false;
  try {
    const c = JSON.parse(text) as { model_type?: unknown };
    return typeof c.model_type === 'string' && c.model_type !== 'clip';
  } catch {
    return false;
  }
}

function checkedSpecOfRow(value: unknown, name: string): PromptModelSpec {
  try {
    return checkedSpec(value);
  } catch (e) {
    throw new StudioError(
      'InvalidSpec',
      `The saved model "${name}" cannot be read (${(e as Error).message}). Save it again from Prompt Lab.`,
    );
  }
}

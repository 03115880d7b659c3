// The input files a prompt-made model runs over, read as a stream of row batches so that a file of any size
// runs in bounded memory: TXT (one input a line), CSV / TSV (RFC 4180: a header row, quoted fields with
// delimiters, doubled quotes and newlines inside; parsed by a state machine over the chunks) and JSONL (one
// JSON object a line). Every row is bounded (maxRowChars), the text must be UTF-8 (a UTF-8 BOM is dropped,
// CRLF is fine), and every problem is a StudioError('InputFile') that names the file, the line and what to do.
//
// Public API
//   readInputs(path, opts) -> AsyncGenerator<InputRow[]>   batches of ≤ batchSize (64) rows { idx, text, gold?, line }
//   countInputs(path, opts) -> Promise<number>             the rows a run would read (a streamed pass)
//   inputFormatOf(path) -> InputFormat | null               the format its extension says
//   InputRow, InputFormat, ReadInputsOptions, InputProgress, INPUT_FILE_ERROR ('InputFile')
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { StudioError } from '../../../shared/api.js';
import { listWords } from '../../../shared/format.js';

export const INPUT_FILE_ERROR = 'InputFile';
export type InputFormat = 'txt' | 'csv' | 'tsv' | 'jsonl';

export interface InputRow {
  /** 0-based, counting the rows read (blank ones are skipped and not counted). */
  idx: number;
  text: string;
  /** The gold answer (goldColumn), when the file has one for this row. */
  gold?: string;
  /** 1-based line of the file where the row starts. */
  line: number;
}

export interface InputProgress {
  bytesRead: number;
  totalBytes: number;
  rows: number;
}

export interface ReadInputsOptions {
  /** Default: from the extension (.txt, .csv, .tsv, .jsonl / .ndjson). */
  format?: InputFormat;
  /** CSV/TSV header name or JSONL field; default the first column, or the first of JSONL_TEXT_FIELDS present. */
  column?: string;
  /** The column or field holding the gold answer. */
  goldColumn?: string;
  /** Longest row accepted, in characters (default 100,000). */
  maxRowChars?: number;
  /** Rows per batch (default 64). */
  batchSize?: number;
  signal?: AbortSignal;
  /** Called after each batch with the bytes read so far (for a progress bar before the rows are counted). */
  onProgress?: (p: InputProgress) => void;
}

const JSONL_TEXT_FIELDS = ['text', 'input', 'question', 'prompt', 'sentence'];
const EXTENSIONS: Record<string, InputFormat> = {
  '.txt': 'txt',
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
};
const CHUNK_BYTES = 64 * 1024;

const fail = (message: string) => new StudioError(INPUT_FILE_ERROR, message);
const count = (n: number) => n.toLocaleString('en-US');

export function inputFormatOf(path: string): InputFormat | null {
  return EXTENSIONS[extname(path).toLowerCase()] ?? null;
}

/** Streams the input rows of a file in batches. Stops reading when the consumer stops (break / return). */
export async function* readInputs(path: string, opts: ReadInputsOptions = {}): AsyncGenerator<InputRow[]> {
  const name = basename(path);
  const { size, format } = await checkFile(path, opts);
  const maxRowChars = opts.maxRowChars ?? 100_000;
  const batchSize = opts.batchSize ?? 64;
  const rows = rowReader(format, name, opts, maxRowChars);
  let batch: InputRow[] = [];
  let idx = 0;
  let bytesRead = 0;
  for await (const piece of decodeText(path, name, opts.signal, (n) => (bytesRead += n))) {
    for (const row of rows.push(piece)) {
      batch.push({ ...row, idx: idx++ });
      if (batch.length >= batchSize) {
        opts.onProgress?.({ bytesRead, totalBytes: size, rows: idx });
        yield batch;
        batch = [];
      }
    }
  }
  for (const row of rows.end()) batch.push({ ...row, idx: idx++ });
  if (batch.length) {
    opts.onProgress?.({ bytesRead, totalBytes: size, rows: idx });
    yield batch;
  }
  if (idx === 0) throw fail(`${name} has no inputs (${size === 0 ? 'it is empty' : rows.emptyReason()}).`);
}

/** How many rows readInputs would give (reads the whole file, streamed). */
export async function countInputs(path: string, opts: ReadInputsOptions = {}): Promise<number> {
  let n = 0;
  for await (const batch of readInputs(path, opts)) n += batch.length;
  return n;
}

async function checkFile(path: string, opts: ReadInputsOptions): Promise<{ size: number; format: InputFormat }> {
  const name = basename(path);
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw fail(`No file at ${path}: check the path (it is read on the machine that runs the studio).`);
    }
    throw fail(`Cannot read ${path} (${code ?? (e as Error).message}): check that the studio may read it.`);
  }
  if (info.isDirectory()) {
    throw fail(`${path} is a folder: give the path of a .txt, .csv, .tsv or .jsonl file in it.`);
  }
  if (!info.isFile()) throw fail(`${path} is not a regular file: give a .txt, .csv, .tsv or .jsonl file.`);
  const format = opts.format ?? inputFormatOf(path);
  if (!format) {
    throw fail(
      `Cannot tell the format of ${name} from its name: name it .txt, .csv, .tsv, .jsonl or .ndjson, ` +
        'or choose the format (txt, csv, tsv or jsonl).',
    );
  }
  if (format === 'txt' && (opts.column !== undefined || opts.goldColumn !== undefined)) {
    throw fail(
      `${name} is read as plain text, one input a line, which has no columns: ` +
        'use a CSV, TSV or JSONL file to name a column or a gold column.',
    );
  }
  return { size: info.size, format };
}

/** The file's text in pieces: NUL bytes (binary) and invalid UTF-8 refused; the BOM dropped. */
async function* decodeText(
  path: string,
  name: string,
  signal: AbortSignal | undefined,
  onBytes: (n: number) => void,
): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let offset = 0;
  const stream = createReadStream(path, { highWaterMark: CHUNK_BYTES });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      signal?.throwIfAborted();
      const nul = chunk.indexOf(0);
      if (nul >= 0) {
        throw fail(
          `${name} is not text: it holds a NUL byte (at byte ${count(offset + nul)}), as binary files and ` +
            'UTF-16 text do. Give a UTF-8 text file (save it as UTF-8).',
        );
      }
      const text = decodeOrFail(() => decoder.decode(chunk, { stream: true }), name, offset);
      offset += chunk.length;
      onBytes(chunk.length);
      yield text;
    }
    yield decodeOrFail(() => decoder.decode(), name, offset);
  } finally {
    stream.destroy();
  }
}

function decodeOrFail(decode: () => string, name: string, offset: number): string {
  try {
    return decode();
  } catch {
    throw fail(
      `${name} is not UTF-8 text (an invalid byte sequence after byte ${count(offset)}): save it as UTF-8 and try again.`,
    );
  }
}

/** Turns text pieces into rows (without idx); `end` flushes the last one. */
interface RowReader {
  push(piece: string): Omit<InputRow, 'idx'>[];
  end(): Omit<InputRow, 'idx'>[];
  emptyReason(): string;
}

function rowReader(format: InputFormat, name: string, opts: ReadInputsOptions, maxRowChars: number): RowReader {
  if (format === 'txt')
    return lineRows(name, maxRowChars, (text, line) => (text.trim() === '' ? null : { text, line }));
  if (format === 'jsonl') return jsonlRows(name, opts, maxRowChars);
  return csvRows(name, format === 'tsv' ? '\t' : ',', opts, maxRowChars);
}

// ---------- lines (TXT, JSONL) ----------

function lineRows(
  name: string,
  maxRowChars: number,
  toRow: (text: string, line: number) => Omit<InputRow, 'idx'> | null,
): RowReader {
  const lines = new LineSplitter(name, maxRowChars);
  const map = (ls: [string, number][]) => ls.flatMap(([t, l]) => toRow(t, l) ?? []);
  return {
    push: (piece) => map(lines.push(piece)),
    end: () => map(lines.end()),
    emptyReason: () => 'only blank lines',
  };
}

/** Splits pieces of text into lines (CR before LF dropped), each bounded by maxRowChars. */
class LineSplitter {
  #pending: string[] = [];
  #pendingChars = 0;
  #line = 1;
  constructor(
    private readonly name: string,
    private readonly max: number,
  ) {}

  push(piece: string): [string, number][] {
    const out: [string, number][] = [];
    let from = 0;
    for (let nl = piece.indexOf('\n'); nl >= 0; nl = piece.indexOf('\n', from)) {
      this.#add(piece.slice(from, nl));
      out.push([this.#take(), this.#line++]);
      from = nl + 1;
    }
    if (from < piece.length) this.#add(piece.slice(from));
    return out;
  }

  end(): [string, number][] {
    return this.#pendingChars > 0 ? [[this.#take(), this.#line]] : [];
  }

  #add(text: string): void {
    this.#pendingChars += text.length;
    if (this.#pendingChars > this.max + 1) throw tooLong(this.name, `Line ${count(this.#line)}`, this.max);
    this.#pending.push(text);
  }

  #take(): string {
    let text = this.#pending.join('');
    this.#pending = [];
    this.#pendingChars = 0;
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text.length > this.max) throw tooLong(this.name, `Line ${count(this.#line)}`, this.max);
    return text;
  }
}

function tooLong(name: string, where: string, max: number): StudioError {
  return fail(
    `${where} of ${name} is longer than ${count(max)} characters: shorten it, or raise the row limit ` +
      '(is the file in the right format?).',
  );
}

function jsonlRows(name: string, opts: ReadInputsOptions, maxRowChars: number): RowReader {
  let field = opts.column;
  return lineRows(name, maxRowChars, (text, line) => {
    if (text.trim() === '') return null;
    const obj = parseJsonObject(text, name, line);
    field ??= JSONL_TEXT_FIELDS.find((f) => f in obj);
    if (field === undefined) {
      throw fail(
        `Line ${count(line)} of ${name} has none of the fields ${listWords(JSONL_TEXT_FIELDS.map((f) => `"${f}"`))}: ` +
          `choose the field that holds the input (it has ${fieldList(obj)}).`,
      );
    }
    if (!(field in obj))
      throw fail(`Line ${count(line)} of ${name} has no "${field}" field (it has ${fieldList(obj)}).`);
    const value = scalar(obj[field]);
    if (value === null) {
      throw fail(`Line ${count(line)} of ${name}: "${field}" is not text or a number; each input must be a string.`);
    }
    return { text: value, line, ...goldOf(opts.goldColumn === undefined ? null : scalar(obj[opts.goldColumn])) };
  });
}

function parseJsonObject(text: string, name: string, line: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw fail(
      `Line ${count(line)} of ${name} is not JSON (${(e as Error).message}): each line must be one JSON object.`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fail(
      `Line ${count(line)} of ${name} is not a JSON object: each line must be one object like {"text": "..."}.`,
    );
  }
  return value as Record<string, unknown>;
}

function fieldList(obj: Record<string, unknown>): string {
  const keys = Object.keys(obj);
  if (keys.length === 0) return 'no fields';
  return listWords(keys.slice(0, 10).map((k) => `"${k}"`)) + (keys.length > 10 ? ' and more' : '');
}

function scalar(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

function goldOf(gold: string | null | undefined): { gold?: string } {
  return gold && gold.trim() !== '' ? { gold: gold.trim() } : {};
}

// ---------- CSV / TSV ----------

function csvRows(name: string, delimiter: string, opts: ReadInputsOptions, maxRowChars: number): RowReader {
  const parser = new CsvParser(name, delimiter, maxRowChars);
  let header: string[] | null = null;
  let textCol = 0;
  let goldCol = -1;
  const toRows = (records: CsvRecord[]) =>
    records.flatMap((r) => {
      if (!header) {
        header = r.fields.map((f) => f.trim());
        textCol = columnIndex(header, opts.column, name, 'column') ?? 0;
        goldCol = columnIndex(header, opts.goldColumn, name, 'gold column') ?? -1;
        return [];
      }
      const text = r.fields[textCol] ?? '';
      if (text.trim() === '') return [];
      return [{ text, line: r.line, ...goldOf(goldCol >= 0 ? r.fields[goldCol] : undefined) }];
    });
  return {
    push: (piece) => toRows(parser.push(piece)),
    end: () => toRows(parser.end()),
    emptyReason: () =>
      header
        ? `only the header row "${header.join(delimiter)}", or no text in column "${header[textCol] ?? ''}"`
        : 'only blank lines',
  };
}

function columnIndex(header: string[], wanted: string | undefined, name: string, what: string): number | null {
  if (wanted === undefined) return null;
  const i = header.indexOf(wanted.trim());
  if (i < 0) {
    const columns = header.map((h) => h || '(blank)').join(', ');
    throw fail(`No ${what} "${wanted}" in ${name}: its columns are ${columns}.`);
  }
  return i;
}

interface CsvRecord {
  fields: string[];
  line: number;
}

const QUOTE = 34;
const LF = 10;
enum S {
  FieldStart,
  Unquoted,
  Quoted,
  /** A quote inside a quoted field: a doubled quote or the closing one. */
  QuoteSeen,
}

/**
 * RFC 4180 as a state machine over pieces of text: fields are sliced out of each piece (no per-character
 * string building), and a record longer than maxRowChars is refused before it is kept. Lenient where the
 * RFC is strict: a quote in the middle of an unquoted field, or text after a closing quote, is kept as text.
 */
class CsvParser {
  #state = S.FieldStart;
  #field = '';
  #fields: string[] = [];
  #chars = 0;
  #line = 1;
  #recordLine = 1;
  readonly #delim: number;
  constructor(
    private readonly name: string,
    delimiter: string,
    private readonly max: number,
  ) {
    this.#delim = delimiter.charCodeAt(0);
  }

  push(piece: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    let start = 0;
    for (let i = 0; i < piece.length; i++) {
      const c = piece.charCodeAt(i);
      if (this.#state === S.FieldStart) {
        if (c === QUOTE) {
          this.#state = S.Quoted;
          start = i + 1;
          continue;
        }
        this.#state = S.Unquoted; // the character belongs to the unquoted field
        start = i;
      }
      switch (this.#state) {
        case S.Unquoted:
          if (c === this.#delim) this.#endField(piece.slice(start, i), S.FieldStart);
          else if (c === LF) this.#endRecord(piece.slice(start, i), out, true);
          break;
        case S.Quoted:
          if (c === QUOTE) {
            this.#append(piece.slice(start, i));
            this.#state = S.QuoteSeen;
          } else if (c === LF) this.#line++;
          break;
        case S.QuoteSeen:
          if (c === QUOTE) {
            this.#append('"');
            this.#state = S.Quoted;
            start = i + 1;
          } else if (c === this.#delim) this.#endField('', S.FieldStart);
          else if (c === LF) this.#endRecord('', out, true);
          else if (c !== 13) {
            this.#state = S.Unquoted;
            start = i;
          }
          break;
      }
    }
    if (this.#state === S.Unquoted || this.#state === S.Quoted) this.#append(piece.slice(start));
    return out;
  }

  end(): CsvRecord[] {
    if (this.#state === S.Quoted) {
      throw fail(
        `A quoted field in ${this.name} opened on line ${count(this.#recordLine)} is never closed: ` +
          'check for a missing closing quote (")',
      );
    }
    const out: CsvRecord[] = [];
    if (this.#state !== S.FieldStart || this.#fields.length > 0) this.#endRecord('', out, false);
    return out;
  }

  #append(text: string): void {
    this.#chars += text.length;
    if (this.#chars > this.max + 1) throw tooLong(this.name, `The row on line ${count(this.#recordLine)}`, this.max);
    this.#field += text;
  }

  #endField(tail: string, next: S): void {
    this.#append(tail);
    this.#fields.push(this.#field);
    this.#field = '';
    this.#state = next;
  }

  #endRecord(tail: string, out: CsvRecord[], newline: boolean): void {
    this.#endField(tail, S.FieldStart);
    const fields = this.#fields;
    const last = fields.length - 1;
    if (fields[last]!.endsWith('\r')) fields[last] = fields[last]!.slice(0, -1);
    if (fields.reduce((n, f) => n + f.length, 0) > this.max) {
      throw tooLong(this.name, `The row on line ${count(this.#recordLine)}`, this.max);
    }
    const blank = fields.length === 1 && fields[0] === '';
    if (!blank) out.push({ fields, line: this.#recordLine });
    this.#fields = [];
    this.#chars = 0;
    if (newline) this.#line++;
    this.#recordLine = this.#line;
  }
}

// CLIP's tokenizer from a Hugging Face tokenizer.json (byte-level BPE, lower-cased, `</w>` word ends),
// through @huggingface/tokenizers; this file adds what CLIPTokenizer does around it: one row per text of
// exactly the context length, <|startoftext|> ... <|endoftext|>, truncated keeping <|endoftext|> last
// (OpenAI's `truncate=True`), padded with the pad token (<|endoftext|> in OpenAI's files).
//
// Public API
//   ClipTokenizer.fromDir(dir, contextLength)   reads tokenizer.json (+ tokenizer_config.json when present)
//   new ClipTokenizer(tokenizerJson, tokenizerConfig, contextLength)
//   tok.encode(text) -> number[]                 contextLength ids
//   tok.encodeBatch(texts) -> HostTensor         int64 [B, contextLength], the text tower's input
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { type HostTensor } from '../graph/ir.js';

const SOT = '<|startoftext|>';
const EOT = '<|endoftext|>';

export class ClipTokenizer {
  readonly sot: number;
  readonly eot: number;
  readonly pad: number;
  readonly #tok: Tokenizer;

  constructor(
    tokenizerJson: object,
    tokenizerConfig: Record<string, unknown>,
    readonly contextLength: number,
  ) {
    if (!Number.isInteger(contextLength) || contextLength < 2) {
      throw new Error(`CLIP tokenizer: context length ${contextLength} must be an integer >= 2`);
    }
    this.#tok = new Tokenizer(tokenizerJson, tokenizerConfig);
    const id = (token: string, what: string) => {
      const v = this.#tok.token_to_id(token);
      if (v === undefined) throw new Error(`CLIP tokenizer: tokenizer.json has no ${what} token '${token}'`);
      return v;
    };
    this.sot = id(SOT, 'start-of-text');
    this.eot = id(EOT, 'end-of-text');
    const padToken = tokenizerConfig.pad_token;
    const padName =
      typeof padToken === 'string'
        ? padToken
        : padToken && typeof padToken === 'object' && 'content' in padToken
          ? String((padToken as { content: unknown }).content)
          : EOT;
    this.pad = id(padName, 'pad');
  }

  static async fromDir(dir: string, contextLength: number): Promise<ClipTokenizer> {
    const file = path.join(dir, 'tokenizer.json');
    const configFile = path.join(dir, 'tokenizer_config.json');
    let json: object;
    let config: Record<string, unknown> = {};
    try {
      json = JSON.parse(await readFile(file, 'utf8')) as object;
      if (existsSync(configFile)) config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${dir}: cannot read the CLIP tokenizer: ${(e as Error).message}`, { cause: e });
    }
    return new ClipTokenizer(json, config, contextLength);
  }

  /** <|startoftext|> tokens <|endoftext|>, truncated or padded to the context length. */
  encode(text: string): number[] {
    const body = this.#tok.encode(text, { add_special_tokens: false }).ids;
    let ids = [this.sot, ...body, this.eot];
    if (ids.length > this.contextLength) {
      ids = ids.slice(0, this.contextLength);
      ids[ids.length - 1] = this.eot;
    }
    while (ids.length < this.contextLength) ids.push(this.pad);
    return ids;
  }

  encodeBatch(texts: readonly string[]): HostTensor {
    const data = new BigInt64Array(texts.length * this.contextLength);
    texts.forEach((t, i) => this.encode(t).forEach((id, j) => (data[i * this.contextLength + j] = BigInt(id))));
    return { dtype: 'int64', dims: [texts.length, this.contextLength], data };
  }
}

// What the text runtime (engine/text) takes and gives: shared by the compute worker's text tasks and their
// callers on the main thread (StudioCompute.textScore / textGenerate / textInfo). Types only.

/** A causal LM folder as transformers.js reads it: config.json, tokenizer.json, onnx/<model file>. */
export interface TextModelRef {
  /** The model folder (a catalog model under <data>/models/<id>, or a folder of the user's own). */
  dir: string;
  /**
   * Which ONNX file of the folder's onnx/ (transformers.js' dtype names): 'fp32' model.onnx, 'q8'
   * model_quantized.onnx, 'q4' model_q4.onnx, 'fp16' model_fp16.onnx. Default: the catalog's, else the
   * first that exists in that order of preference (fp32, q8, q4, fp16).
   */
  dtype?: 'fp32' | 'fp16' | 'q8' | 'q4';
}

export interface TextModelInfo {
  /** config.json's model_type ('gpt2', 'llama', 'qwen2', ...). */
  modelType: string;
  vocabSize: number;
  /** The longest input it takes, in tokens (n_positions / max_position_embeddings). */
  maxPositions: number;
  /** The ONNX file it runs (relative to the folder). */
  onnxFile: string;
  /** End-of-text token ids. */
  eosTokenIds: number[];
}

export interface ScoreArgs {
  model: TextModelRef;
  provider?: string;
  /** Contexts; each is scored with every continuation. */
  prompts: string[];
  /**
   * The continuations whose log-likelihood is wanted, exactly as they follow the prompt (a label after
   * "Answer:" is usually given with its leading space: " Positive"). Tokenized on their own (no special
   * tokens) and appended to the prompt's tokens.
   */
  continuations: string[];
}

export interface ScoreResult {
  /** logprobs[i][j]: the sum over continuation j's tokens of log p(token | prompt i, earlier tokens). */
  logprobs: number[][];
  /** Token ids of each continuation. */
  continuationTokens: number[][];
  /** Tokens in each prompt (after truncation none: a prompt that does not fit is an error). */
  promptTokens: number[];
  provider: string;
}

export interface GenerateArgs {
  model: TextModelRef;
  provider?: string;
  prompt: string;
  /** New tokens at most (1..4096). */
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus sampling (1 = off). */
  topP: number;
  /** Generation stops when the text produced so far ends with one of these (the stop text is cut off). */
  stop: string[];
  seed: number;
}

export interface GenerateResult {
  /** The continuation (without the prompt, without the stop sequence). */
  text: string;
  /** New tokens produced. */
  tokens: number;
  /** Why it ended: a stop sequence, maxTokens, or the end-of-text token. */
  finish: 'stop' | 'length' | 'eos';
  provider: string;
}

/** What text.generate streams while it runs: the text produced so far, a token at a time. */
export interface GenerateStreamMessage {
  delta: string;
  tokens: number;
}

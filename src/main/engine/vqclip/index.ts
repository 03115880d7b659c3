// VQGAN+CLIP generation, pure compute: the `vqclip.generate` task of the compute worker and the types the
// studio imports (as types) to call it through task-client.ts.
//
//   prompts.ts     the `text:weight:stop | ... ^ ...` syntax (linear-time parser, bounded sizes)
//   prng.ts        the seeded generator (xoshiro128**, Box-Muller), per-step sub-streams
//   cutouts.ts     the cutouts' random parameters (host) and their in-graph linear maps
//   step-graph.ts  one optimisation step as one graph (quantise, decode, cutouts, CLIP, losses, grad, optimiser)
//   generate.ts    the task: checks, prompt embeddings, start, the loop, stream messages, pause state
export {
  GENERATE_LIMITS,
  generate,
  validateGenerateArgs,
  vqclipTasks,
  type GeneratePrompt,
  type GenerateSettings,
  type GenerateStream,
  type GenerateTaskArgs,
  type GenerateTaskResult,
} from './generate.js';
export {
  PROMPT_LIMITS,
  PromptError,
  formatPrompt,
  parsePrompt,
  parsePrompts,
  type Phrase,
  type Prompt,
} from './prompts.js';
export type { CutMethod } from './cutouts.js';
export type { Optimizer } from './step-graph.js';

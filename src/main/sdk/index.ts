// Foundation Studio as a TypeScript library: prompt-made models and CLIP classifiers in a few lines, run
// through the same services as the app and the CLI (every run lands in the studio's history).
//
//   import { createClipClassifier, createPromptModel } from './src/main/sdk/index.js';
//   const qa = createPromptModel({ model: 'gpt2', prompt: 'Q: Capital of India?\nA: Delhi\n\nQ: {input}\nA:' });
//   console.log(await qa.run(['Capital of France?']));
//   const fake = createClipClassifier({ labels: ['is photoshopped', 'is not photoshopped'] });
//   console.log((await fake.run('holiday-photos/')).results);
//   await qa.close(); await fake.close();
export { createClipClassifier, type ClipClassifier, type ClipClassifierOptions } from './classify.js';
export { createPromptModel, type PromptModel, type PromptModelOptions } from './prompt.js';

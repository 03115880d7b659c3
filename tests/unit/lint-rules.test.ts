// The layering lint rules bite: only the compute worker creates onnxruntime sessions, and only the
// runtime imports onnxruntime (eslint.config.js). Checked on code written to a path in each layer.
import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const eslint = new ESLint({ cwd: root });

async function importErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const createsSession = (from: string) =>
  `import { createSession } from '${from}';\nexport const load = (b: Uint8Array) => createSession(b);\n`;

describe('lint: sessions only in the compute worker', () => {
  it('refuses createSession in the studio, the engine (outside the worker), transports and the bench', async () => {
    for (const [file, from] of [
      ['src/main/studio/probe.ts', '../engine/runtime/ort.js'],
      ['src/main/engine/nets/probe.ts', '../runtime/ort.js'],
      ['src/main/engine/runtime/probe.ts', './ort.js'],
      ['src/main/cli/probe.ts', '../engine/runtime/ort.js'],
      ['src/main/electron/probe.ts', '../engine/runtime/ort.js'],
      ['bench/probe.ts', '../src/main/engine/runtime/ort.js'],
    ]) {
      expect(await importErrors(file!, createsSession(from!)), file).toEqual([
        expect.stringMatching(/'createSession' import .* Sessions are created only in the compute worker/),
      ]);
    }
  });

  it('allows it in the worker and in tests, and allows the rest of ort.ts everywhere in the engine', async () => {
    expect(await importErrors('src/main/engine/runtime/worker-core.ts', createsSession('./ort.js'))).toEqual([]);
    expect(await importErrors('src/main/engine/nets/probe.test.ts', createsSession('../runtime/ort.js'))).toEqual([]);
    expect(
      await importErrors(
        'src/main/engine/nets/probe.ts',
        "import { zeros } from '../runtime/ort.js';\nexport const z = zeros;\n",
      ),
    ).toEqual([]);
  });

  it('keeps onnxruntime itself inside the runtime, even in tests of other layers', async () => {
    const code = "import * as ort from 'onnxruntime-node';\nexport const o = ort;\n";
    expect(await importErrors('src/main/studio/probe.ts', code)).toEqual([
      expect.stringMatching(/Only src\/main\/engine\/runtime\/ort\.ts and providers\.ts import onnxruntime/),
    ]);
    expect(await importErrors('src/main/studio/probe.test.ts', code)).toHaveLength(1);
    expect(await importErrors('src/main/engine/runtime/ort.ts', code)).toEqual([]);
  });

  it('keeps transformers.js inside engine/text/lm.ts, whose sessions run in the compute worker', async () => {
    const code = "import { AutoTokenizer } from '@huggingface/transformers';\nexport const t = AutoTokenizer;\n";
    for (const file of ['src/main/studio/prompt/probe.ts', 'src/main/engine/text/probe.ts', 'src/main/cli/probe.ts']) {
      expect(await importErrors(file, code), file).toEqual([
        expect.stringMatching(/Only src\/main\/engine\/text\/lm\.ts imports transformers\.js/),
      ]);
    }
    expect(await importErrors('src/main/engine/text/lm.ts', code)).toEqual([]);
  });
});

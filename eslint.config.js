// Lint, plus the layering of docs/architecture.md as import rules: each layer may import only from
// the layers below it, each native dependency is owned by one module, and only the compute worker
// creates onnxruntime sessions.
import js from '@eslint/js';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const restrict = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });
const layer = (group, message) => ({ group, message });

const native = {
  ort: layer(
    ['onnxruntime-node', 'onnxruntime-common'],
    'Only src/main/engine/runtime/ort.ts and providers.ts import onnxruntime.',
  ),
  sqlite: layer(['better-sqlite3'], 'Only src/main/studio/history* imports better-sqlite3.'),
  sharp: layer(['sharp'], 'Only src/main/studio/images* (and image helpers) import sharp.'),
  electron: layer(['electron', 'electron/*'], 'Electron is imported only under src/main/electron and src/preload.'),
  transformers: layer(
    ['@huggingface/transformers'],
    'Only src/main/engine/text/lm.ts imports transformers.js: its sessions live in the compute worker, under the device lock.',
  ),
};
/**
 * Every model run goes through a DeviceRunner (engine/runtime/runner.ts): sessions are created only in the
 * compute worker (runtime/worker-core.ts), never on a thread that serves the UI. Tests and the bench's
 * in-thread contrast are the exceptions (their own blocks below).
 */
const noSessions = {
  regex: '(^|/)(runtime/)?ort(\\.js)?$',
  importNames: ['createSession'],
  message:
    'Sessions are created only in the compute worker: run models through runnerFor() (engine/runtime/runner.ts).',
};
/**
 * The files noSessions does not apply to: the worker itself; tests (they check the math in their own
 * thread); the finite-difference helper of the engine's tests; the bench's in-thread contrast.
 */
const SESSION_EXEMPT = [
  '**/*.test.ts',
  'src/main/engine/runtime/worker-core.ts',
  'src/main/engine/graph/fdcheck.ts',
  'bench/engine.ts',
];

/** A layer's import rules for `files` (but `ignores`), with noSessions except on SESSION_EXEMPT files. */
function layered(files, ignores, patterns) {
  return [
    { files, ignores: [...ignores, ...SESSION_EXEMPT], rules: restrict([...patterns, noSessions]) },
    // Nested arrays are an AND: a file in `files` that is also exempt keeps the layer's rules alone.
    {
      files: files.flatMap((f) => SESSION_EXEMPT.map((e) => [f, e])),
      ignores,
      rules: patterns.length ? restrict(patterns) : {},
    },
  ];
}

const upper = {
  api: layer(['**/main/api/**', '**/main/api/*'], 'The API layer sits above the studio and the engine.'),
  studio: layer(['**/studio/**', '**/studio/*'], 'The engine does not import application services.'),
  transports: layer(
    ['**/electron/**', '**/server/**', '**/cli/**', '**/main/electron/*', '**/main/server/*', '**/main/cli/*'],
    'Transports sit on top; lower layers never import them.',
  ),
  main: layer(['**/main/**', '**/preload/**'], 'The renderer sees only the StudioApi (src/shared).'),
};

export default tseslint.config(
  {
    ignores: [
      'out/**',
      'dist/**',
      'release/**',
      'node_modules/**',
      'test-results/**',
      'playwright-report/**',
      'tests/fixtures/generated/**',
      '.data/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...svelte.configs['flat/recommended'],
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: {
      parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] },
      globals: { ...globals.browser },
    },
  },
  // ---- layering ----
  {
    files: ['src/shared/**'],
    rules: restrict([
      native.ort,
      native.sqlite,
      native.sharp,
      native.electron,
      native.transformers,
      upper.main,
      layer(['node:*'], 'src/shared runs in the renderer too: no Node built-ins.'),
    ]),
  },
  {
    files: ['src/renderer/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: restrict([native.ort, native.sqlite, native.sharp, native.electron, native.transformers, upper.main]),
  },
  ...layered(
    ['src/main/base/**'],
    [],
    [
      native.ort,
      native.sqlite,
      native.sharp,
      native.electron,
      native.transformers,
      layer(
        ['**/engine/**', '**/studio/**', '**/api/**', '**/server/**', '**/cli/**', '**/electron/**'],
        'src/main/base imports nothing of the app.',
      ),
    ],
  ),
  ...layered(
    ['src/main/engine/**'],
    ['src/main/engine/runtime/ort.ts', 'src/main/engine/runtime/providers.ts', 'src/main/engine/text/lm.ts'],
    [
      native.ort,
      native.sqlite,
      native.sharp,
      native.electron,
      native.transformers,
      upper.studio,
      upper.api,
      upper.transports,
    ],
  ),
  ...layered(
    ['src/main/engine/text/lm.ts'],
    [],
    [native.ort, native.sqlite, native.sharp, native.electron, upper.studio, upper.api, upper.transports],
  ),
  ...layered(
    ['src/main/engine/runtime/ort.ts', 'src/main/engine/runtime/providers.ts'],
    [],
    [native.sqlite, native.sharp, native.electron, native.transformers, upper.studio, upper.api, upper.transports],
  ),
  ...layered(
    ['src/main/studio/**'],
    ['src/main/studio/history*', 'src/main/studio/images*'],
    [native.ort, native.sqlite, native.sharp, native.electron, native.transformers, upper.api, upper.transports],
  ),
  ...layered(
    ['src/main/studio/history*'],
    [],
    [native.ort, native.sharp, native.electron, native.transformers, upper.api, upper.transports],
  ),
  ...layered(
    ['src/main/studio/images*'],
    [],
    [native.ort, native.sqlite, native.electron, native.transformers, upper.api, upper.transports],
  ),
  ...layered(
    ['src/main/api/**'],
    [],
    [native.ort, native.sqlite, native.sharp, native.electron, native.transformers, upper.transports],
  ),
  ...layered(
    ['src/main/server/**', 'src/main/cli/**'],
    [],
    [native.ort, native.sqlite, native.sharp, native.electron, native.transformers],
  ),
  ...layered(['src/main/electron/**'], [], [native.ort, native.sqlite, native.sharp]),
  ...layered(['bench/**'], [], []),
);

// Lint, plus the layering of DESIGN.md as import rules: each layer may import only
// from the layers above it, and each native dependency is owned by one module.
import js from '@eslint/js';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const restrict = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });
const layer = (group, message) => ({ group, message });

const native = {
  ort: layer(['onnxruntime-node', 'onnxruntime-common'], 'Only src/main/engine/graph/runtime* imports onnxruntime.'),
  sqlite: layer(['better-sqlite3'], 'Only src/main/studio/history* imports better-sqlite3.'),
  sharp: layer(['sharp'], 'Only src/main/studio/images* (and image helpers) import sharp.'),
  electron: layer(['electron', 'electron/*'], 'Electron is imported only under src/main/electron and src/preload.'),
};
const upper = {
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
      upper.main,
      layer(['node:*'], 'src/shared runs in the renderer too: no Node built-ins.'),
    ]),
  },
  {
    files: ['src/renderer/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: restrict([native.ort, native.sqlite, native.sharp, native.electron, upper.main]),
  },
  {
    files: ['src/main/engine/**'],
    ignores: ['src/main/engine/graph/runtime*'],
    rules: restrict([native.ort, native.sqlite, native.sharp, native.electron, upper.studio, upper.transports]),
  },
  {
    files: ['src/main/engine/graph/runtime*'],
    rules: restrict([native.sqlite, native.sharp, native.electron, upper.studio, upper.transports]),
  },
  {
    files: ['src/main/studio/**'],
    ignores: ['src/main/studio/history*', 'src/main/studio/images*'],
    rules: restrict([native.ort, native.sqlite, native.sharp, native.electron, upper.transports]),
  },
  {
    files: ['src/main/studio/history*'],
    rules: restrict([native.ort, native.sharp, native.electron, upper.transports]),
  },
  {
    files: ['src/main/studio/images*'],
    rules: restrict([native.ort, native.sqlite, native.electron, upper.transports]),
  },
  {
    files: ['src/main/server/**', 'src/main/cli/**'],
    rules: restrict([native.ort, native.sqlite, native.sharp, native.electron]),
  },
  { files: ['src/main/electron/**'], rules: restrict([native.ort, native.sqlite, native.sharp]) },
);

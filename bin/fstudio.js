#!/usr/bin/env node
// The `fstudio` command: runs the TypeScript CLI in src/main/cli through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../src/main/cli/main.ts');
process.exitCode = await run(process.argv);

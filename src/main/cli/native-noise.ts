// Dawn, the WebGPU engine inside onnxruntime, writes warnings about limits it lowered straight to the
// process's stderr from native code ("Warning: maxDynamicUniformBuffersPerPipelineLayout artificially
// reduced from 1000000 to 16 ..."): nothing a user can act on, and no JavaScript API silences them.
// `fstudio doctor` probes WebGPU, so it runs itself as a child whose stderr is read line by line and
// passed on without them; the report says what matters instead (WebGPU running in software).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Dawn's lines about lowered limits. */
export const DAWN_NOISE = /^Warning: \w+ artificially reduced from \d+ to \d+\b/;

/** Set in the child, so it runs the command itself. */
const CHILD_ENV = 'FSTUDIO_NATIVE_NOISE_FILTERED';

/** The command of an argv (`node fstudio.js [--data-dir d] [--verbose] <command> ...`). */
export function commandOf(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--data-dir') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/** Whether this run should hand itself to a filtered child (doctor, not already the child). */
export function wantsFilteredRun(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  return commandOf(argv) === 'doctor' && env[CHILD_ENV] !== '1';
}

/** Runs this CLI again as a child with Dawn's lines taken out of its stderr; resolves to its exit code. */
export function runFiltered(argv: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...argv.slice(1)], {
      stdio: ['inherit', 'inherit', 'pipe'],
      env: { ...process.env, [CHILD_ENV]: '1' },
    });
    const lines = createInterface({ input: child.stderr!, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (!DAWN_NOISE.test(line)) process.stderr.write(`${line}\n`);
    });
    child.on('error', (e) => {
      process.stderr.write(`fstudio: could not start the doctor (${e.message}).\n`);
      resolve(1);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)));
  });
}

// The smoke test's side of the built app's process: build the app, start out/main/index.js under
// harness.ts (plain Node, `electron` resolved to the stand-in), ask it things (protocol.ts), and
// see how it ends.
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { APP_DATA_ENV, type Message, type OpName, type Ops, type Snapshot } from './protocol.js';

export const repo = fileURLToPath(new URL('../../', import.meta.url));
export const out = (...p: string[]) => path.join(repo, 'out', ...p);

/**
 * The installed `electron` package's version, or null where npm dropped it: it is an optional
 * dependency whose install step downloads the binary, and without ELECTRON_SKIP_BINARY_DOWNLOAD=1 a
 * failed download removes the package. electron-vite needs the package (not the binary) to build.
 */
export function electronPackageVersion(): string | null {
  try {
    const file = createRequire(path.join(repo, 'package.json')).resolve('electron/package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return null;
  }
}

/** `electron-vite build` (main, preload, renderer into out/), as `npm run build` does. */
export function buildApp(): void {
  const bin = path.join(repo, 'node_modules/electron-vite/bin/electron-vite.js');
  const r = spawnSync(process.execPath, [bin, 'build', '--logLevel', 'warn'], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 170_000,
  });
  if (r.status !== 0)
    throw new Error(`electron-vite build failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** What the app's process said as it ended; null when it died without saying (a crash). */
  report: { code: number; snapshot: Snapshot } | null;
}

export class AppProcess {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #nextId = 1;
  #output = '';
  #report: Exit['report'] = null;
  /** Resolves once the main module has run and 'ready' was emitted. */
  readonly started: Promise<void>;
  readonly exited: Promise<Exit>;

  /** Starts the built main module with the stand-in's app data in `appData`. */
  constructor(appData: string) {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && !['ELECTRON_RENDERER_URL', 'FSTUDIO_DATA_DIR', 'NODE_OPTIONS'].includes(k)) env[k] = v;
    env[APP_DATA_ENV] = appData;
    this.#child = fork(path.join(repo, 'tests/electron-main/harness.ts'), [out('main/index.js')], {
      cwd: repo,
      env,
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    for (const stream of [this.#child.stdout!, this.#child.stderr!])
      stream.on('data', (chunk: Buffer) => (this.#output += chunk.toString()));
    let started!: () => void;
    const startedOnce = new Promise<void>((resolve) => (started = resolve));
    this.#child.on('message', (m: Message) => {
      if (m.type === 'started') started();
      else if (m.type === 'exit') this.#report = { code: m.code, snapshot: m.snapshot };
      else {
        const p = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(new Error(m.message));
      }
    });
    this.exited = new Promise((resolve) => {
      this.#child.on('exit', (code, signal) => {
        for (const p of this.#pending.values()) p.reject(new Error(`the app's process ended:\n${this.#output}`));
        this.#pending.clear();
        resolve({ code, signal, report: this.#report });
      });
    });
    this.started = Promise.race([
      startedOnce,
      this.exited.then((e) => {
        throw new Error(`the app's process ended before it started (${e.code ?? e.signal}):\n${this.#output}`);
      }),
    ]);
    // A second instance ends without starting: that is only an error for whoever awaits `started`.
    this.started.catch(() => {});
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** What it printed (stdout and stderr), for failure messages. */
  get output(): string {
    return this.#output;
  }

  ask<K extends OpName>(op: K, req: Ops[K]['req']): Promise<Ops[K]['res']> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (this.#child.exitCode !== null || this.#child.signalCode !== null)
        return reject(new Error(`the app's process has ended:\n${this.#output}`));
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#child.send({ id, op, ...req });
    });
  }

  snapshot(): Promise<Snapshot> {
    return this.ask('snapshot', {});
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

/** The PNG's width and height from its IHDR chunk (a file or the bytes); null for anything else. */
export function pngSize(png: string | Uint8Array): { width: number; height: number } | null {
  if (typeof png === 'string' && !existsSync(png)) return null;
  const b = Buffer.from(typeof png === 'string' ? readFileSync(png) : png);
  const signature = '89504e470d0a1a0a';
  if (b.length < 24 || b.subarray(0, 8).toString('hex') !== signature) return null;
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

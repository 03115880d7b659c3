// `fstudio serve`: the studio in a browser, for a headless or remote machine.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../server/index.js';
import { loadServerToken } from '../server/token-file.js';
import { CliError } from './output.js';
import { openCliStudio, openReportProblems } from './studio-session.js';

export interface ServeOptions {
  /** Undefined: DEFAULT_PORT, or the next free one after it. */
  port?: number;
  host: string;
  /** A token given for this run (--token, $FSTUDIO_TOKEN); otherwise the data folder's server-token. */
  token?: string;
  /** Replace the data folder's server-token with a new one (old links and tabs stop working). */
  newToken?: boolean;
  open: boolean;
  webRoot?: string;
  allowHost?: string[];
}

export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../../out/web', import.meta.url));
const STUDIO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** The port `fstudio serve` uses unless told otherwise: the same one each time, so open tabs reconnect. */
export const DEFAULT_PORT = 8765;
/** Tried in turn when DEFAULT_PORT is taken, then any free port. */
const FALLBACK_PORTS = [...Array.from({ length: 9 }, (_, i) => DEFAULT_PORT + 1 + i), 0];

export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new CliError(`--port must be a whole number from 0 to 65535 (0 picks a free port), not "${value}".`);
  return n;
}

/** Best effort: a headless box has no browser, and that is fine. */
function openBrowser(url: string): void {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer.exe' : 'xdg-open';
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return;
  try {
    const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    /* no browser: the printed URL is enough */
  }
}

/**
 * On a fresh checkout out/web does not exist yet: build it with the checkout's own vite (a minute at
 * most), or say exactly what to run where that cannot be done.
 */
async function buildWebUi(webRoot: string): Promise<void> {
  const vite = path.join(STUDIO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const config = path.join(STUDIO_ROOT, 'vite.web.config.ts');
  const by = `In ${STUDIO_ROOT}, run \`npm run build:web\`, then \`fstudio serve\` again.`;
  if (!existsSync(vite) || !existsSync(config))
    throw new CliError(
      `The web UI is not built (no index.html in ${webRoot}) and its build tools are not installed. ` +
        `In ${STUDIO_ROOT}, run \`npm install\` and \`npm run build:web\`, then \`fstudio serve\` again.`,
    );
  process.stderr.write('The web UI is not built yet: building it once (npm run build:web)…\n');
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [vite, 'build', '--config', config, '--logLevel', 'warn'], {
      cwd: STUDIO_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('error', () => resolve(null));
    child.on('exit', (c) => resolve(c));
  });
  if (code !== 0 || !existsSync(path.join(webRoot, 'index.html')))
    throw new CliError(`Building the web UI failed (its errors are above). ${by}`);
  process.stderr.write('Built the web UI.\n');
}

export async function serve(dataDir: string, opts: ServeOptions): Promise<number> {
  const webRoot = path.resolve(opts.webRoot ?? DEFAULT_WEB_ROOT);
  if (!existsSync(path.join(webRoot, 'index.html'))) {
    if (opts.webRoot !== undefined && webRoot !== path.resolve(DEFAULT_WEB_ROOT))
      throw new CliError(
        `No index.html in ${webRoot}: --web-root must name a built web UI (npm run build:web makes out/web).`,
      );
    await buildWebUi(webRoot);
  }
  if (opts.token !== undefined && opts.token.length < 16)
    throw new CliError(
      '--token must be at least 16 characters long (leave it out to use the one kept in the data folder).',
    );
  if (opts.token !== undefined && opts.newToken)
    throw new CliError(
      '--new-token replaces the token kept in the data folder; with --token you give one yourself. Use one of them.',
    );

  const studio = await openCliStudio(dataDir, { runQueue: true });
  let stored: Awaited<ReturnType<typeof loadServerToken>> | null = null;
  if (opts.token === undefined)
    try {
      stored = await loadServerToken(dataDir, { rotate: opts.newToken });
    } catch (e) {
      await studio.close();
      throw new CliError(
        `Cannot keep the server's token in ${dataDir} (${(e as Error).message}). Check that the data folder is writable, or give a token with --token.`,
      );
    }
  let server;
  try {
    server = await startServer({
      studio,
      host: opts.host,
      port: opts.port ?? DEFAULT_PORT,
      fallbackPorts: opts.port === undefined ? FALLBACK_PORTS : [],
      token: opts.token ?? stored!.token,
      webRoot,
      allowedHosts: opts.allowHost,
    });
  } catch (e) {
    await studio.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new CliError(`Port ${opts.port} is already in use. Pick another with --port, or 0 for any free port.`);
    if (code === 'EACCES')
      throw new CliError(
        `Port ${opts.port} needs administrator rights on this system. Pick one above 1023 with --port.`,
      );
    if (code === 'EADDRNOTAVAIL')
      throw new CliError(`This machine has no address ${opts.host}. Leave --host out to use 127.0.0.1.`);
    throw e;
  }

  // Listen for the stop signals before saying we are ready: whoever reads "Press Ctrl+C" may
  // send one at once.
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stderr.write(`\nStopping (${signal})...\n`);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

  if (opts.host !== '127.0.0.1' && opts.host !== 'localhost' && opts.host !== '::1')
    process.stderr.write(
      `Warning: listening on ${opts.host}, not only this machine. Anyone who can reach port ${server.port} ` +
        'and learns the token can use the studio, over plain HTTP. Prefer the default 127.0.0.1 with an SSH tunnel: ' +
        `ssh -L ${server.port}:127.0.0.1:${server.port} <this-host>\n`,
    );
  const link = `${server.url}?token=${encodeURIComponent(server.token)}`;
  if (server.portTaken !== null)
    process.stderr.write(
      `Port ${server.portTaken} is taken (another program, or another fstudio serve), so this server uses ${server.port}. ` +
        `Tabs opened on ${server.portTaken} will not reach it: open the link below. To choose, pass --port.\n`,
    );
  process.stdout.write(`Foundation Studio is serving at ${link}\n`);
  process.stderr.write(`Data folder: ${dataDir}\n`);
  if (stored?.created === 'rotated')
    process.stderr.write(`New token written to ${stored.file}: links and tabs from before no longer get in.\n`);
  else if (stored?.created === 'replaced-invalid')
    process.stderr.write(`The token in ${stored.file} was unreadable; a new one is written there.\n`);
  else if (stored?.narrowed)
    process.stderr.write(`${stored.file} was readable by other users; it is now readable by you only.\n`);
  // The data folder's check runs in the background: its findings are printed when it is done.
  void studio.checked.then((r) => {
    const problems = openReportProblems(r);
    if (problems.length > 0)
      process.stderr.write(`Warning: ${problems.join(' ')} Run \`fstudio doctor\` for the full report.\n`);
  });
  process.stderr.write('Press Ctrl+C to stop.\n');
  if (opts.open) openBrowser(link);

  await stopped;
  await server.close();
  await studio.close();
  process.stderr.write('Stopped.\n');
  return 0;
}

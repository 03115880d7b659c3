// `fstudio serve`: the studio in a browser, for a headless or remote machine.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../server/index.js';
import { CliError } from './output.js';
import { openCliStudio, openReportProblems } from './studio-session.js';

export interface ServeOptions {
  port: number;
  host: string;
  token?: string;
  open: boolean;
  webRoot?: string;
  allowHost?: string[];
}

export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../../out/web', import.meta.url));

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

export async function serve(dataDir: string, opts: ServeOptions): Promise<number> {
  const webRoot = path.resolve(opts.webRoot ?? DEFAULT_WEB_ROOT);
  if (!existsSync(path.join(webRoot, 'index.html')))
    throw new CliError(
      `The web UI is not built (no index.html in ${webRoot}). Run \`npm run build:web\` first, or \`npm run serve\`, which builds it and then serves.`,
    );
  if (opts.token !== undefined && opts.token.length < 16)
    throw new CliError('--token must be at least 16 characters long (leave it out for a random one).');

  const studio = await openCliStudio(dataDir, { runQueue: true });
  let server;
  try {
    server = await startServer({
      studio,
      host: opts.host,
      port: opts.port,
      token: opts.token,
      webRoot,
      allowedHosts: opts.allowHost,
    });
  } catch (e) {
    await studio.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new CliError(`Port ${opts.port} is already in use. Pick another with --port, or 0 for any free port.`);
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
  process.stdout.write(`Foundation Studio is serving at ${link}\n`);
  process.stderr.write(`Data folder: ${dataDir}\n`);
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

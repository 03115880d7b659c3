// `fstudio`: the studio's services from a terminal (doctor, serve, import, gallery).
// bin/fstudio.js registers tsx and calls run(); every command opens the studio on the data
// folder of --data-dir / FSTUDIO_DATA_DIR / the app's own folder, and closes it when done.
import { Command, CommanderError, Option } from 'commander';
import { EXPLICIT_PROVIDERS } from '../../shared/providers.js';
import { resolveDataDir } from './data-dir.js';
import { doctor } from './doctor.js';
import { galleryExport, galleryList, galleryShow, parseId, parseKind, parseLimit, parseOffset } from './gallery.js';
import { appVersion } from '../base/app-version.js';
import { runFiltered, wantsFilteredRun } from './native-noise.js';
import { importCommand } from './import.js';
import { CliError, errorLine } from './output.js';
import { DEFAULT_PORT, parsePort, serve, type ServeOptions } from './serve.js';
import { registerEmbedCommands } from './embed.js';
import { registerModelsCommands } from './models.js';
import { registerVqganCommands } from './vqgan.js';
import { normalizeGenerateArgs, registerGenerateCommand } from './generate.js';
import { registerPromptCommands } from './prompt.js';
import { registerClassifyCommand } from './classify.js';

interface GlobalOptions {
  dataDir?: string;
  verbose?: boolean;
}

const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

/** Commander's own parsers throw its InvalidArgumentError; ours throw CliError with the whole sentence. */
const parser =
  <T>(fn: (v: string) => T) =>
  (v: string): T =>
    fn(v);

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('fstudio')
    .description(
      'Foundation Studio from the command line: generate pictures, run prompt-made models and CLIP classifiers, import and browse images, serve the studio.',
    )
    .option('--data-dir <dir>', "data folder (default: $FSTUDIO_DATA_DIR, else the desktop app's folder)")
    .version(appVersion(), '-V, --version', 'print the version of Foundation Studio')
    .option('--verbose', 'print stack traces with errors')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      examples([
        'fstudio doctor',
        'fstudio serve --port 8765',
        'fstudio import ~/Pictures/sd-outputs',
        'fstudio gallery search "lighthouse at dusk" --json',
        'fstudio models pull clip-vit-base-patch32',
      ]),
    );

  const dataDir = (cmd: Command) => resolveDataDir((cmd.optsWithGlobals() as GlobalOptions).dataDir);

  program
    .command('doctor')
    .description(
      'Report versions, execution providers (each tried with a tiny session), the data folder and free disk.',
    )
    .option('--json', 'print the report as JSON')
    .option('--gradcheck', 'also check every gradient rule against finite differences')
    .addOption(new Option('--provider <name>', 'execution provider for --gradcheck').choices(EXPLICIT_PROVIDERS))
    .addHelpText(
      'after',
      examples([
        'fstudio doctor',
        'fstudio doctor --json | jq .providers',
        'fstudio doctor --gradcheck --provider cpu',
      ]),
    )
    .action(async (opts: { json?: boolean; gradcheck?: boolean; provider?: string }, cmd: Command) => {
      // The provider report always tries every provider; --provider only picks where --gradcheck runs.
      if (opts.provider !== undefined && !opts.gradcheck)
        throw new CliError(
          `--provider ${opts.provider} applies only to --gradcheck (the report always tries every provider). ` +
            `Add --gradcheck, or leave out --provider.`,
          2,
        );
      setExit(await doctor(dataDir(cmd), opts));
    });

  program
    .command('serve')
    .description('Serve the studio UI and API on this machine (127.0.0.1) for a browser; prints a URL with a token.')
    .option(
      '--port <n>',
      `port to listen on (default ${DEFAULT_PORT}, or the next free one after it); 0 picks any free one`,
      parser(parsePort),
    )
    .option(
      '--host <address>',
      'interface to bind; anything but 127.0.0.1 exposes the studio to the network',
      '127.0.0.1',
    )
    .option(
      '--token <token>',
      'access token for this run (default: the one kept in <data folder>/server-token; or $FSTUDIO_TOKEN)',
    )
    .option('--new-token', 'replace the kept token with a new one: old links and open tabs stop working')
    .option('--allow-host <names...>', 'more host names the server answers to (a DNS name of this machine)')
    .option('--no-open', 'do not open a browser')
    .option('--web-root <dir>', 'folder of the built web UI (default: out/web)')
    .addHelpText(
      'after',
      examples([
        'fstudio serve',
        'fstudio serve --no-open --new-token',
        'ssh -L 8765:127.0.0.1:8765 gpu-box   # then, on gpu-box: fstudio serve --port 8765 --no-open',
        'fstudio serve --host 0.0.0.0 --allow-host gpu-box.lan --port 8765   # the whole network; read the warning',
      ]),
    )
    .action(async (opts: ServeOptions, cmd: Command) => {
      setExit(await serve(dataDir(cmd), { ...opts, token: opts.token ?? process.env.FSTUDIO_TOKEN }));
    });

  program
    .command('import')
    .description(
      'Import image files (or folders of them) into the gallery, reading the prompts and settings of AUTOMATIC1111, ComfyUI, InvokeAI, NovelAI, Fooocus and SwarmUI.',
    )
    .argument('<files...>', 'image files or folders')
    .option('--json', 'print the import report as JSON')
    .addHelpText(
      'after',
      examples(['fstudio import a.png b.jpg', 'fstudio import ~/stable-diffusion-webui/outputs --json > report.json']),
    )
    .action(async (files: string[], opts: { json?: boolean }, cmd: Command) => {
      setExit(await importCommand(dataDir(cmd), files, opts));
    });

  const gallery = program
    .command('gallery')
    .description('List, search, show and export gallery items.')
    .addHelpText(
      'after',
      examples([
        'fstudio gallery list --favourites',
        'fstudio gallery search cat',
        'fstudio gallery show 42',
        'fstudio gallery export 42 -o cat.png',
      ]),
    );

  const listOptions = (c: Command) =>
    c
      .option('--limit <n>', 'items per page (1-500)', parser(parseLimit), 50)
      .option('--offset <n>', 'skip this many items', parser(parseOffset), 0)
      .option('--kind <kind>', 'only runs of this kind: generate, prompt, classify, import', parser(parseKind))
      .option('--favourites', 'only favourites')
      .option('--json', 'print the page as JSON');

  listOptions(gallery.command('list').description('List gallery items, newest first.'))
    .addHelpText('after', examples(['fstudio gallery list', 'fstudio gallery list --kind import --limit 10 --json']))
    .action(async (opts: Parameters<typeof galleryList>[1], cmd: Command) => {
      setExit(await galleryList(dataDir(cmd), opts));
    });

  listOptions(
    gallery.command('search').description('Full-text search over prompts, labels, notes, tags and file names.'),
  )
    .argument('<text>', 'words to find')
    .addHelpText(
      'after',
      examples(['fstudio gallery search lighthouse', 'fstudio gallery search "red fox" --favourites --json']),
    )
    .action(async (text: string, opts: Parameters<typeof galleryList>[1], cmd: Command) => {
      setExit(await galleryList(dataDir(cmd), opts, text));
    });

  gallery
    .command('show')
    .description('Show an item: its prompt, negative prompt and every parameter, its file, tags and note.')
    .argument('<id>', 'item id (from `fstudio gallery list`)', parser(parseId))
    .option('--json', 'print the item as JSON')
    .addHelpText('after', examples(['fstudio gallery show 42', 'fstudio gallery show 42 --json | jq .metadata']))
    .action(async (id: number, opts: { json?: boolean }, cmd: Command) => {
      setExit(await galleryShow(dataDir(cmd), id, opts));
    });

  gallery
    .command('export')
    .description('Write an item as a PNG with its metadata (our JSON chunk and an AUTOMATIC1111 "parameters" chunk).')
    .argument('<id>', 'item id (from `fstudio gallery list`)', parser(parseId))
    .option('-o, --output <file>', "output file, or - for stdout (default: the item's name in this folder)")
    .option('--force', 'replace an existing file')
    .option('--with-note-and-tags', "put your note and tags in the file too (default: the studio's export setting)")
    .addHelpText(
      'after',
      examples([
        'fstudio gallery export 42',
        'fstudio gallery export 42 -o ~/Desktop/fox.png',
        'fstudio gallery export 42 -o - | display',
      ]),
    )
    .action(async (id: number, opts: { output?: string; force?: boolean; withNoteAndTags?: boolean }, cmd: Command) => {
      setExit(
        await galleryExport(dataDir(cmd), id, {
          ...opts,
          ...(opts.withNoteAndTags ? { noteAndTags: true } : {}),
        }),
      );
    });

  registerModelsCommands(program, () => resolveDataDir((program.opts() as GlobalOptions).dataDir), { setExit });
  registerEmbedCommands(program, dataDir);
  registerVqganCommands(program, dataDir);
  registerGenerateCommand(program, dataDir, setExit);
  registerPromptCommands(program, dataDir, setExit);
  registerClassifyCommand(program, dataDir, setExit);

  return program;
}

/** Runs the CLI; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  // The doctor probes WebGPU, whose native engine prints warnings of its own: it runs filtered.
  if (wantsFilteredRun(argv)) return runFiltered(argv);
  let code = 0;
  const program = buildProgram((c) => (code = c));
  program.exitOverride();
  try {
    await program.parseAsync(normalizeGenerateArgs(argv));
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode; // commander printed help or the usage error itself
    const verbose = argv.includes('--verbose');
    process.stderr.write(`${errorLine(e, verbose)}\n`);
    return e instanceof CliError ? e.exitCode : 1;
  }
}

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createApp, type App } from '../app/app.ts';
import { LovageError } from '../errors.ts';
import { defaultStoreUrl, redact } from '../eventstore/url.ts';
import { processIo, UsageError, type Io } from './args.ts';
import { historyCommand } from './runs-history.ts';
import { graphCommand, lsCommand, replayCommand, showCommand } from './runs-inspect.ts';
import { cancelCommand, exportCommand, importCommand, pruneCommand, resumeCommand, retryCommand, verifyCommand } from './runs-manage.ts';

/** An Io that may say whether to colour (tests pass `color`; the process's Io asks the terminal). */
export interface RunsIo extends Io {
  readonly color?: boolean;
}

/** What a `lovage runs` subcommand gets besides its argv. */
export interface RunsContext {
  readonly io: Io;
  /** Colour the human output (stdout is a TTY and NO_COLOR is unset). */
  readonly color: boolean;
  /** Opens the app on `--store` (else LOVAGE_STORE, else the default); `create` allows a new SQLite file. */
  open(store: string | undefined, options?: { readonly create?: boolean }): Promise<App>;
}

/** One `lovage runs` subcommand: parses its argv, resolves to the exit code. */
export interface RunsSubcommand {
  readonly summary: string;
  readonly usage: string;
  run(argv: readonly string[], ctx: RunsContext): Promise<number>;
}

const subcommands: ReadonlyMap<string, RunsSubcommand> = new Map([
  ['ls', lsCommand],
  ['show', showCommand],
  ['history', historyCommand],
  ['replay', replayCommand],
  ['graph', graphCommand],
  ['resume', resumeCommand],
  ['retry', retryCommand],
  ['cancel', cancelCommand],
  ['verify', verifyCommand],
  ['export', exportCommand],
  ['import', importCommand],
  ['prune', pruneCommand],
]);

/** The help text of `lovage runs`. */
export const runsUsage = `Usage: lovage runs <subcommand> [options]

Inspect, replay, resume, verify, export and prune runs: the run history as a product.

Subcommands:
${[...subcommands].map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`).join('\n')}

Every subcommand takes --store <url> (default LOVAGE_STORE, else sqlite:./.lovage/lovage.db),
--json (JSON for scripts) and --help. Exit codes: 0 done, 1 failed (an error, or differences
found by verify), 2 bad command line.

Run \`lovage runs <subcommand> --help\` for a subcommand's options.`;

/** Whether the process's stdout wants colour: a TTY and NO_COLOR unset (https://no-color.org). */
function wantsColor(io: RunsIo): boolean {
  if (io.color !== undefined) return io.color;
  return io === processIo && process.stdout.isTTY === true && !process.env['NO_COLOR'];
}

/** The file of a `sqlite:` URL, or undefined for other stores and `:memory:`. */
function sqliteFile(url: string): string | undefined {
  if (!url.startsWith('sqlite:')) return undefined;
  let path = url.slice('sqlite:'.length);
  if (path.startsWith('//')) path = path.slice(2);
  return path === '' || path === ':memory:' ? undefined : resolve(path);
}

/**
 * Runs `lovage runs <subcommand> ...`; resolves to the exit code. LovageErrors propagate to `main`
 * (exit 1); UsageErrors too (exit 2).
 *
 * @example
 * process.exit(await runRuns(['ls', '--status', 'failed'], processIo))
 */
export async function runRuns(argv: readonly string[], io: RunsIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const about = name === 'help' && rest[0] !== undefined ? subcommands.get(rest[0]) : undefined;
    (name === undefined ? io.err : io.out)(about ? about.usage : runsUsage);
    return name === undefined ? 2 : 0;
  }
  const sub = subcommands.get(name);
  if (!sub) throw new UsageError(`lovage runs: unknown subcommand ${JSON.stringify(name)}; allowed are ${[...subcommands.keys()].join(', ')} (see lovage runs --help)`);
  let app: App | undefined;
  const ctx: RunsContext = {
    io,
    color: wantsColor(io),
    async open(store, options = {}) {
      if (app) return app;
      if (store === '') throw new UsageError('--store must not be empty; allowed are sqlite:<path>, postgres://..., redis://..., memory:');
      const url = store ?? defaultStoreUrl();
      const source = store !== undefined ? '--store' : process.env['LOVAGE_STORE'] ? 'LOVAGE_STORE' : 'the default store';
      const file = sqliteFile(url);
      // Reading commands never create an empty database where the user mistyped a path.
      if (file !== undefined && !options.create && !existsSync(file)) {
        throw new LovageError('NOT_FOUND', `${source} ${url}: no such SQLite file (${file}); name an existing store with --store sqlite:<path> or LOVAGE_STORE`);
      }
      const opened = createApp({ store: url });
      try {
        await opened.store();
      } catch (e) {
        if (e instanceof LovageError && (e.code === 'VALIDATION' || e.code === 'UNSUPPORTED')) throw new UsageError(`${source}: ${e.message}`);
        throw new LovageError('UNSUPPORTED', `cannot open store ${redact(url)}: ${e instanceof Error ? e.message : String(e)}`);
      }
      return (app = opened);
    },
  };
  try {
    return await sub.run(rest, ctx);
  } finally {
    await app?.close();
  }
}

/** The `runs` entry of the CLI's command table. */
export const runsCommand = { summary: 'inspect, replay, resume, verify, export and prune runs', usage: runsUsage, run: runRuns };

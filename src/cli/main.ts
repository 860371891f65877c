import { LovageError } from '../errors.ts';
import { processIo, UsageError, type Io } from './args.ts';
import { migrateUsage, runMigrate } from './migrate-command.ts';
import { runsCommand } from './runs-command.ts';
import { runWorker, workerUsage } from './worker-command.ts';

/** The CLI's commands: each parses its own flags and resolves to an exit code. */
const commands: ReadonlyMap<string, { readonly summary: string; readonly usage: string; run(argv: readonly string[], io: Io): Promise<number> }> = new Map([
  ['worker', { summary: 'run a worker that claims and runs tasks', usage: workerUsage, run: runWorker }],
  ['migrate', { summary: 'bring a store\'s schema up to date (Postgres: lovage migrate --store postgres://...)', usage: migrateUsage, run: runMigrate }],
  ['runs', runsCommand],
]);

const usage = `Usage: lovage <command> [options]

Commands:
${[...commands].map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`).join('\n')}

Run \`lovage <command> --help\` for a command's options.`;

/**
 * The `lovage` command line: parses `argv` (without node and the script) and runs the command.
 * Resolves to the exit code: 0 done, 1 failed, 2 bad command line.
 *
 * @example
 * process.exit(await main(['worker', '--app', './tasks.ts', '-c', '4']))
 */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.err(usage);
    return 2;
  }
  if (name === '-h' || name === '--help' || name === 'help') {
    const about = rest[0] === undefined ? undefined : commands.get(rest[0]);
    io.out(about ? about.usage : usage);
    return 0;
  }
  const command = commands.get(name);
  if (!command) {
    io.err(`error: unknown command ${JSON.stringify(name)}; commands are ${[...commands.keys()].join(', ')} (see lovage --help)`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    io.err(`error: ${e instanceof LovageError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return 1;
  }
}

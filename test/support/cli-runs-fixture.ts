// A SQLite file with known runs for the `lovage runs` CLI tests, made by an app with an in-process
// worker: a chain, a chord with a member failing while a flag file exists, a run left waiting.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { chain, chord, createApp, taskContext, type App } from '../../src/index.ts';

/** What one `main()` call printed, and its exit code. */
export interface CliResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** The fixture: the store, the app that made the runs (its worker still running), and its ledger. */
export interface RunsFixture {
  readonly dir: string;
  readonly db: string;
  readonly store: string;
  readonly app: App;
  /** `runId:nodeId` of every task execution, in order. */
  readonly ledger: string[];
  /** While this file exists, `flaky` throws. */
  readonly flag: string;
  /** Runs `lovage <argv> --store <this store>` in-process (argv's own --store, if any, instead). */
  cli(...argv: string[]): Promise<CliResult>;
  /** Same, with colour forced on. */
  cliColor(...argv: string[]): Promise<CliResult>;
  close(): Promise<void>;
}

/**
 * Creates the runs: `ok-1` (chain, succeeded), `chain-1` (chain whose middle step fails),
 * `chord-1` (chord whose member 1 fails), `wait-1` (on a queue nobody serves: running, ready).
 */
export async function runsFixture(name: string): Promise<RunsFixture> {
  const dir = mkdtempSync(join(tmpdir(), `lovage-${name}-`));
  const db = join(dir, 'runs.db');
  const store = `sqlite:${db}`;
  const flag = join(dir, 'flag');
  const ledger: string[] = [];
  const app = createApp({ store });
  const record = () => ledger.push(`${taskContext().runId}:${taskContext().nodeId}`);
  const add = app.task('add', (a: number, b: number) => (record(), a + b));
  const flaky = app.task('flaky', (x: number) => {
    record();
    if (existsSync(flag)) throw new Error(`flaky failed on ${x}`);
    return x * 10;
  });
  const sum = app.task('sum', (xs: number[]) => (record(), xs.reduce((p, q) => p + q, 0)));
  app.task('slow', async (ms: number) => (record(), await new Promise((r) => setTimeout(r, ms)), ms));
  app.task('parked', (x: number) => x, { queue: 'nobody' });
  app.worker({ name: 'w1', concurrency: 4, pollMs: 5 });

  writeFileSync(flag, '');
  await (await chain(add.s(1, 0), add.s(2)).applyAsync({ runId: 'ok-1' })).get({ timeoutMs: 10_000 });
  await (await chain(add.s(1, 1), flaky.s(), add.s(3)).applyAsync({ runId: 'chain-1' })).get({ timeoutMs: 10_000 }).catch(() => undefined);
  await (await chord([add.s(0, 0), flaky.s(1), add.s(2, 0)], sum.s()).applyAsync({ runId: 'chord-1' })).get({ timeoutMs: 10_000 }).catch(() => undefined);
  await app.submit({ kind: 'signature', task: 'parked', args: [7], immutable: false, options: {} }, { runId: 'wait-1' });

  const run = async (color: boolean | undefined, argv: string[]): Promise<CliResult> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(argv.includes('--store') ? argv : [...argv, '--store', store], { out: (l) => out.push(l), err: (l) => err.push(l), ...(color !== undefined ? { color } : {}) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  return {
    dir, db, store, app, ledger, flag,
    cli: (...argv) => run(undefined, argv),
    cliColor: (...argv) => run(true, argv),
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

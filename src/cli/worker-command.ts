import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { App } from '../app/app.ts';
import { exportedApp, noAppExported } from '../app/load-app.ts';
import { LovageError } from '../errors.ts';
import { redactUrl as redact } from '../eventstore/redact-url.ts';
import { MAX_TIMER_MS } from '../eventstore/store.ts';
import { defaultStoreUrl } from '../eventstore/url.ts';
import type { WorkerOptions } from '../workers/worker.ts';
import { intFlag, parseFlags, UsageError, type Io } from './args.ts';

/** The help text of `lovage worker`. */
export const workerUsage = `Usage: lovage worker --app <module> [options]

Runs a worker: claims ready nodes of its queues, runs their tasks, records the outcomes.
SIGTERM or SIGINT stops it gracefully (no new claims; running tasks finish within the grace
period, the rest are released to other workers); a second signal exits at once.

Options:
  -A, --app <module>     module (.ts or .js) exporting the app made by createApp, as \`app\` or default (required)
      --store <url>      store URL: sqlite:<path>, sqlite::memory:, memory:, postgres://..., redis://... (sets LOVAGE_STORE before the
                         module loads; default LOVAGE_STORE, else sqlite:./.lovage/lovage.db)
  -Q, --queues <a,b>     comma-separated queues to consume (default: default)
  -c, --concurrency <n>  most tasks running at once, integer ≥ 1 (default 16)
  -n, --name <name>      worker name recorded in the history (default host:pid:random)
      --lease-ms <n>     lease length in ms, integer from 1 to 2147483647 (default 30000)
      --batch <n>        most claims/completions per store transaction, integer ≥ 1 (default min(c, 100))
      --poll-ms <n>      longest idle wait before asking the store again, ms, integer from 1 to 2147483647 (default 100)
      --grace-ms <n>     on shutdown, how long running tasks may finish, ms, integer from 0 to 2147483647 (default 10000)
  -P, --pool <pool>      where tasks run: async (in the worker's thread; a time limit cannot stop a task
                         that never yields) or threads (in worker threads that import the --app module;
                         a time limit terminates the task's thread) (default async)
      --threads <n>      with --pool threads: most threads, integer from 1 to --concurrency (default --concurrency)
      --max-tasks-per-child <n>
                         with --pool threads: replace a thread after it ran n tasks, integer ≥ 1 (default never)
  -h, --help             show this help

Examples:
  lovage worker --app ./tasks.ts --store sqlite:./lovage.db -Q default,emails -c 8
  lovage worker --app ./tasks.ts --pool threads -c 4 --max-tasks-per-child 100`;

const flags = {
  app: { type: 'string', short: 'A' },
  store: { type: 'string' },
  queues: { type: 'string', short: 'Q' },
  concurrency: { type: 'string', short: 'c' },
  name: { type: 'string', short: 'n' },
  'lease-ms': { type: 'string' },
  batch: { type: 'string' },
  'poll-ms': { type: 'string' },
  'grace-ms': { type: 'string' },
  pool: { type: 'string', short: 'P' },
  threads: { type: 'string' },
  'max-tasks-per-child': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const QUEUE = /^[A-Za-z0-9_.:\-]{1,100}$/;

/** `lovage worker`'s command line, checked. */
export type WorkerArgs =
  | { readonly help: true }
  | { readonly help: false; readonly app: string; readonly store?: string; readonly options: WorkerOptions & { readonly queues: readonly string[]; readonly concurrency: number } };

/**
 * Parses and checks `lovage worker`'s flags; throws a UsageError naming the flag and what is allowed.
 *
 * @example
 * parseWorkerArgs(['--app', './tasks.ts', '-Q', 'a,b', '-c', '4'])
 */
export function parseWorkerArgs(argv: readonly string[]): WorkerArgs {
  const { values: v } = parseFlags('worker', argv, flags);
  if (v.help) return { help: true };
  if (v.app === undefined || v.app === '') throw new UsageError('lovage worker: --app <module> is required: the module that exports your app (e.g. --app ./tasks.ts)');
  if (v.store === '') throw new UsageError('--store must not be empty; allowed are sqlite:<path>, sqlite::memory:, memory:, postgres://..., redis://...');
  const queues = (v.queues ?? 'default').split(',').map((q) => q.trim());
  for (const q of queues) {
    if (!QUEUE.test(q)) throw new UsageError(`--queues: queue name ${JSON.stringify(q)} is invalid; allowed is a comma-separated list of names of 1-100 of A-Z a-z 0-9 _ . : -`);
  }
  if (v.name !== undefined && (v.name === '' || v.name.length > 200)) throw new UsageError('--name must be 1-200 characters');
  // Node fires a timer past MAX_TIMER_MS (2^31-1 ms, ~24.8 days) after 1 ms: the worker would heartbeat or poll every millisecond.
  const leaseMs = intFlag('--lease-ms', v['lease-ms'], 1, MAX_TIMER_MS);
  const batchSize = intFlag('--batch', v.batch, 1);
  const pollMs = intFlag('--poll-ms', v['poll-ms'], 1, MAX_TIMER_MS);
  const shutdownGraceMs = intFlag('--grace-ms', v['grace-ms'], 0, MAX_TIMER_MS);
  const concurrency = intFlag('--concurrency', v.concurrency, 1) ?? 16;
  const pool = v.pool ?? 'async';
  if (pool !== 'async' && pool !== 'threads') throw new UsageError(`--pool ${JSON.stringify(pool)} is invalid; allowed are async, threads`);
  const threads = intFlag('--threads', v.threads, 1);
  const maxTasksPerChild = intFlag('--max-tasks-per-child', v['max-tasks-per-child'], 1);
  if (pool === 'async') {
    for (const [flag, value] of [['--threads', threads], ['--max-tasks-per-child', maxTasksPerChild]] as const) {
      if (value !== undefined) throw new UsageError(`${flag} applies to --pool threads only; add --pool threads or drop ${flag}`);
    }
  }
  if (threads !== undefined && threads > concurrency) throw new UsageError(`--threads must be an integer from 1 to --concurrency (${concurrency}), got ${threads}: a thread runs one task at a time`);
  return {
    help: false,
    app: v.app,
    ...(v.store !== undefined ? { store: v.store } : {}),
    options: {
      queues: [...new Set(queues)],
      concurrency,
      ...(v.name !== undefined ? { name: v.name } : {}),
      ...(leaseMs !== undefined ? { leaseMs } : {}),
      ...(batchSize !== undefined ? { batchSize } : {}),
      ...(pollMs !== undefined ? { pollMs } : {}),
      ...(shutdownGraceMs !== undefined ? { shutdownGraceMs } : {}),
      // The threads import the --app module themselves (resolved against the working directory now).
      ...(pool === 'threads' ? { pool, appModule: resolve(v.app), ...(threads !== undefined ? { threads } : {}), ...(maxTasksPerChild !== undefined ? { maxTasksPerChild } : {}) } : {}),
    },
  };
}

/** Loads the app module named by `--app` (after pointing LOVAGE_STORE at `--store`). */
async function loadApp(path: string, store: string | undefined): Promise<App> {
  if (store !== undefined) process.env['LOVAGE_STORE'] = store;
  const file = resolve(path);
  if (!existsSync(file)) throw new UsageError(`--app ${path}: no such file (looked for ${file})`);
  let mod: { app?: unknown; default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as typeof mod;
  } catch (e) {
    throw new LovageError('VALIDATION', `--app ${path}: the module failed to load: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
  const app = exportedApp(mod);
  if (!app) throw new UsageError(`--app ${path}: ${noAppExported}`);
  if (store !== undefined && app.storeUrl !== undefined && app.storeUrl !== store) {
    throw new UsageError(`--store ${redact(store)} disagrees with the store the app in ${path} was created with (${redact(app.storeUrl)}); drop --store, or create the app without a store option so that it uses LOVAGE_STORE`);
  }
  return app;
}


/**
 * Runs `lovage worker` until SIGTERM/SIGINT; resolves to the exit code.
 *
 * @example
 * process.exit(await runWorker(['--app', './tasks.ts', '-c', '4'], processIo))
 */
export async function runWorker(argv: readonly string[], io: Io): Promise<number> {
  const args = parseWorkerArgs(argv);
  if (args.help) {
    io.out(workerUsage);
    return 0;
  }
  const app = await loadApp(args.app, args.store);
  const storeUrl = redact(app.storeUrl ?? defaultStoreUrl());
  try {
    await app.store();
  } catch (e) {
    // A URL that is malformed or names a store this version lacks is a bad value: exit code 2.
    if (e instanceof LovageError && (e.code === 'VALIDATION' || e.code === 'UNSUPPORTED')) {
      const source = args.store !== undefined ? '--store' : app.storeUrl !== undefined ? `the app in ${args.app}` : process.env['LOVAGE_STORE'] ? 'LOVAGE_STORE' : 'the default store';
      throw new UsageError(`${source}: ${e.message}`);
    }
    throw new LovageError('UNSUPPORTED', `cannot open store ${storeUrl}: ${e instanceof Error ? e.message : String(e)}`);
  }
  // The worker survives store errors (it backs off and retries) and quarantined runs: say each one.
  const worker = app.worker({ ...args.options, onError: (e) => io.err(`lovage worker ${worker.name}: ${e instanceof Error ? e.message : String(e)}`) });
  const { queues, concurrency, pool, threads, maxTasksPerChild } = args.options;
  const poolText = pool === 'threads' ? `pool threads (${threads ?? concurrency} thread${(threads ?? concurrency) === 1 ? '' : 's'}${maxTasksPerChild !== undefined ? `, each replaced after ${maxTasksPerChild} tasks` : ''})` : 'pool async';
  io.out(`lovage worker ${worker.name} started: queues ${queues.join(',')}, concurrency ${concurrency}, ${poolText}, store ${storeUrl}, pid ${process.pid}`);

  return new Promise<number>((done) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        io.err(`lovage worker ${worker.name}: ${signal} again, exiting now; leases of running tasks expire and other workers take them`);
        done(1);
        return;
      }
      stopping = true;
      io.out(`lovage worker ${worker.name}: ${signal}, stopping (${worker.active} running; grace ${args.options.shutdownGraceMs ?? 10_000} ms)`);
      worker.stop()
        .then(() => app.close())
        .then(() => {
          io.out(`lovage worker ${worker.name} stopped`);
          done(0);
        }, (e: unknown) => {
          io.err(`lovage worker ${worker.name}: shutdown failed: ${e instanceof Error ? e.message : String(e)}`);
          done(1);
        });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

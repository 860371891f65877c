// PEER on Postgres: graphile-worker, driven through its npm package on the same Postgres as Lovage's
// Postgres store, with no-op jobs. Every function installs graphile-worker into its own schema
// (graphile_bench_<random>), dropped afterwards, and returns "skipped: …" when Postgres does not answer.
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Logger, makeWorkerUtils, run, type Runner, type TaskList, type WorkerEvents, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { quantile, sleep } from './harness.ts';
import { Countdown, installedVersion, ok, PG_URL, postgresDown, randomTag, skipped, type BurnDown, type Chord, type Latency, type Peer, type PeerResult } from './peer-common.ts';

/**
 * The fastest settings graphile-worker documents (worker.graphile.org/docs/performance, "Quick
 * stats"): 24 concurrent jobs on a pool of 25, a local queue that locks and fetches 500 jobs per
 * query (batched fetch), and completions batched (`completeJobBatchDelay: 0`: the completions that
 * arrive while one batch is written go in the next). Jobs are found through LISTEN/NOTIFY; the poll
 * interval only matters for jobs scheduled in the future, so it stays at its default.
 */
export const GRAPHILE_SETTINGS = {
  concurrentJobs: Number(process.env['GRAPHILE_CONCURRENCY'] ?? 24),
  maxPoolSize: Number(process.env['GRAPHILE_CONCURRENCY'] ?? 24) + 1,
  localQueue: { size: Number(process.env['GRAPHILE_LOCAL_QUEUE'] ?? 500) },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
} as const;
const ADD_CHUNK = 10_000;

// graphile-worker logs every job at info level; a benchmark keeps only its errors.
const logger = new Logger(() => (level, message) => {
  if (level === 'error') console.error(`graphile-worker: ${message}`);
});

interface Schema { readonly name: string; readonly utils: WorkerUtils; start(tasks: TaskList, events?: WorkerEvents): Promise<{ runner: Runner; events: WorkerEvents }> }

/** A fresh schema with graphile-worker installed, dropped (after every runner stopped) when `fn` settles. */
async function withSchema<T>(fn: (schema: Schema) => Promise<T>): Promise<PeerResult<T>> {
  const down = await postgresDown();
  if (down) return skipped(down);
  const name = `graphile_bench_${randomTag()}`;
  const runners: Runner[] = [];
  let utils: WorkerUtils | undefined;
  try {
    utils = await makeWorkerUtils({ connectionString: PG_URL, schema: name, logger });
    await utils.migrate();
    const u = utils;
    return ok(await fn({
      name,
      utils: u,
      async start(taskList, events: WorkerEvents = new EventEmitter()) {
        const runner = await run({ taskList, logger, events, noHandleSignals: true, preset: { worker: { connectionString: PG_URL, schema: name, ...GRAPHILE_SETTINGS } } });
        runners.push(runner);
        return { runner, events };
      },
    }));
  } finally {
    for (const r of runners) await r.stop().catch(() => undefined);
    if (utils) await Promise.resolve(utils.release()).catch(() => undefined);
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`).finally(() => client.end());
  }
}

async function jobsLeft(schema: Schema): Promise<number> {
  const r = await schema.utils.withPgClient((c) => c.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema.name}"._private_jobs`));
  return Number(r.rows[0]?.n ?? -1);
}

/**
 * `performance.now()` once the jobs table is empty. `job:complete` is emitted when a completion is
 * handed to the (batched) completer, before it is written, so the end is read from the table.
 */
async function drained(schema: Schema, timeoutMs: number, what: string): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while ((await jobsLeft(schema)) !== 0) {
    if (performance.now() > deadline) throw new Error(`${what}: jobs still in the table after ${(timeoutMs / 1000).toFixed(0)} s`);
    await sleep(1);
  }
  return performance.now();
}

/**
 * W1: pre-fills `n` no-op jobs with `addJobs` (the `add_jobs` function, 10k per call), then starts
 * `run()` and times the burn-down. `onBurnDown` is called once the queue is full, just before the clock
 * starts (bench/peer-cpu.ts marks Postgres's CPU there).
 */
export function graphileBurnDown(n: number, onBurnDown?: () => void): Promise<PeerResult<BurnDown>> {
  return withSchema(async (schema) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i += ADD_CHUNK) {
      await schema.utils.addJobs(Array.from({ length: Math.min(ADD_CHUNK, n - i) }, (_, k) => ({ identifier: 'noop', payload: { i: i + k } })));
    }
    const prefillMs = performance.now() - t0;
    if ((await jobsLeft(schema)) !== n) throw new Error(`graphile-worker pre-fill: expected ${n} jobs in the table`);

    const all = new Countdown(n, 300_000, 'graphile-worker W1 burn-down');
    const events: WorkerEvents = new EventEmitter();
    events.on('job:complete', ({ job, error }) => (error ? all.fail(new Error(`graphile-worker W1: job ${job.id} failed: ${String(error)}`)) : all.hit()));
    onBurnDown?.();
    const t1 = performance.now();
    await schema.start({ noop: async () => undefined }, events);
    await all.done;
    const timeMs = (await drained(schema, 10_000, 'graphile-worker W1')) - t1;
    const s = GRAPHILE_SETTINGS;
    return { n, timeMs, rate: (n / timeMs) * 1000, prefillMs, note: `run() with concurrency ${s.concurrentJobs}, pool ${s.maxPoolSize}, localQueue ${s.localQueue.size}, completeJobBatchDelay ${s.completeJobBatchDelay}` };
  });
}

/** W3: with an idle runner, adds one job at a time (`addJob`, which NOTIFYs) and measures addJob() → task start. */
export function graphileLatency(samples: number, warmup: number): Promise<PeerResult<Latency>> {
  return withSchema(async (schema) => {
    let startedAt = 0;
    let onStart: () => void = () => {};
    let onDone: () => void = () => {};
    const { events } = await schema.start({
      ping: async () => {
        startedAt = performance.now();
        onStart();
      },
    });
    events.on('job:complete', () => onDone());
    await sleep(200); // the runner is up, LISTENing, and idle
    const total: number[] = [];
    const submit: number[] = [];
    for (let i = 0; i < warmup + samples; i++) {
      const started = new Promise<void>((r) => (onStart = r));
      const finished = new Promise<void>((r) => (onDone = r));
      const t0 = performance.now();
      await schema.utils.addJob('ping', {});
      const t1 = performance.now();
      await started;
      if (i >= warmup) {
        total.push(startedAt - t0);
        submit.push(t1 - t0);
      }
      await finished;
      await drained(schema, 10_000, 'graphile-worker W3 sample'); // written back to the database
      await sleep(1);
    }
    total.sort((a, b) => a - b);
    submit.sort((a, b) => a - b);
    return {
      samples, p50: quantile(total, 0.5), p99: quantile(total, 0.99), max: total[total.length - 1]!, submitP50: quantile(submit, 0.5),
      note: `idle run() with the W1 settings, woken by LISTEN/NOTIFY`,
    };
  });
}

/**
 * W5, emulated (graphile-worker has no flows): a counter row `bench_chord(id, remaining, total)` in the
 * peer's schema, then `n` jobs `one` added with `addJobs`. Each `one` runs ONE statement that
 * decrements `remaining`, adds its result (1) to `total` and, when `remaining` reaches 0, calls the
 * schema's `add_job('xsum', {total})` — so exactly one job (the last to decrement) enqueues the body,
 * atomically with its decrement. Caveat: the decrement is not in the transaction that completes the
 * `one` job, so a job re-run after a crash would decrement twice (Lovage's join has no such gap). Timed
 * from just before the counter INSERT to the completion of `xsum`, the runner already running.
 */
export function graphileChord(n: number): Promise<PeerResult<Chord>> {
  return withSchema(async (schema) => {
    const s = `"${schema.name}"`;
    await schema.utils.withPgClient((c) => c.query(`CREATE TABLE ${s}.bench_chord (id int PRIMARY KEY, remaining int NOT NULL, total bigint NOT NULL DEFAULT 0)`));
    const decrement = `WITH c AS (UPDATE ${s}.bench_chord SET remaining = remaining - 1, total = total + $2 WHERE id = $1 RETURNING remaining, total)
      SELECT ${s}.add_job('xsum', json_build_object('id', $1::int, 'total', c.total)) FROM c WHERE c.remaining = 0`;
    let sum: number | undefined;
    const body = new Countdown(1, 300_000, `graphile-worker W5 emulated chord of ${n}`);
    const { events } = await schema.start({
      one: async (payload, helpers) => {
        await helpers.query(decrement, [(payload as { id: number }).id, 1]);
      },
      xsum: async (payload) => {
        sum = Number((payload as { total: number }).total);
      },
    });
    events.on('job:complete', ({ job, error }) => {
      if (error) body.fail(new Error(`graphile-worker W5: job ${job.task_identifier} failed: ${String(error)}`));
      else if (job.task_identifier === 'xsum') body.hit();
    });
    await sleep(200);
    const t0 = performance.now();
    await schema.utils.withPgClient((c) => c.query(`INSERT INTO ${s}.bench_chord (id, remaining) VALUES (1, $1)`, [n]));
    for (let i = 0; i < n; i += ADD_CHUNK) {
      await schema.utils.addJobs(Array.from({ length: Math.min(ADD_CHUNK, n - i) }, () => ({ identifier: 'one', payload: { id: 1 } })));
    }
    const submitMs = performance.now() - t0;
    await body.done;
    const end = await drained(schema, 10_000, 'graphile-worker W5');
    if (sum !== n) throw new Error(`graphile-worker W5: the body saw total ${String(sum)}, expected ${n}`);
    return { n, totalMs: end - t0, submitMs, note: `emulated: ${n} jobs + a counter row; the last decrement enqueues the body in the same statement` };
  });
}

/** graphile-worker as the harness's PEER for `--store postgres`. */
export const graphilePeer: Peer = {
  name: 'graphile-worker',
  version: installedVersion('graphile-worker'),
  burnDown: graphileBurnDown,
  latency: graphileLatency,
  chord: graphileChord,
};

// W1 on Postgres: burn-down of a pre-filled queue of no-op tasks, (a) single-task runs, (b) one group,
// beside the PEER: raw claim (FOR UPDATE SKIP LOCKED) + complete (DELETE) in batches, one client.
// `npx tsx bench/postgres-burn-down.ts [--n 50000] [--url postgres://...]`; each workload uses a fresh
// schema, dropped afterwards. One worker process, concurrency 100, batches of 100 (as bench/harness.ts).
import pg from 'pg';
import { performance } from 'node:perf_hooks';
import { createApp } from '../src/app/app.ts';
import { group } from '../src/canvas/combinators.ts';
import { PostgresStore } from '../src/eventstore/postgres.ts';
import { count, ms, prefillSingleRuns, workerFor } from './harness.ts';
import { rawPostgres } from './scale.ts';

const BUDGET = 25_000;
const args = process.argv.slice(2);
const flag = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const N = Number(flag('--n') ?? 50_000);
const URL = flag('--url') ?? process.env['LOVAGE_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const rows: string[][] = [['workload', 'size', 'time', 'rate', 'budget', 'note']];
const report = (r: string[]) => { rows.push(r); console.log(r.join(' | ')); };

/**
 * When every run is finished: polls the last submitted run every 2 ms (a query per event-loop turn, as
 * harness.ts does for SQLite, would load the database more than the work), then counts unfinished
 * runs in one query, polling that until none is left.
 */
async function waitFinished(store: PostgresStore, ids: readonly string[], timeoutMs: number, what: string): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  const tick = () => {
    if (performance.now() > deadline) throw new Error(`${what} did not finish within ${timeoutMs} ms`);
    return new Promise((r) => setTimeout(r, 2));
  };
  while ((await store.getRun(ids[ids.length - 1]!))?.finishedVersion === undefined) await tick();
  let end = performance.now();
  const open = async () => Number((await store.pool.query(`SELECT count(*) AS n FROM "${store.schema}".runs WHERE finished_version IS NULL`)).rows[0].n);
  if ((await open()) > 0) {
    while ((await open()) > 0) await tick();
    end = performance.now();
  }
  return end;
}

async function withStore<T>(fn: (store: PostgresStore) => Promise<T>): Promise<T> {
  const schema = `lovage_bench_${process.pid}`;
  const store = await PostgresStore.open({ connectionString: URL, schema });
  try {
    return await fn(store);
  } finally {
    await store.close();
    const admin = new pg.Client({ connectionString: URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
}

/** PEER: what Postgres does with no event log: claim `batch` jobs and delete them, one client (scale.ts). */
async function peer(n: number, batch: number): Promise<number> {
  const rate = await rawPostgres(URL, n, batch);
  report(['PEER raw claim+delete', `${count(n)} jobs, batches of ${batch}`, ms((n / rate) * 1000), `${count(rate)} jobs/s`, '', 'no event log, no projection']);
  return rate;
}

/** (a) `n` runs of one node each, appended 1000 runs per batch, then one worker burns them down. */
async function singles(n: number, peerRate: number): Promise<void> {
  await withStore(async (store) => {
    const app = createApp({ store });
    app.task('noop', () => null);
    const t0 = performance.now();
    const ids = await prefillSingleRuns(store, n);
    const fillMs = performance.now() - t0;
    const s0 = performance.now();
    for (let i = 0; i < 1000; i++) await app.submit({ kind: 'signature', task: 'noop', args: [], immutable: false, options: {} });
    const submitRate = (1000 / (performance.now() - s0)) * 1000;
    ids.push(...(await store.listRuns({ limit: 1 })).map((r) => r.runId)); // the last single submit
    await store.pool.query(`VACUUM ANALYZE "${store.schema}".ready, "${store.schema}".runs`);
    const t1 = performance.now();
    app.worker(workerFor('postgres'));
    const timeMs = (await waitFinished(store, ids, 300_000, 'W1a')) - t1;
    const rate = ((n + 1000) / timeMs) * 1000;
    report(['W1a burn-down, single runs', `${count(n + 1000)} runs`, ms(timeMs), `${count(rate)} tasks/s`, `≥ ${count(BUDGET)}/s ${rate >= BUDGET ? 'pass' : 'MISS'}`,
      `${((rate / peerRate) * 100).toFixed(0)}% of PEER; pre-fill ${count((n / fillMs) * 1000)} runs/s in batches of 1000, app.submit ${count(submitRate)}/s one at a time`]);
    await app.close();
  });
}

/** (b) one run: a group of `n` no-op members. */
async function oneGroup(n: number, peerRate: number): Promise<void> {
  await withStore(async (store) => {
    const app = createApp({ store });
    const noop = app.task('noop', () => null);
    const t0 = performance.now();
    const run = await group(Array.from({ length: n }, () => noop.s())).applyAsync();
    const submitMs = performance.now() - t0;
    const t1 = performance.now();
    app.worker(workerFor('postgres'));
    const timeMs = (await waitFinished(store, [run.id], 300_000, 'W1b')) - t1;
    const rate = (n / timeMs) * 1000;
    report(['W1b burn-down, one group', `${count(n)} members`, ms(timeMs), `${count(rate)} tasks/s`, `≥ ${count(BUDGET)}/s ${rate >= BUDGET ? 'pass' : 'MISS'}`,
      `${((rate / peerRate) * 100).toFixed(0)}% of PEER; submit ${ms(submitMs)}`]);
    await app.close();
  });
}

const peerRate = await peer(N, 50);
await singles(N, peerRate);
await oneGroup(N, peerRate);
console.log('\n' + rows.map((r) => `| ${r.join(' | ')} |`).join('\n'));

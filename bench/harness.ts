// Shared pieces of the benchmark scripts: a fresh store per workload (a SQLite file, or with `--store` a
// Postgres schema / Redis prefix), result rows, timing helpers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { createApp, type App } from '../src/app/app.ts';
import { compile } from '../src/canvas/compile.ts';
import { decide } from '../src/engine/decide.ts';
import { initialState } from '../src/engine/state.ts';
import { SqliteStore } from '../src/eventstore/sqlite.ts';
import type { AppendRequest, EventStore } from '../src/eventstore/store.ts';
import { openBenchStore, type StoreKind } from './stores.ts';

/** One line of the printed table. */
export interface Row {
  readonly workload: string;
  readonly size: string;
  /** Wall time, ms (undefined when the row is a ratio or a latency). */
  readonly timeMs?: number;
  /** What was achieved, already formatted ("52.1k tasks/s", "p50 0.31 ms"). */
  readonly rate: string;
  /** The budget, formatted ("≥ 50k tasks/s"), or "" when the row has none. */
  readonly budget: string;
  /** true: met, false: missed, undefined: informational. */
  readonly pass?: boolean;
  readonly note?: string;
}

/** What every workload gets from the runner. */
export interface BenchContext {
  readonly quick: boolean;
  /** `n`, or `n / 10` with `--quick`. */
  scale(n: number): number;
  /** Adds a row to the table (and prints it at once, so a long run shows progress). */
  report(row: Row): void;
  /** Values workloads hand to each other (the peer's rate, for the W1 ratio). */
  readonly shared: Map<string, number>;
  /** Where Lovage keeps its store (`--store`), and the name of the peer measured beside it. */
  readonly store: StoreKind;
  readonly peerName: string;
}

/** A workload: a name (for `--only`) and its body. */
export interface Workload {
  readonly id: string;
  readonly title: string;
  run(ctx: BenchContext): Promise<void>;
}

/**
 * The worker settings of every Lovage workload on `kind`: concurrency 100 and batches of 100 (the
 * BullMQ peer runs concurrency 100); on Postgres concurrency 400 and batches of 200, so that a second
 * call goes out beside the first with a whole batch (a call costs Postgres ~0.3-1 ms besides its tasks,
 * see EventStore.costlyCalls; graphile-worker's settings fetch 500 jobs a query). The environment's
 * LOVAGE_BENCH_WORKER=<concurrency>/<batch> overrides it, e.g. 100/100 to compare.
 */
export function workerFor(kind: StoreKind = storeKind): { concurrency: number; batchSize: number } {
  const given = process.env['LOVAGE_BENCH_WORKER'];
  if (given) {
    const m = /^(\d+)\/(\d+)$/.exec(given);
    if (!m) throw new Error(`LOVAGE_BENCH_WORKER must be <concurrency>/<batch>, e.g. 100/100; got ${given}`);
    return { concurrency: Number(m[1]), batchSize: Number(m[2]) };
  }
  return kind === 'postgres' ? { concurrency: 400, batchSize: 200 } : { concurrency: 100, batchSize: 100 };
}

/** A temporary directory, removed (with the database, its WAL and SHM) when `fn` settles. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'lovage-bench-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let storeKind: StoreKind = 'sqlite';

/** Sets the store every later `withApp` opens (`--store`; default sqlite). */
export function useStore(kind: StoreKind): void {
  storeKind = kind;
}

/**
 * An app on a fresh store, closed and deleted when `fn` settles: a temp-file SQLite store (WAL), or
 * with `useStore('postgres' | 'redis')` a fresh schema / key prefix opened through `openStore(url)`.
 */
export async function withApp<T>(fn: (app: App, store: EventStore) => Promise<T>): Promise<T> {
  if (storeKind !== 'sqlite') {
    const bench = await openBenchStore(storeKind);
    const app = createApp({ store: bench.store });
    try {
      return await fn(app, bench.store);
    } finally {
      await app.close();
      await bench.drop();
    }
  }
  return withTempDir(async (dir) => {
    const store = await SqliteStore.open({ path: join(dir, 'lovage.db') });
    const app = createApp({ store });
    try {
      return await fn(app, store);
    } finally {
      await app.close();
    }
  });
}

/**
 * Appends `n` runs of one `noop` node straight to the store (runs `run0`, `run1`, ...), 1,000 a batch: a
 * pre-fill much quicker than `n` submits of one transaction each. Returns their ids in order.
 */
export async function prefillSingleRuns(store: EventStore, n: number): Promise<string[]> {
  const dag = compile({ kind: 'signature', task: 'noop', args: [], immutable: false, options: {} });
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1000) {
    const batch: AppendRequest[] = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      ids.push(`run${j}`);
      batch.push({ runId: `run${j}`, expectedVersion: 0, events: decide(initialState(`run${j}`), { type: 'Submit', at: await store.now(), dag }) });
    }
    await store.append(batch);
  }
  return ids;
}

/** Thrown when a workload runs past its deadline; the runner reports it as a row, then goes on. */
export class BenchTimeout extends Error {
  constructor(what: string, ms: number, progress: string) {
    super(`${what} did not finish within ${(ms / 1000).toFixed(0)} s (${progress})`);
  }
}

/**
 * The wait between two polls of `waitFinished`: one turn of the event loop on SQLite, where a read
 * costs microseconds; 1 ms on Postgres, where every poll is a query on the server being measured
 * (polling every turn ran thousands of queries a second beside the worker and cost W1 ~15% of its
 * rate; graphile-worker's end is polled every 1 ms too).
 */
function pollWait(): Promise<void> {
  return storeKind === 'postgres' ? new Promise<void>((r) => setTimeout(r, 1)) : new Promise<void>((r) => setImmediate(r));
}

/**
 * Resolves, once every run in `ids` is finished (succeeded or failed), to the `performance.now()` at
 * which that was first seen. Polls the runs projection once per event-loop turn on SQLite (`setImmediate`,
 * not a 1 ms timer, so the end is seen within one turn; see pollWait), and only one run per poll: the last submitted
 * (runs finish in about submit order). Then it checks every run with the clock already stopped, so
 * a 100k-run burn-down is not slowed by 100k polls; a run still open there restarts the clock.
 */
export async function waitFinished(store: EventStore, ids: readonly string[], timeoutMs: number, what: string): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  const done = async (id: string) => (await store.getRun(id))?.finishedVersion !== undefined;
  let seen = 0;
  const until = async (id: string) => {
    for (let spins = 1; !(await done(id)); spins++) {
      if ((spins & 255) === 0 && performance.now() > deadline) throw new BenchTimeout(what, timeoutMs, `${seen} of ${ids.length} runs seen finished`);
      await pollWait();
    }
    return performance.now();
  };
  if (ids.length === 0) return performance.now();
  let end = await until(ids[ids.length - 1]!);
  for (; seen < ids.length; seen++) if (!(await done(ids[seen]!))) end = await until(ids[seen]!);
  return end;
}

/** Throws unless every run in `ids` succeeded (a benchmark of failing runs would measure nothing). */
export async function assertSucceeded(store: EventStore, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    const run = await store.getRun(id);
    if (run?.status !== 'succeeded') throw new Error(`run ${id} is ${run?.status ?? 'missing'}, expected succeeded`);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The `q`-quantile (0..1) of `sorted` (ascending), nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function median(values: readonly number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

/** 52_100 -> "52.1k", 1_234_567 -> "1.23M". */
export function count(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)}k`;
  return n.toFixed(n >= 100 ? 0 : 1);
}

/** Milliseconds with a sensible number of digits. */
export function ms(t: number): string {
  if (t >= 10_000) return `${(t / 1000).toFixed(1)} s`;
  if (t >= 1000) return `${(t / 1000).toFixed(2)} s`;
  if (t >= 10) return `${t.toFixed(0)} ms`;
  if (t >= 1) return `${t.toFixed(2)} ms`;
  return `${t.toFixed(3)} ms`;
}

/**
 * Starts sampling what this process allocates, garbage included (V8's sampling heap profiler, every
 * ~1 KB). `stop()` ends it: the bytes allocated meanwhile (an estimate from the samples) and the
 * profile, which Chrome DevTools opens (write it to a `.heapprofile` file).
 */
export async function sampleAllocations(): Promise<{ stop(): Promise<{ bytes: number; profile: unknown }> }> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
  return {
    async stop() {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      let bytes = 0;
      const walk = (node: typeof profile.head): void => {
        bytes += node.selfSize;
        node.children.forEach(walk);
      };
      walk(profile.head);
      session.disconnect();
      return { bytes, profile };
    },
  };
}

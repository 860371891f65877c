import { hostname } from 'node:os';
import { moduleFile } from '../app/load-app.ts';
import { LovageError } from '../errors.ts';
import { MAX_TIMER_MS } from '../eventstore/store.ts';
import { newToken } from '../eventstore/token.ts';
import type { ThreadPoolOptions } from './threads.ts';

/** Options of a worker. */
export interface WorkerOptions {
  /** Queues to consume (default `['default']`). */
  readonly queues?: readonly string[];
  /** Most tasks running at once (default 16). */
  readonly concurrency?: number;
  /** Most nodes claimed, and completions recorded, per store transaction (default `min(concurrency, 100)`). */
  readonly batchSize?: number;
  /** Lease length, ms (default 30,000; at most 2^31-1, ~24.8 days). A worker silent this long loses its nodes to others. */
  readonly leaseMs?: number;
  /**
   * Longest idle wait before asking the store again, ms (default 100). Appends wake it at once (this
   * process's on every store; every process's on Postgres and Redis), and so do nodes this process
   * held back (countdown, retry) when they fall due; the poll finds the rest (another process's
   * delayed nodes, expired leases, a missed wake-up). At most 2^31-1 (~24.8 days).
   */
  readonly pollMs?: number;
  /** How long `stop()` lets running tasks finish before releasing them, ms (default 10,000; 0 to 2^31-1). */
  readonly shutdownGraceMs?: number;
  /** The worker's name in the history (default `host:pid:random`). */
  readonly name?: string;
  /**
   * Called with errors the worker survives: a store that does not answer (it backs off and retries),
   * a run quarantined because its log does not fold. Default: one line on stderr. If it throws, that
   * goes to stderr too and the worker carries on.
   */
  readonly onError?: (error: unknown) => void;
  /**
   * Where tasks run (default `'async'`). `'async'`: in this thread, on its event loop; a hard time
   * limit ends the attempt but cannot stop the task's code. `'threads'`: in worker threads that
   * import `appModule`; a hard time limit terminates the thread (even a loop that never yields).
   * See docs/tasks.md (Pools).
   */
  readonly pool?: 'async' | 'threads';
  /** `threads` pool: most threads, each running one task at a time (default and at most `concurrency`). */
  readonly threads?: number;
  /** `threads` pool: a thread is replaced after running this many tasks (default: never). */
  readonly maxTasksPerChild?: number;
  /**
   * `threads` pool (required there): path or `file:` URL of the module that creates the app and
   * registers its tasks, exported as `app` or default. Each thread imports it once; in a thread
   * `app.worker()` does nothing, and the store is never opened.
   */
  readonly appModule?: string;
}

/** A worker's options, checked, with their defaults filled in. */
export interface WorkerSettings {
  readonly queues: readonly string[];
  readonly concurrency: number;
  readonly batchSize: number;
  readonly leaseMs: number;
  readonly pollMs: number;
  readonly graceMs: number;
  readonly name: string;
  readonly onError: (error: unknown) => void;
  /** The threads pool to make (its `onError` is the worker's), or undefined for the async pool. */
  readonly threads: Omit<ThreadPoolOptions, 'onError'> | undefined;
}

/** Checks a worker's options (throws VALIDATION, saying what is allowed) and fills in the defaults. */
export function workerSettings(options: WorkerOptions): WorkerSettings {
  const queues = options.queues ?? ['default'];
  const concurrency = positive(options.concurrency ?? 16, 'concurrency');
  const batchSize = positive(options.batchSize ?? Math.min(concurrency, 100), 'batchSize');
  const leaseMs = timerMs(options.leaseMs ?? 30_000, 'leaseMs', 1);
  const pollMs = timerMs(options.pollMs ?? 100, 'pollMs', 1);
  const graceMs = timerMs(options.shutdownGraceMs ?? 10_000, 'shutdownGraceMs', 0);
  const name = options.name ?? `${hostname()}:${process.pid}:${newToken().slice(0, 6)}`;
  const onError = options.onError ?? ((e: unknown) => console.error(`lovage worker ${name}: ${e instanceof Error ? e.message : String(e)}`));
  if (queues.length === 0) throw new LovageError('VALIDATION', 'worker queues must name at least one queue');
  const pool = options.pool ?? 'async';
  let threads: WorkerSettings['threads'];
  if (pool === 'async') {
    for (const k of ['threads', 'maxTasksPerChild', 'appModule'] as const) {
      if (options[k] !== undefined) throw new LovageError('VALIDATION', `worker ${k} applies to pool 'threads' only; set pool: 'threads' or drop ${k}`);
    }
    threads = undefined;
  } else if (pool === 'threads') {
    if (options.appModule === undefined || options.appModule === '') throw new LovageError('VALIDATION', "worker appModule is required with pool 'threads': the path or file: URL of the module that creates the app and registers its tasks (each thread imports it)");
    const mod = typeof options.appModule === 'string' ? moduleFile(options.appModule) : undefined;
    if (!mod) throw new LovageError('VALIDATION', `worker appModule ${JSON.stringify(options.appModule)}: no such file; give the path or file: URL of the module that creates the app`);
    const size = positive(options.threads ?? concurrency, 'threads');
    if (size > concurrency) throw new LovageError('VALIDATION', `worker threads (${size}) must be at most concurrency (${concurrency}): a thread runs one task at a time`);
    const maxTasksPerChild = options.maxTasksPerChild === undefined ? undefined : positive(options.maxTasksPerChild, 'maxTasksPerChild');
    threads = { appModule: mod.url, size, ...(maxTasksPerChild !== undefined ? { maxTasksPerChild } : {}) };
  } else {
    throw new LovageError('VALIDATION', `worker pool ${JSON.stringify(pool)} is invalid; allowed are 'async', 'threads'`);
  }
  return { queues, concurrency, batchSize, leaseMs, pollMs, graceMs, name, onError, threads };
}

/**
 * A time the worker waits with a timer (the heartbeat every `leaseMs / 3`, the idle poll, the grace
 * period): Node fires a timer longer than MAX_TIMER_MS (2^31-1 ms) after 1 ms, so a longer one would
 * heartbeat or poll the store every millisecond.
 */
function timerMs(n: number, what: string, min: number): number {
  if (!Number.isInteger(n) || n < min || n > MAX_TIMER_MS) throw new LovageError('VALIDATION', `worker ${what} must be an integer from ${min} to ${MAX_TIMER_MS} ms (2^31-1, ~24.8 days: Node's longest timer), got ${String(n)}`);
  return n;
}

function positive(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new LovageError('VALIDATION', `worker ${what} must be an integer ≥ 1, got ${String(n)}`);
  return n;
}

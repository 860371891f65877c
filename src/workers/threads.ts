// The `threads` pool: tasks run in worker threads, so that a hard time limit can really stop one
// (the thread is terminated, even in a loop that never yields) and a thread that leaks is replaced
// after `maxTasksPerChild` tasks. One task at a time per thread. Threads start on demand (up to
// `size`, one at a time), each imports the app module once; a terminated or recycled thread is
// replaced at once.
// See docs/tasks.md (Pools).
import { Worker as Thread } from 'node:worker_threads';
import type { Json } from '../canvas/json.ts';
import { LovageError } from '../errors.ts';
import { WorkerLostError } from './execution.ts';
import { encodeThrown, reviveThrown, type ContextData, type FromThread, type Thrown, type ToThread } from './thread-protocol.ts';

const entry = new URL('./thread-entry.mjs', import.meta.url);

/** What the pool runs: a task by name, with its args and context, under a key (the lease token). */
export interface ThreadJob {
  readonly key: string;
  readonly task: string;
  readonly args: readonly Json[];
  readonly ctx: ContextData;
  /** Answers the task's `ctx.heartbeat()` (extends its lease; stays in the worker, never sent). */
  readonly heartbeat: () => Promise<boolean>;
}

/**
 * How a task ended in its thread; `thrown` is revived (see reviveThrown). `lost`: its thread died of an
 * error the task did not throw (one an earlier task left behind): the task is not to blame, it runs again.
 */
export type ThreadResult = { ok: true; value: Json } | { ok: false; thrown: unknown } | { ok: false; lost: string };

/** A task handed to the pool. */
export interface ThreadRun {
  /** Resolves with the thread's id once a thread starts the task (it may wait for a free one). */
  readonly started: Promise<number>;
  /** Resolves (never rejects) with the outcome, or the reason it was cut short. */
  readonly result: Promise<ThreadResult>;
  /**
   * Aborts the task's `signal` in its thread. A task still waiting for a free thread never starts: it
   * leaves the queue and `result` resolves as cut short with `reason` (a cancel or a lost lease: its
   * outcome is fenced, as a started task's would be).
   */
  abort(reason: unknown): void;
  /** Ends the task now: its thread is terminated (a fresh one replaces it on demand). */
  terminate(reason: unknown): void;
}

export interface ThreadPoolOptions {
  /** File URL of the module whose exported app holds the tasks. */
  readonly appModule: string;
  /** Most threads. */
  readonly size: number;
  /** A thread is replaced after running this many tasks (default: never). */
  readonly maxTasksPerChild?: number;
  /** Errors that belong to no task (an idle thread that died, a module that failed to load). */
  readonly onError: (error: unknown) => void;
}

interface Slot {
  readonly thread: Thread;
  ready: boolean;
  tasks: number;
  job: Job | undefined;
  /** The error no code caught that ends the thread, and whose code threw it (see thread-main.ts). */
  uncaught: { error: unknown; owner: number | undefined; task: string | undefined } | undefined;
}

interface Job {
  readonly id: number;
  readonly spec: ThreadJob;
  aborted: Thrown | undefined;
  slot: Slot | undefined;
  settled: boolean;
  readonly start: (threadId: number) => void;
  readonly settle: (r: ThreadResult) => void;
}

export class ThreadPool {
  readonly #options: ThreadPoolOptions;
  /** Live threads (starting, idle or busy); a thread leaves this set when it is ended or dies. */
  readonly #slots = new Set<Slot>();
  readonly #queue: Job[] = [];
  readonly #byKey = new Map<string, Job>();
  #nextId = 1;
  #closed = false;
  /** The most threads alive at once so far: the pool keeps that many (up to #capacity). */
  #warm = 0;
  /** Most threads: the pool's size, or, after a thread failed to load the module, the threads still alive (at least 1). */
  #capacity: number;

  constructor(options: ThreadPoolOptions) {
    this.#options = options;
    this.#capacity = options.size;
  }

  /** Threads alive now. */
  get threads(): number {
    return this.#slots.size;
  }

  /** Queues `spec`; a free thread starts it (a new thread is started when none is free and there is room). */
  run(spec: ThreadJob): ThreadRun {
    let start!: (threadId: number) => void;
    let settle!: (r: ThreadResult) => void;
    const started = new Promise<number>((r) => { start = r; });
    const result = new Promise<ThreadResult>((r) => { settle = r; });
    const job: Job = { id: this.#nextId++, spec, aborted: undefined, slot: undefined, settled: false, start, settle };
    if (this.#closed) {
      this.#settle(job, { ok: false, thrown: closedError() });
    } else {
      this.#byKey.set(spec.key, job);
      this.#queue.push(job);
      this.#dispatch();
    }
    return {
      started,
      result,
      abort: (reason) => this.#abort(job, reason),
      terminate: (reason) => this.#terminate(job, reason),
    };
  }

  /** Terminates the thread running the task under `key` (a lease token); false when there is none. */
  terminate(key: string, reason: unknown): boolean {
    const job = this.#byKey.get(key);
    if (!job) return false;
    this.#terminate(job, reason);
    return true;
  }

  /** Ends every thread now; tasks not finished resolve as cut short (the worker has released them). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) this.#settle(job, { ok: false, thrown: closedError() });
    const threads = [...this.#slots].map((s) => s.thread);
    for (const s of this.#slots) if (s.job) this.#settle(s.job, { ok: false, thrown: closedError() });
    this.#slots.clear();
    await Promise.all(threads.map((t) => t.terminate().catch(() => undefined)));
  }

  #abort(job: Job, reason: unknown): void {
    if (job.settled || job.aborted) return;
    if (!job.slot) {
      // Not started: it never will be (its run was cancelled, or its lease lost).
      const i = this.#queue.indexOf(job);
      if (i >= 0) this.#queue.splice(i, 1);
      this.#settle(job, { ok: false, thrown: reason });
      this.#dispatch();
      return;
    }
    job.aborted = encodeThrown(reason);
    job.slot.thread.postMessage({ type: 'abort', id: job.id, reason: job.aborted });
  }

  #terminate(job: Job, reason: unknown): void {
    if (job.settled) return;
    const slot = job.slot;
    if (slot) {
      this.#replace(slot);
    } else {
      const i = this.#queue.indexOf(job);
      if (i >= 0) this.#queue.splice(i, 1);
    }
    this.#settle(job, { ok: false, thrown: reason });
    this.#dispatch();
  }

  #settle(job: Job, result: ThreadResult): void {
    if (job.settled) return;
    job.settled = true;
    if (this.#byKey.get(job.spec.key) === job) this.#byKey.delete(job.spec.key);
    if (job.slot?.job === job) job.slot.job = undefined;
    job.settle(result);
  }

  /** Hands queued tasks to idle threads, and starts threads for the rest while there is room. */
  #dispatch(): void {
    if (this.#closed) return;
    let starting = 0;
    let busy = 0;
    for (const slot of this.#slots) {
      if (!slot.ready) starting++;
      else if (!slot.job && this.#queue.length > 0) this.#start(slot, this.#queue.shift()!);
      if (slot.job) busy++;
    }
    // Threads wanted: one per task running or waiting, and never fewer than were warm (a recycled or
    // terminated thread is replaced at once). They start one at a time: a start is mostly CPU (the
    // loader, the app module), so starting several at once only delays the first one.
    const wanted = Math.min(this.#capacity, Math.max(this.#warm, busy + this.#queue.length));
    if (starting === 0 && this.#slots.size < wanted) this.#spawn();
  }

  /** Ends a thread; #dispatch starts its successor. */
  #replace(slot: Slot): void {
    this.#slots.delete(slot);
    void slot.thread.terminate().catch(() => undefined);
  }

  #start(slot: Slot, job: Job): void {
    slot.job = job;
    job.slot = slot;
    const { task, args, ctx } = job.spec;
    slot.thread.postMessage({ type: 'run', id: job.id, task, args, ctx });
    job.start(slot.thread.threadId);
  }

  #spawn(): void {
    const thread = new Thread(entry, { workerData: { appModule: this.#options.appModule } });
    // The worker's own loop keeps the process alive while it runs; an idle thread does not.
    thread.unref();
    const slot: Slot = { thread, ready: false, tasks: 0, job: undefined, uncaught: undefined };
    this.#slots.add(slot);
    this.#warm = Math.max(this.#warm, this.#slots.size);
    thread.on('message', (m: FromThread) => this.#onMessage(slot, m));
    thread.on('error', (e) => this.#onDeath(slot, e));
    thread.on('exit', (code) => this.#onDeath(slot, undefined, code));
  }

  #onMessage(slot: Slot, m: FromThread): void {
    if (!this.#slots.has(slot)) return; // ended by the pool: whatever it still says is dropped
    if (m.type === 'ready') {
      slot.ready = true;
      this.#capacity = this.#options.size;
    } else if (m.type === 'loadFailed') {
      this.#slots.delete(slot);
      void slot.thread.terminate().catch(() => undefined);
      this.#loadFailed(reviveThrown(m.error));
    } else if (m.type === 'heartbeat') {
      this.#heartbeat(slot, m.id, m.seq);
      return;
    } else if (m.type === 'uncaught') {
      slot.uncaught = { error: reviveThrown(m.error), owner: m.owner, task: m.task };
      return; // the thread ends now: see #onDeath
    } else {
      const job = slot.job;
      if (!job || job.id !== m.id) return;
      slot.tasks++;
      this.#settle(job, m.ok ? { ok: true, value: m.value } : { ok: false, thrown: reviveThrown(m.thrown) });
      const max = this.#options.maxTasksPerChild;
      // Recycled: ended while idle, so nothing is cut short.
      if (max !== undefined && slot.tasks >= max) this.#replace(slot);
    }
    this.#dispatch();
  }

  /** Answers a task's `ctx.heartbeat()`; a task no longer running there is told its lease is not held. */
  #heartbeat(slot: Slot, id: number, seq: number): void {
    const job = slot.job;
    const answer = (m: ToThread) => { if (this.#slots.has(slot)) slot.thread.postMessage(m); };
    if (!job || job.id !== id) {
      answer({ type: 'heartbeat', seq, held: false });
      return;
    }
    job.spec.heartbeat().then((held) => answer({ type: 'heartbeat', seq, held }), (e: unknown) => answer({ type: 'heartbeat', seq, error: encodeThrown(e) }));
  }

  /**
   * A thread ended that the pool did not end: an error no code caught (the thread said whose code threw
   * it, see thread-main.ts), `process.exit()`, or a failed start.
   */
  #onDeath(slot: Slot, error: unknown, code?: number): void {
    if (!this.#slots.delete(slot)) return;
    const job = slot.job;
    const uncaught = slot.uncaught;
    if (uncaught) error = uncaught.error;
    if (job && uncaught && uncaught.owner !== job.id) {
      // Not the running task's error (an earlier task's timer, say): reported, and the task runs again,
      // counted like a lost lease (maxLeaseExpiries bounds it, should it be the culprit after all).
      const whose = uncaught.task !== undefined ? `task ${uncaught.task} (an earlier task in that thread) left behind` : 'thrown by no task the thread knows of (module code, or a callback that lost its task\'s context)';
      this.#options.onError(new LovageError('VALIDATION', `a pool thread died of an error ${whose}: ${describe(error)}; task ${job.spec.task}, which was running there, did not throw it and runs again`));
      this.#settle(job, { ok: false, lost: `its pool thread died of an error task ${job.spec.task} did not throw (${describe(error)})` });
    } else if (job) {
      // An error thrown outside the task's promise (a timer's callback...) by the task's own code belongs to the task.
      const thrown = error ?? new WorkerLostError(`the thread running task ${job.spec.task} exited with code ${String(code)} before the task finished (process.exit() in a task ends its thread)`);
      this.#settle(job, { ok: false, thrown });
    } else if (!slot.ready) {
      this.#loadFailed(error ?? new Error(`the thread exited with code ${String(code)} while it loaded the app module`));
    } else if (error !== undefined) {
      const whose = uncaught?.task !== undefined ? `task ${uncaught.task}` : 'its last task';
      this.#options.onError(new LovageError('VALIDATION', `an idle pool thread died of an error ${whose} left behind (a fresh thread replaces it): ${describe(error)}`));
    }
    this.#dispatch();
  }

  /**
   * A thread could not load the app module: said once through onError. With no thread able to run
   * them, the queued tasks fail with that error (so that a module that never loads fails tasks
   * instead of starting threads without end).
   */
  #loadFailed(cause: unknown): void {
    const error = new LovageError('VALIDATION', `threads pool: the app module ${this.#options.appModule} failed to load in a thread: ${describe(cause)}`);
    if (cause instanceof Error && cause.stack) error.stack = `${error.name}: ${error.message}\n${cause.stack}`;
    this.#options.onError(error);
    // No more threads than are alive now until one loads (with none alive, one try per new demand).
    this.#warm = 0;
    this.#capacity = Math.max(1, this.#slots.size);
    if ([...this.#slots].some((s) => s.ready)) return;
    for (const job of this.#queue.splice(0)) this.#settle(job, { ok: false, thrown: error });
  }
}

function closedError(): LovageError {
  return new LovageError('LEASE_LOST', 'the threads pool was closed (the worker is shutting down)');
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

import { hostname } from 'node:os';
import { assertJson, type Json } from '../canvas/json.ts';
import { parseDuration } from '../app/duration.ts';
import { LovageError } from '../errors.ts';
import type { ClaimedNode, ClaimRequest, EventStore } from '../eventstore/store.ts';
import { newToken } from '../eventstore/token.ts';
import { contextStorage, type TaskContext } from './context.ts';
import type { Completion, Coordinator } from './coordinator.ts';
import { errorInfo, limitsFor, planFailure, RetryRequest, SoftTimeLimitExceeded, TaskExpiredError, TimeLimitExceeded, WorkerLostError, type TaskDefinition } from './execution.ts';
import type { HookEmitter } from './hooks.ts';
import { RateLimiter } from './rate-limit.ts';
import { moduleFile } from '../app/load-app.ts';
import { ThreadPool, type ThreadRun } from './threads.ts';

/** Options of a worker. */
export interface WorkerOptions {
  /** Queues to consume (default `['default']`). */
  readonly queues?: readonly string[];
  /** Most tasks running at once (default 16). */
  readonly concurrency?: number;
  /** Most nodes claimed, and completions recorded, per store transaction (default `min(concurrency, 100)`). */
  readonly batchSize?: number;
  /** Lease length, ms (default 30,000). A worker silent this long loses its nodes to others. */
  readonly leaseMs?: number;
  /** Longest idle wait before asking the store again, ms (default 100); local appends wake it at once. */
  readonly pollMs?: number;
  /** How long `stop()` lets running tasks finish before releasing them, ms (default 10,000). */
  readonly shutdownGraceMs?: number;
  /** The worker's name in the history (default `host:pid:random`). */
  readonly name?: string;
  /**
   * Called with errors the worker survives: a store that does not answer (it backs off and retries),
   * a run quarantined because its log does not fold. Default: one line on stderr.
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

/** What a worker needs of its app. */
export interface WorkerHost {
  readonly store: EventStore;
  readonly coordinator: Coordinator;
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  /** Calls the app's hooks (`app.on`); a hook that throws is reported, never fails the task. */
  readonly hooks?: HookEmitter;
}

/** A running node; its AbortController is made only if the task reads `signal` (most never do). */
class InFlight {
  #controller: AbortController | undefined;
  #reason: unknown;
  #aborted = false;
  /** In the threads pool, the task in its thread: an abort is passed on to the thread's signal. */
  #thread: ThreadRun | undefined;
  constructor(readonly node: ClaimedNode) {}
  get thread(): ThreadRun | undefined {
    return this.#thread;
  }
  set thread(run: ThreadRun) {
    this.#thread = run;
    if (this.#aborted) run.abort(this.#reason);
  }
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#thread?.abort(reason);
  }
}

/** A store call on its way: what it claims, and once back what it claimed or how it failed. */
interface Flight {
  readonly claim: ClaimRequest | undefined;
  settled: boolean;
  failed: boolean;
  error: unknown;
  claimed: ClaimedNode[];
}

/** An attempt's end: a value, a thrown error, or handed back unstarted for `defer` ms (a rate limit). */
type Result = { ok: true; value: Json; expired?: true } | { ok: false; thrown: unknown } | { ok: false; defer: number; reason: string };

/**
 * A worker: claims ready nodes of its queues in batches, runs them, records each outcome fenced by
 * its lease token (claiming the next batch in the same transaction), heartbeats its leases, and
 * shuts down gracefully.
 *
 * @example
 * const worker = app.worker({ queues: ['default'], concurrency: 8 })
 * process.on('SIGTERM', () => worker.stop())
 */
export class Worker {
  readonly name: string;
  readonly #host: WorkerHost;
  readonly #queues: readonly string[];
  readonly #concurrency: number;
  readonly #batchSize: number;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #graceMs: number;
  readonly #onError: (error: unknown) => void;
  /** The threads pool, or undefined for the async pool. */
  readonly #pool: ThreadPool | undefined;
  readonly #inFlight = new Map<string, InFlight>();
  /** Global rate limits (made at start, once the store is open). */
  #limiter!: RateLimiter;
  /** Finished nodes whose outcome is not recorded yet: their leases are kept alive too. */
  readonly #unrecorded = new Map<string, ClaimedNode>();
  #pending: Completion[] = [];
  /** Store calls that may be on their way at once: 2 on a server store (`EventStore.pipelined`), else 1. */
  #depth = 1;
  /** Slots promised to claims on their way. */
  #reserved = 0;
  /** Whether the last claim came back full (more is probably ready). */
  #backlog = false;
  /** Whether the last record went out beside others (see Coordinator.record): then batches are split in two. */
  #overlaps = false;
  #running = false;
  #wake: (() => void) | undefined;
  /** A wake-up that came while the loop was busy: the next idle wait returns at once. */
  #woken = false;
  #loop: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopping: Promise<void> | undefined;
  /** The last error the worker met (see `onError`). */
  lastError: unknown;

  constructor(host: WorkerHost, options: WorkerOptions = {}) {
    this.#host = host;
    this.#queues = options.queues ?? ['default'];
    this.#concurrency = positive(options.concurrency ?? 16, 'concurrency');
    this.#batchSize = positive(options.batchSize ?? Math.min(this.#concurrency, 100), 'batchSize');
    this.#leaseMs = positive(options.leaseMs ?? 30_000, 'leaseMs');
    this.#pollMs = positive(options.pollMs ?? 100, 'pollMs');
    this.#graceMs = Math.max(0, options.shutdownGraceMs ?? 10_000);
    this.name = options.name ?? `${hostname()}:${process.pid}:${newToken().slice(0, 6)}`;
    this.#onError = options.onError ?? ((e) => console.error(`lovage worker ${this.name}: ${e instanceof Error ? e.message : String(e)}`));
    if (this.#queues.length === 0) throw new LovageError('VALIDATION', 'worker queues must name at least one queue');
    const pool = options.pool ?? 'async';
    if (pool === 'async') {
      for (const k of ['threads', 'maxTasksPerChild', 'appModule'] as const) {
        if (options[k] !== undefined) throw new LovageError('VALIDATION', `worker ${k} applies to pool 'threads' only; set pool: 'threads' or drop ${k}`);
      }
      this.#pool = undefined;
    } else if (pool === 'threads') {
      if (options.appModule === undefined || options.appModule === '') throw new LovageError('VALIDATION', "worker appModule is required with pool 'threads': the path or file: URL of the module that creates the app and registers its tasks (each thread imports it)");
      const mod = typeof options.appModule === 'string' ? moduleFile(options.appModule) : undefined;
      if (!mod) throw new LovageError('VALIDATION', `worker appModule ${JSON.stringify(options.appModule)}: no such file; give the path or file: URL of the module that creates the app`);
      const threads = positive(options.threads ?? this.#concurrency, 'threads');
      if (threads > this.#concurrency) throw new LovageError('VALIDATION', `worker threads (${threads}) must be at most concurrency (${this.#concurrency}): a thread runs one task at a time`);
      const maxTasksPerChild = options.maxTasksPerChild === undefined ? undefined : positive(options.maxTasksPerChild, 'maxTasksPerChild');
      this.#pool = new ThreadPool({ appModule: mod.url, size: threads, ...(maxTasksPerChild !== undefined ? { maxTasksPerChild } : {}), onError: (e) => this.#report(e) });
    } else {
      throw new LovageError('VALIDATION', `worker pool ${JSON.stringify(pool)} is invalid; allowed are 'async', 'threads'`);
    }
  }

  /** Starts claiming (a stopped worker does not start again). */
  start(): this {
    if (this.#running || this.#stopping) return this;
    this.#running = true;
    this.#depth = this.#host.store.pipelined === true ? 2 : 1;
    this.#limiter = new RateLimiter(this.#host.store);
    this.#unsubscribe = this.#host.store.onReady(() => this.#poke());
    this.#heartbeat = setInterval(() => void this.#extendLeases(), Math.max(10, Math.floor(this.#leaseMs / 3)));
    this.#heartbeat.unref();
    this.#loop = this.#run();
    return this;
  }

  /** Nodes running now. */
  get active(): number {
    return this.#inFlight.size;
  }

  /**
   * Aborts the AbortSignal of this worker's running tasks of `runId` (a cancel): their outcomes,
   * if they still report one, are fenced. Workers in other processes notice at their next heartbeat.
   */
  abortRun(runId: string, reason: string, terminate = false, nodes?: readonly string[]): void {
    const under = (id: string) => nodes === undefined || nodes.some((n) => id === n || id.startsWith(`${n}.`));
    for (const f of this.#inFlight.values()) {
      if (f.node.runId !== runId || !under(f.node.nodeId)) continue;
      const error = new LovageError('CANCELLED', `run ${runId} was cancelled: ${reason}${terminate && f.thread ? '; its thread was terminated' : ''}`, { runId });
      f.abort(error);
      if (terminate) f.thread?.terminate(error);
    }
  }

  /**
   * Stops claiming, lets running tasks finish for `shutdownGraceMs`, then aborts and releases the
   * rest (NodeReleased: another worker takes them at once) and records every outcome.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    // Never started (its store never opened, or an inert worker in a pool thread): nothing to stop.
    if (!this.#loop) return;
    this.#running = false;
    this.#poke();
    await this.#loop;
    const deadline = Date.now() + this.#graceMs;
    while (this.#inFlight.size > 0 && Date.now() < deadline) {
      await this.#idle(Math.min(20, deadline - Date.now()));
      await this.#flush().catch((e: unknown) => this.#report(e));
    }
    // Out of #inFlight before the abort, with no await in between: an aborted task's outcome is then
    // dropped (never recorded as a failure), and its release is the one outcome recorded.
    const at = await this.#now();
    const flights = [...this.#inFlight.values()];
    this.#inFlight.clear();
    for (const f of flights) {
      f.abort(new LovageError('LEASE_LOST', `worker ${this.name} is shutting down`));
      this.#pending.push({ type: 'Release', runId: f.node.runId, nodeId: f.node.nodeId, leaseToken: f.node.leaseToken, reason: `worker ${this.name} shut down`, at });
    }
    await this.#flush().catch((e: unknown) => this.#report(e));
    // Threads still running a released task are ended: their outcome would be dropped anyway.
    await this.#pool?.close();
    clearInterval(this.#heartbeat);
    this.#unsubscribe?.();
  }

  async #run(): Promise<void> {
    let idleMs = 1;
    let backoffMs = 10;
    // Store calls on their way, oldest first. On a server store (`pipelined`) a second one may follow
    // before the first is back: this process runs the tasks of one batch and decides their outcomes while
    // the store works on the next. The coordinator sends a record at once when it depends on no record on
    // its way, else once those are back (see Coordinator.record).
    const flights: Flight[] = [];
    while (this.#running || flights.length > 0) {
      const first = flights[0];
      if (first?.settled) {
        flights.shift();
        if (first.failed) {
          this.#report(first.error);
          await sleep(backoffMs);
          backoffMs = Math.min(5_000, backoffMs * 2);
          continue;
        }
        backoffMs = 10;
        const claimed = first.claimed;
        // A full claim means more is probably ready: the next claim goes out before these finish.
        if (first.claim) this.#backlog = claimed.length >= first.claim.limit;
        for (const node of claimed) this.#execute(node);
        if (claimed.length > 0) {
          idleMs = 1;
          // Let quick tasks settle so their outcomes go out in one batch.
          await new Promise<void>((r) => setImmediate(r));
          continue;
        }
        if (this.#pending.length > 0 || flights.length > 0 || !this.#running) continue;
        // Woken at once by a local append or a finished task; the poll finds other processes' work.
        await this.#idle(this.#free() > 0 ? idleMs : this.#pollMs);
        idleMs = Math.min(this.#pollMs, idleMs * 2);
        continue;
      }
      if (this.#running && flights.length < this.#depth) {
        const claim = this.#claimRequest(flights.length);
        if (this.#pending.length > 0 || claim) {
          // Two calls leaving together may reach Redis together, and then it runs both before it answers
          // either: from an empty pipeline, the (small, quick) claim goes first, the outcomes right after,
          // when no claim can start a node those outcomes change (else they are recorded first, as always).
          const claimFirst = claim !== undefined && flights.length === 0 && this.#depth > 1 && this.#overlaps && this.#backlog && this.#pending.length > 0 && this.#host.coordinator.independent(this.#pending);
          flights.push(this.#send(claim, flights.length === 0, !claimFirst));
          continue;
        }
      }
      if (flights.length > 0) {
        // Woken by a store call coming back or a finished task; with room for another call, let quick
        // tasks settle first so that their outcomes go in one batch.
        await this.#nudged();
        if (flights.length < this.#depth && !flights[0]!.settled) await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      await this.#idle(this.#free() > 0 ? idleMs : this.#pollMs);
      idleMs = Math.min(this.#pollMs, idleMs * 2);
    }
  }

  /** Slots neither running a task nor promised to a claim on its way. */
  #free(): number {
    return this.#concurrency - this.#inFlight.size - this.#reserved;
  }

  /**
   * The claim to send with the next store call, if any. Behind a call already on its way, only when the
   * last claim came back full. While records go out beside each other, claims take half of
   * `concurrency` at most, so that one batch runs while the next is claimed.
   */
  #claimRequest(onTheWay: number): ClaimRequest | undefined {
    const free = this.#free();
    if (free <= 0 || (onTheWay > 0 && !this.#backlog)) return undefined;
    const limit = Math.min(free, this.#batchSize, this.#depth > 1 && this.#overlaps ? Math.ceil(this.#concurrency / 2) : free);
    return { queues: this.#queues, limit, worker: this.name, leaseMs: this.#leaseMs };
  }

  /**
   * Starts a store call: pending outcomes (unless not `outcomes`) and `claim` in one transaction (through
   * the store's plain claim when `alone` and nothing is recorded).
   */
  #send(claim: ClaimRequest | undefined, alone: boolean, outcomes = true): Flight {
    const flight: Flight = { claim, settled: false, failed: false, error: undefined, claimed: [] };
    const reserved = claim?.limit ?? 0;
    this.#reserved += reserved;
    let call: Promise<ClaimedNode[]>;
    if (this.#pending.length === 0 && claim && alone && this.#depth === 1) {
      call = this.#host.store.claim(claim).then((claimed) => {
        for (const node of claimed) this.#host.coordinator.observe(node.events);
        return claimed;
      });
    } else {
      call = this.#flush(claim, outcomes); // outcomes and the next claim: one transaction
    }
    void call.then(
      (claimed) => { flight.claimed = claimed; },
      (e: unknown) => { flight.failed = true; flight.error = e; },
    ).then(() => {
      this.#reserved -= reserved;
      flight.settled = true;
      this.#poke();
    });
    return flight;
  }

  /** Waits for a poke (no timer: a store call on its way always pokes when it comes back). */
  #nudged(): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        this.#woken = false;
        resolve();
      };
    });
  }

  #idle(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        this.#woken = false;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.#wake = done;
    });
  }

  /** Wakes the loop now, or at its next idle wait if it is busy. */
  #poke(): void {
    if (this.#wake) this.#wake();
    else this.#woken = true;
  }

  /** The store's clock; if the store does not answer, the local one (the record is kept either way). */
  async #now(): Promise<number> {
    try {
      return await this.#host.store.now();
    } catch (e) {
      this.#report(e);
      return Date.now();
    }
  }

  #execute(node: ClaimedNode): void {
    const flight = new InFlight(node);
    this.#inFlight.set(node.leaseToken, flight);
    const def = this.#host.tasks.get(node.task);
    const ctx: TaskContext = {
      runId: node.runId,
      nodeId: node.nodeId,
      task: node.task,
      attempt: node.attempt,
      idempotencyKey: `${node.runId}/${node.nodeId}`,
      get signal() {
        return flight.signal;
      },
      heartbeat: heartbeatOf(this.#host.store, node, this.#leaseMs),
      retry: retryAttempt,
    };
    const started = Date.now();
    void this.#attempt(def, node, ctx, flight).then(async (result) => {
      // The clock first: the node stays in #inFlight until its outcome is pending (shutdown waits for it).
      const at = await this.#now();
      if (!this.#inFlight.delete(node.leaseToken)) return; // released at shutdown
      this.#unrecorded.set(node.leaseToken, node);
      if ('defer' in result) {
        this.#pending.push({ type: 'Defer', runId: node.runId, nodeId: node.nodeId, leaseToken: node.leaseToken, until: at + result.defer, reason: result.reason, at });
        this.#poke();
        return;
      }
      let outcome: Extract<Completion, { type: 'Complete' }>['outcome'];
      if (result.ok) {
        outcome = result;
        // An expired node skipped (onExpire 'skip') never ran: no taskPostrun.
        if (!result.expired && this.#hooks('taskPostrun')) this.#emit('taskPostrun', { ...infoOf(node), state: 'succeeded', result: result.value, durationMs: Date.now() - started });
      } else {
        const plan = planFailure(def, node.options, node.attempt, 'thrown' in result ? result.thrown : undefined, at);
        const error = errorInfo(plan.error);
        outcome = { ok: false, error, ...(plan.retryAt !== undefined ? { retryAt: plan.retryAt } : {}) };
        this.#emit('taskPostrun', { ...infoOf(node), state: plan.retryAt !== undefined ? 'retry' : 'failed', error, durationMs: Date.now() - started });
        if (plan.retryAt !== undefined) this.#emit('taskRetry', { ...infoOf(node), error, retryAt: plan.retryAt });
        else this.#emit('taskFailure', { ...infoOf(node), error });
      }
      this.#pending.push({ type: 'Complete', runId: node.runId, nodeId: node.nodeId, attempt: node.attempt, leaseToken: node.leaseToken, outcome, at });
      this.#poke();
    });
  }

  /** Whether any hook listens to `name` (so that a task's payload is built only then). */
  #hooks(name: Parameters<HookEmitter['has']>[0]): boolean {
    return this.#host.hooks?.has(name) === true;
  }

  #emit(...args: Parameters<HookEmitter['emit']>): void {
    try {
      this.#host.hooks?.emit(...args);
    } catch (e) {
      this.#report(e);
    }
  }

  /** One attempt: the checks that may refuse to run it (expired, lost too often), then the task under its time limits. */
  async #attempt(def: TaskDefinition | undefined, node: ClaimedNode, ctx: TaskContext, flight: InFlight): Promise<Result> {
    const startedAt = node.events.at(-1)?.event.at ?? Date.now();
    const expiresAt = node.options?.expiresAt;
    if (expiresAt !== undefined && startedAt > expiresAt) {
      if (node.options?.expireSkip) return { ok: true, value: null, expired: true };
      return { ok: false, thrown: new TaskExpiredError(`node ${node.nodeId} expired at ${new Date(expiresAt).toISOString()} before it started (claimed at ${new Date(startedAt).toISOString()}); it was not run`) };
    }
    if (def && node.events.some((e) => e.event.type === 'NodeLeaseExpired')) {
      let lost: number;
      try {
        lost = await this.#lostLeases(node);
      } catch (e) {
        return this.#unchecked(node, e);
      }
      if (lost > def.maxLeaseExpiries) {
        return { ok: false, thrown: new WorkerLostError(`node ${node.nodeId}'s lease ran out ${lost} times (its worker died or stalled each time); maxLeaseExpiries is ${def.maxLeaseExpiries}, so it is not run again`) };
      }
    }
    if (!def) return { ok: false, thrown: new LovageError('NOT_FOUND', `task "${node.task}" is not registered in worker ${this.name}; register it with app.task("${node.task}", fn) in the worker's app`) };
    if (!this.#limiter.freeNow(node.task, def.rateLimit)) {
      let wait: number;
      try {
        wait = await this.#limiter.wait(node.task, def.rateLimit);
      } catch (e) {
        return this.#unchecked(node, e);
      }
      if (wait > 0) return { ok: false, defer: wait, reason: `rate limit of task ${node.task}${def.rateLimit ? ` (${def.rateLimit.count} per ${def.rateLimit.periodMs} ms, or its run-time override)` : ' (run-time override)'}` };
    }
    if (this.#hooks('taskPrerun')) this.#emit('taskPrerun', { runId: node.runId, nodeId: node.nodeId, task: node.task, args: node.args, attempt: node.attempt });
    const limits = limitsFor(def, node.options);
    // The common case, kept lean: in-process, no time limit.
    if (!this.#pool && limits.soft === undefined && limits.hard === undefined) return this.#call(def.fn, node, ctx);
    const timers: NodeJS.Timeout[] = [];
    let softFired = false;
    let settled = false;
    let hardLimit: (r: Result) => void = () => undefined;
    const hard = new Promise<Result>((resolve) => { hardLimit = resolve; });
    /** The time limits start: at once in the async pool, when a thread starts the task in the threads pool. */
    const arm = () => {
      if (settled) return;
      if (limits.soft !== undefined) {
        timers.push(setTimeout(() => {
          softFired = true;
          flight.abort(new SoftTimeLimitExceeded(`task ${node.task} ran past its soft time limit of ${limits.soft} ms`));
        }, limits.soft));
      }
      if (limits.hard !== undefined) {
        timers.push(setTimeout(() => {
          // The async pool cannot stop the task's code: its outcome is decided now and whatever it
          // returns later is dropped. The threads pool terminates the task's thread.
          const error = new TimeLimitExceeded(`task ${node.task} ran past its time limit of ${limits.hard} ms${flight.thread ? '; its thread was terminated' : ''}`);
          flight.abort(error);
          flight.thread?.terminate(error);
          hardLimit({ ok: false, thrown: error });
        }, limits.hard));
      }
    };
    let run: Promise<Result>;
    if (this.#pool) {
      const thread = this.#pool.run({ key: node.leaseToken, task: node.task, args: node.args, ctx: { runId: ctx.runId, nodeId: ctx.nodeId, task: ctx.task, attempt: ctx.attempt, idempotencyKey: ctx.idempotencyKey } });
      flight.thread = thread;
      void thread.started.then(arm);
      run = thread.result;
    } else {
      run = this.#call(def.fn, node, ctx);
      arm();
    }
    try {
      const result = await Promise.race(limits.hard !== undefined ? [run, hard] : [run]);
      // A task that gave up because its soft limit aborted it failed by the soft limit.
      if (!result.ok && 'thrown' in result && softFired && isAbort(result.thrown)) return { ok: false, thrown: new SoftTimeLimitExceeded(`task ${node.task} was stopped by its soft time limit of ${limits.soft} ms`) };
      return result;
    } finally {
      settled = true;
      for (const t of timers) clearTimeout(t);
    }
  }

  /**
   * A check before the start needed the store and it did not answer (say it is restarting): the node is
   * handed back unstarted for a second (NodeDeferred, the attempt does not count), never failed for it.
   */
  #unchecked(node: ClaimedNode, error: unknown): Result {
    this.#report(error);
    return { ok: false, defer: UNCHECKED_DEFER_MS, reason: `the store did not answer the checks before node ${node.nodeId} started (${error instanceof Error ? error.message : String(error)}); it was not run` };
  }

  /** How many times the node's lease ran out since it was last reset (read from the log: rare). */
  async #lostLeases(node: ClaimedNode): Promise<number> {
    let lost = 0;
    for (const { event } of await this.#host.store.readStream(node.runId)) {
      if (event.type === 'NodeLeaseExpired' && event.nodeId === node.nodeId) lost++;
      else if (event.type === 'WorkflowResumed' && event.reset.includes(node.nodeId)) lost = 0;
    }
    return lost;
  }

  async #call(fn: (...args: never[]) => unknown, node: ClaimedNode, ctx: TaskContext): Promise<Result> {
    try {
      const value = (await contextStorage.run(ctx, () => fn(...(node.args as never[])))) ?? null;
      assertJson(value, `result of task ${node.task}`);
      return { ok: true, value };
    } catch (e) {
      return { ok: false, thrown: e };
    }
  }

  /** Records pending outcomes (and claims, when asked, in the same transaction). */
  async #flush(claim?: ClaimRequest, outcomes = true): Promise<ClaimedNode[]> {
    if ((!outcomes || this.#pending.length === 0) && !claim) return [];
    const batch = outcomes ? this.#pending : [];
    if (outcomes) this.#pending = [];
    try {
      const { quarantined, claimed, alone } = await this.#host.coordinator.record(batch, claim);
      this.#overlaps = alone;
      for (const c of batch) this.#unrecorded.delete(c.leaseToken);
      for (const q of quarantined) this.#report(q.error);
      return claimed;
    } catch (e) {
      this.#pending = batch.concat(this.#pending);
      throw e;
    }
  }

  #report(error: unknown): void {
    this.lastError = error;
    this.#onError(error);
  }

  async #extendLeases(): Promise<void> {
    const flights = [...this.#inFlight.values()];
    const leases = [...flights.map((f) => f.node), ...this.#unrecorded.values()];
    if (leases.length === 0) return;
    try {
      const held = await this.#host.store.extend(leases, this.#leaseMs);
      const lost = new Set<string>();
      held.forEach((ok, i) => {
        if (!ok && i < flights.length) {
          flights[i]!.abort(new LovageError('LEASE_LOST', `lease of node ${flights[i]!.node.nodeId} was lost; its outcome will be recorded as stale`));
          if (flights[i]!.thread) lost.add(flights[i]!.node.runId);
        }
      });
      // Threads pool: a lease lost to a cancel with `terminate` ends the task's thread too.
      for (const runId of lost) {
        const log = await this.#host.store.readStream(runId);
        for (const f of flights) {
          if (f.node.runId !== runId || !f.thread) continue;
          const id = f.node.nodeId;
          const last = log.findLast(({ event: e }) => e.type === 'WorkflowResumed' || ((e.type === 'WorkflowCancelled' || e.type === 'NodesAborted') && e.nodeIds.includes(id)))?.event;
          if ((last?.type === 'WorkflowCancelled' || last?.type === 'NodesAborted') && last.terminate) this.abortRun(runId, last.reason, true, [id]);
        }
      }
    } catch (e) {
      this.#report(e);
    }
  }
}

/** How long a node is handed back when the store did not answer the checks before its start. */
const UNCHECKED_DEFER_MS = 1000;

// Module-level helpers for the per-task hot path: under tsx (esbuild keepNames) every named closure
// made per task costs a defineProperty call.

/** `ctx.heartbeat` of a node. */
function heartbeatOf(store: EventStore, node: ClaimedNode, leaseMs: number): () => Promise<boolean> {
  return async () => (await store.extend([node], leaseMs))[0] === true;
}

/** `ctx.retry`: ends the attempt with a retry request. */
function retryAttempt(options: { countdown?: number | string; error?: unknown } = {}): never {
  throw new RetryRequest(options.countdown === undefined ? undefined : parseDuration(options.countdown, 'ctx.retry countdown'), options.error);
}

/** What hooks are told of a node. */
function infoOf(node: ClaimedNode): { runId: string; nodeId: string; task: string; args: readonly Json[]; attempt: number } {
  return { runId: node.runId, nodeId: node.nodeId, task: node.task, args: node.args, attempt: node.attempt };
}

function positive(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new LovageError('VALIDATION', `worker ${what} must be an integer ≥ 1, got ${String(n)}`);
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

function isAbort(e: unknown): boolean {
  return e instanceof SoftTimeLimitExceeded || (e instanceof Error && (e.name === 'AbortError' || e.cause instanceof SoftTimeLimitExceeded));
}

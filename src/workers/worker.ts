import { LovageError } from '../errors.ts';
import type { ClaimedNode, ClaimRequest, EventStore } from '../eventstore/store.ts';
import { Alarm } from './alarm.ts';
import { announce, announced, completionOf, contextOf, InFlight, runAttempt, type AttemptHost, type Result } from './attempt.ts';
import { ChurnMap } from './churn-map.ts';
import type { Completion, Coordinator } from './coordinator.ts';
import type { TaskDefinition } from './execution.ts';
import type { HookEmitter } from './hooks.ts';
import { extendLeases } from './leases.ts';
import { RateLimiter } from './rate-limit.ts';
import { ThreadPool } from './threads.ts';
import { workerSettings, type WorkerOptions } from './worker-options.ts';

export type { WorkerOptions } from './worker-options.ts';

/** How often a stopping worker sends its releases again after a store error (10, 20, 40... ms apart). */
const SHUTDOWN_RETRIES = 5;

/** What a worker needs of its app. */
export interface WorkerHost {
  readonly store: EventStore;
  readonly coordinator: Coordinator;
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  /** Calls the app's hooks (`app.on`); a hook that throws is reported, never fails the task. */
  readonly hooks?: HookEmitter;
}

/** A store call on its way: what it claims, and once back what it claimed or how it failed. */
interface Flight {
  readonly claim: ClaimRequest | undefined;
  settled: boolean;
  failed: boolean;
  error: unknown;
  claimed: ClaimedNode[];
}

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
  readonly #inFlight = new ChurnMap<string, InFlight>();
  /** What attempts need of this worker, with its global rate limits (made at start, once the store is open). */
  #attempts!: AttemptHost;
  /** Finished nodes whose outcome is not recorded yet: their leases are kept alive too. */
  readonly #unrecorded = new ChurnMap<string, ClaimedNode>();
  /**
   * Claimed nodes not started yet: their call came back before a call ahead of it did (calls are taken
   * in order). Their leases are kept alive too, or a slow call (or a backoff) ahead would let them run out.
   */
  readonly #waiting = new ChurnMap<string, ClaimedNode>();
  #pending: Completion[] = [];
  /**
   * What the hooks are told of a completion once it is recorded (see `announce`): its node and the
   * attempt's run time. Kept only while a hook listens to how attempts end.
   */
  readonly #announce = new Map<Completion, { node: ClaimedNode; durationMs: number }>();
  /**
   * Store calls that may be on their way at once: 2 on a server store (`EventStore.pipelined`; where
   * calls are costly, only when `concurrency` holds two whole batches), else 1.
   */
  #depth = 1;
  /** Slots promised to claims on their way. */
  #reserved = 0;
  /** Whether the last claim came back full (more is probably ready). */
  #backlog = false;
  /** Whether the last record went out beside others (see Coordinator.record): then batches are split in two. */
  #overlaps = false;
  #running = false;
  /** The loop's waits, and what ends them. */
  readonly #alarm = new Alarm();
  /**
   * The store said nodes may be ready after the last claim left: that claim may not have seen them, so
   * an empty answer is followed by another claim, not an idle wait (a wake-up that came while a claim
   * was on its way was lost, until the next poll).
   */
  #readyAgain = false;
  #loop: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopping: Promise<void> | undefined;
  /** The last error the worker met (see `onError`). */
  lastError: unknown;

  constructor(host: WorkerHost, options: WorkerOptions = {}) {
    this.#host = host;
    const settings = workerSettings(options);
    this.#queues = settings.queues;
    this.#concurrency = settings.concurrency;
    this.#batchSize = settings.batchSize;
    this.#leaseMs = settings.leaseMs;
    this.#pollMs = settings.pollMs;
    this.#graceMs = settings.graceMs;
    this.name = settings.name;
    this.#onError = settings.onError;
    this.#pool = settings.threads ? new ThreadPool({ ...settings.threads, onError: (e) => this.#report(e) }) : undefined;
  }

  /** Starts claiming (a stopped worker does not start again). */
  start(): this {
    if (this.#running || this.#stopping) return this;
    this.#running = true;
    const store = this.#host.store;
    this.#depth = store.pipelined === true && (store.costlyCalls !== true || this.#concurrency >= 2 * this.#batchSize) ? 2 : 1;
    this.#attempts = { name: this.name, store, leaseMs: this.#leaseMs, limiter: new RateLimiter(store), pool: this.#pool, hooks: this.#host.hooks, report: (e) => this.#report(e) };
    this.#unsubscribe = store.onReady(() => {
      this.#readyAgain = true;
      this.#alarm.poke();
    });
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
    this.#alarm.endBackOff();
    this.#alarm.poke();
    await this.#loop;
    const deadline = Date.now() + this.#graceMs;
    // Running tasks finish, and outcomes a failed store call left pending are sent again, within the grace time.
    while ((this.#inFlight.size > 0 || this.#pending.length > 0) && Date.now() < deadline) {
      await this.#alarm.idle(Math.min(20, deadline - Date.now()));
      await this.#flush().catch((e: unknown) => this.#report(e));
    }
    // Out of #inFlight before the abort, with no await in between: an aborted task's outcome is then
    // dropped (never recorded as a failure), and its release is the one outcome recorded.
    const at = await this.#now();
    const flights = this.#inFlight.values();
    this.#inFlight.clear();
    for (const f of flights) {
      f.abort(new LovageError('LEASE_LOST', `worker ${this.name} is shutting down`));
      this.#pending.push({ type: 'Release', runId: f.node.runId, nodeId: f.node.nodeId, leaseToken: f.node.leaseToken, reason: `worker ${this.name} shut down`, at });
    }
    // The releases (and any outcome still pending) go out, through a store blip too (~0.3 s of retries);
    // what a store down longer keeps from landing waits for its leases to run out.
    for (let retry = 0; this.#pending.length > 0 && retry <= SHUTDOWN_RETRIES; retry++) {
      try {
        await this.#flush();
      } catch (e) {
        this.#report(e);
        if (retry < SHUTDOWN_RETRIES) await sleep(10 * 2 ** retry);
      }
    }
    // Threads still running a released task are ended: their outcome would be dropped anyway.
    await this.#pool?.close();
    clearInterval(this.#heartbeat);
    this.#unsubscribe?.();
  }

  async #run(): Promise<void> {
    // After a busy spell, quick polls (1, 2, 4... ms) find other processes' new work soon, unless their
    // appends wake this one anyway (EventStore.wakesEveryProcess): then an empty claim costs a round trip
    // to the server for nothing, and one on its way delays the claim a wake-up asks for.
    const firstIdleMs = this.#host.store.wakesEveryProcess === true ? this.#pollMs : 1;
    let idleMs = firstIdleMs;
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
          if (this.#running) await this.#alarm.backOff(backoffMs);
          backoffMs = Math.min(5_000, backoffMs * 2);
          continue;
        }
        backoffMs = 10;
        const claimed = first.claimed;
        // A full claim means more is probably ready: the next claim goes out before these finish.
        if (first.claim) this.#backlog = claimed.length >= first.claim.limit;
        for (const node of claimed) this.#execute(node);
        if (claimed.length > 0) {
          idleMs = firstIdleMs;
          // Let quick tasks settle so their outcomes go out in one batch.
          await new Promise<void>((r) => setImmediate(r));
          continue;
        }
        if (this.#pending.length > 0 || flights.length > 0 || !this.#running || (this.#readyAgain && this.#free() > 0)) continue;
        // Woken at once by a local append or a finished task; the poll finds other processes' work.
        await this.#alarm.idle(this.#free() > 0 ? idleMs : this.#pollMs);
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
        await this.#alarm.nudged();
        if (flights.length < this.#depth && !flights[0]!.settled) await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      await this.#alarm.idle(this.#free() > 0 ? idleMs : this.#pollMs);
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
    if (claim) this.#readyAgain = false; // this claim sees what was appended before it left
    let call: Promise<ClaimedNode[]>;
    if (this.#pending.length === 0 && claim && alone && this.#depth === 1) {
      call = this.#host.store.claim(claim).then((claimed) => {
        this.#host.coordinator.observe(claimed);
        return claimed;
      });
    } else {
      call = this.#flush(claim, outcomes); // outcomes and the next claim: one transaction
    }
    void call.then(
      (claimed) => {
        flight.claimed = claimed;
        for (const node of claimed) this.#waiting.set(node.leaseToken, node);
      },
      (e: unknown) => {
        flight.failed = true;
        flight.error = e;
        // Whatever woke it (`#readyAgain`, cleared when it left) must be claimed by another call.
        if (claim) this.#readyAgain = true;
      },
    ).then(() => {
      this.#reserved -= reserved;
      flight.settled = true;
      this.#alarm.poke();
    });
    return flight;
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
    this.#waiting.delete(node.leaseToken);
    const flight = new InFlight(node);
    this.#inFlight.set(node.leaseToken, flight);
    const def = this.#host.tasks.get(node.task);
    const ctx = contextOf(this.#attempts, flight);
    const started = Date.now();
    let result: Result | Promise<Result>;
    try {
      result = runAttempt(this.#attempts, def, node, ctx, flight);
    } catch (e) {
      result = { ok: false, thrown: e };
    }
    const store = this.#host.store;
    if (result instanceof Promise || store.nowSync === undefined) void this.#finish(node, def, result, started);
    else this.#complete(node, def, result, store.nowSync(), started);
  }

  /** Once the attempt has its Result and the store's clock its time: see #complete. */
  async #finish(node: ClaimedNode, def: TaskDefinition | undefined, attempt: Result | Promise<Result>, started: number): Promise<void> {
    const result = await attempt;
    // The clock first: the node stays in #inFlight until its outcome is pending (shutdown waits for it).
    const store = this.#host.store;
    this.#complete(node, def, result, store.nowSync ? store.nowSync() : await this.#now(), started);
  }

  /** The outcome becomes pending, to be recorded with the next batch. */
  #complete(node: ClaimedNode, def: TaskDefinition | undefined, result: Result, at: number, started: number): void {
    if (!this.#inFlight.delete(node.leaseToken)) return; // released at shutdown
    this.#unrecorded.set(node.leaseToken, node);
    const completion = completionOf(def, node, result, at);
    // Hooks hear of it once it is recorded as the node's outcome (see #flush).
    if (completion.type === 'Complete' && announced(this.#attempts)) this.#announce.set(completion, { node, durationMs: Date.now() - started });
    this.#pending.push(completion);
    this.#alarm.poke();
  }

  /** Records pending outcomes (and claims, when asked, in the same transaction). */
  async #flush(claim?: ClaimRequest, outcomes = true): Promise<ClaimedNode[]> {
    if ((!outcomes || this.#pending.length === 0) && !claim) return [];
    const batch = outcomes ? this.#pending : [];
    if (outcomes) this.#pending = [];
    try {
      const { quarantined, claimed, alone, landed } = await this.#host.coordinator.record(batch, claim);
      this.#overlaps = alone;
      for (const c of batch) this.#unrecorded.delete(c.leaseToken);
      for (const q of quarantined) this.#report(q.error);
      if (this.#announce.size > 0) this.#announceRecorded(batch, landed);
      return claimed;
    } catch (e) {
      this.#pending = batch.concat(this.#pending);
      throw e;
    }
  }

  /** Tells the hooks how the recorded attempts of `batch` ended (`landed`); the rest were fenced or dropped: nothing is said of them. */
  #announceRecorded(batch: readonly Completion[], landed: readonly Completion[]): void {
    for (const c of landed) {
      const a = this.#announce.get(c);
      if (a) announce(this.#attempts, a.node, c, a.durationMs);
    }
    for (const c of batch) this.#announce.delete(c);
  }

  #report(error: unknown): void {
    this.lastError = error;
    try {
      this.#onError(error);
    } catch (e) {
      // An onError of the caller's that throws must not stop the loop (it would never claim again).
      console.error(`lovage: worker ${this.name}'s onError threw: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    }
  }

  async #extendLeases(): Promise<void> {
    try {
      await extendLeases(this.#host.store, this.#inFlight.values(), [...this.#unrecorded.values(), ...this.#waiting.values()], this.#leaseMs, (runId, nodeId, reason) => this.abortRun(runId, reason, true, [nodeId]));
    } catch (e) {
      this.#report(e);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

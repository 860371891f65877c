import { hostname } from 'node:os';
import { assertJson, type Json } from '../canvas/json.ts';
import type { TaskErrorInfo } from '../engine/events.ts';
import { LovageError } from '../errors.ts';
import type { ClaimedNode, ClaimRequest, EventStore } from '../eventstore/store.ts';
import { newToken } from '../eventstore/token.ts';
import { contextStorage, type TaskContext } from './context.ts';
import type { Completion, Coordinator } from './coordinator.ts';

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
}

/** What a worker needs of its app. */
export interface WorkerHost {
  readonly store: EventStore;
  readonly coordinator: Coordinator;
  readonly tasks: ReadonlyMap<string, (...args: never[]) => unknown>;
}

/** A running node; its AbortController is made only if the task reads `signal` (most never do). */
class InFlight {
  #controller: AbortController | undefined;
  #reason: unknown;
  #aborted = false;
  constructor(readonly node: ClaimedNode) {}
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
  }
}

type Outcome = { ok: true; value: Json } | { ok: false; error: TaskErrorInfo };

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
  readonly #inFlight = new Map<string, InFlight>();
  /** Finished nodes whose outcome is not recorded yet: their leases are kept alive too. */
  readonly #unrecorded = new Map<string, ClaimedNode>();
  #pending: Completion[] = [];
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
  }

  /** Starts claiming (a stopped worker does not start again). */
  start(): this {
    if (this.#running || this.#stopping) return this;
    this.#running = true;
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
   * Stops claiming, lets running tasks finish for `shutdownGraceMs`, then aborts and releases the
   * rest (NodeReleased: another worker takes them at once) and records every outcome.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
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
    clearInterval(this.#heartbeat);
    this.#unsubscribe?.();
  }

  async #run(): Promise<void> {
    let idleMs = 1;
    let backoffMs = 10;
    while (this.#running) {
      try {
        const free = this.#concurrency - this.#inFlight.size;
        const claim = free > 0 ? { queues: this.#queues, limit: Math.min(free, this.#batchSize), worker: this.name, leaseMs: this.#leaseMs } : undefined;
        let claimed: ClaimedNode[];
        if (this.#pending.length > 0) {
          claimed = await this.#flush(claim); // outcomes and the next claim: one transaction
        } else if (claim) {
          claimed = await this.#host.store.claim(claim);
          for (const node of claimed) this.#host.coordinator.observe(node.events);
        } else {
          claimed = [];
        }
        backoffMs = 10;
        for (const node of claimed) this.#execute(node);
        if (claimed.length > 0) {
          idleMs = 1;
          // Let quick tasks settle so their outcomes go out in one batch.
          await new Promise<void>((r) => setImmediate(r));
          continue;
        }
        if (this.#pending.length > 0) continue;
        // Woken at once by a local append or a finished task; the poll finds other processes' work.
        await this.#idle(free > 0 ? idleMs : this.#pollMs);
        idleMs = Math.min(this.#pollMs, idleMs * 2);
      } catch (e) {
        this.#report(e);
        await sleep(backoffMs);
        backoffMs = Math.min(5_000, backoffMs * 2);
      }
    }
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
    const fn = this.#host.tasks.get(node.task);
    const ctx: TaskContext = {
      runId: node.runId,
      nodeId: node.nodeId,
      task: node.task,
      attempt: node.attempt,
      idempotencyKey: `${node.runId}/${node.nodeId}`,
      get signal() {
        return flight.signal;
      },
      heartbeat: async () => (await this.#host.store.extend([node], this.#leaseMs))[0] === true,
    };
    void this.#call(fn, node, ctx).then(async (outcome) => {
      // The clock first: the node stays in #inFlight until its outcome is pending (shutdown waits for it).
      const at = await this.#now();
      if (!this.#inFlight.delete(node.leaseToken)) return; // released at shutdown
      this.#unrecorded.set(node.leaseToken, node);
      this.#pending.push({ type: 'Complete', runId: node.runId, nodeId: node.nodeId, attempt: node.attempt, leaseToken: node.leaseToken, outcome, at });
      this.#poke();
    });
  }

  async #call(fn: ((...args: never[]) => unknown) | undefined, node: ClaimedNode, ctx: TaskContext): Promise<Outcome> {
    try {
      if (!fn) throw new LovageError('NOT_FOUND', `task "${node.task}" is not registered in worker ${this.name}; register it with app.task("${node.task}", fn) in the worker's app`);
      const value = (await contextStorage.run(ctx, () => fn(...(node.args as never[])))) ?? null;
      assertJson(value, `result of task ${node.task}`);
      return { ok: true, value };
    } catch (e) {
      return { ok: false, error: errorInfo(e) };
    }
  }

  /** Records pending outcomes (and claims, when asked, in the same transaction). */
  async #flush(claim?: ClaimRequest): Promise<ClaimedNode[]> {
    if (this.#pending.length === 0 && !claim) return [];
    const batch = this.#pending;
    this.#pending = [];
    try {
      const { quarantined, claimed } = await this.#host.coordinator.record(batch, claim);
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
      held.forEach((ok, i) => {
        if (!ok && i < flights.length) flights[i]!.abort(new LovageError('LEASE_LOST', `lease of node ${flights[i]!.node.nodeId} was lost; its outcome will be recorded as stale`));
      });
    } catch (e) {
      this.#report(e);
    }
  }
}

function positive(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new LovageError('VALIDATION', `worker ${what} must be an integer ≥ 1, got ${String(n)}`);
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

/** A thrown value as recorded in the log. */
export function errorInfo(e: unknown): TaskErrorInfo {
  if (e instanceof Error) return { name: e.name, message: e.message, ...(e.stack !== undefined ? { stack: e.stack } : {}) };
  let message: string;
  try { message = JSON.stringify(e) ?? String(e); } catch { message = String(e); }
  return { name: 'NonError', message: `a non-Error value was thrown: ${message}` };
}

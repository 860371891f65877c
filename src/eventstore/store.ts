import type { ExecOptions } from '../canvas/dag.ts';
import type { Json } from '../canvas/json.ts';
import type { StoredEvent, WorkflowEvent } from '../engine/events.ts';
import { LovageError } from '../errors.ts';
import type { RateLimit } from './rate/window.ts';

export type { RateLimit } from './rate/window.ts';

/** Events to append to one run, valid only if the run is still at `expectedVersion` (0: a new run). */
export interface AppendRequest {
  readonly runId: string;
  readonly expectedVersion: number;
  readonly events: readonly WorkflowEvent[];
  /**
   * Names this append, so that a commuting append may follow it (`after`; stores with `commutes`):
   * 1-64 characters, unique among the run's appends (the coordinator's: its instance token and a
   * counter). The store keeps it as the run's last append id; an append without one, or one that ends
   * the run, clears it. Ignored by stores without `commutes`.
   */
  readonly id?: string;
  /**
   * Makes this a commuting append (stores with `commutes` only; others throw UNSUPPORTED): it lands at
   * the run's current version (at least `expectedVersion`) when the run's last append other than a
   * claim's is still the one named `after`, and every node in `leases` still holds that lease token. Only
   * claims came between, and their NodeLeaseExpired/NodeStarted events commute with outcomes of other
   * nodes. Otherwise it throws CONCURRENCY with details.reason `'after'` (details.last: the run's last
   * append id, '' none) or `'lease'` (details.nodeId).
   */
  readonly after?: string;
  /** With `after`: the [nodeId, leaseToken] pairs that must still hold. */
  readonly leases?: readonly (readonly [string, string])[];
}

const APPEND_ID = /^[A-Za-z0-9_:.-]{1,64}$/;

/**
 * Checks a request's `id`, `after` and `leases` (every store calls it; `commutes`: whether the store
 * takes commuting appends). Throws VALIDATION naming what is wrong, UNSUPPORTED for `after` on a store
 * that cannot commute.
 */
export function checkCommute(r: AppendRequest, commutes: boolean): void {
  if (r.id !== undefined && (typeof r.id !== 'string' || !APPEND_ID.test(r.id))) {
    throw new LovageError('VALIDATION', `append id ${JSON.stringify(r.id)} of run ${r.runId} is invalid; allowed are 1-64 of A-Z a-z 0-9 _ : . -`);
  }
  if (r.after === undefined) {
    if (r.leases !== undefined) throw new LovageError('VALIDATION', `leases given for run ${r.runId} without after; they are checked only for a commuting append (after: the id of the append it follows)`);
    return;
  }
  if (!commutes) throw new LovageError('UNSUPPORTED', `this store does not take commuting appends (after ${JSON.stringify(r.after)} for run ${r.runId}); only stores with commutes: true do (memory, Redis)`);
  if (typeof r.after !== 'string' || !APPEND_ID.test(r.after)) {
    throw new LovageError('VALIDATION', `after ${JSON.stringify(r.after)} of run ${r.runId} is invalid; allowed are 1-64 of A-Z a-z 0-9 _ : . -`);
  }
  const leases = r.leases ?? [];
  if (!Array.isArray(leases) || !leases.every((l) => Array.isArray(l) && l.length === 2 && typeof l[0] === 'string' && typeof l[1] === 'string' && l[0] !== '' && l[1] !== '')) {
    throw new LovageError('VALIDATION', `leases of run ${r.runId} are invalid; allowed is an array of [nodeId, leaseToken] pairs of non-empty strings`);
  }
}

/** The CONCURRENCY error of a commuting append that may not land (see AppendRequest.after). */
export function commuteRefused(runId: string, reason: 'after' | 'lease', detail: string): LovageError {
  return reason === 'after'
    ? new LovageError('CONCURRENCY', `run ${runId}'s last append is ${detail === '' ? 'not named' : JSON.stringify(detail)}, not the one this commuting append follows`, { runId, reason, last: detail })
    : new LovageError('CONCURRENCY', `node ${detail} of run ${runId} no longer holds the lease this commuting append records`, { runId, reason, nodeId: detail });
}

/** Options of `deleteRuns`. */
export interface DeleteOptions {
  readonly onlyStatus?: readonly RunRecord['status'][];
}

/** Options of `append`. */
export interface AppendOptions {
  /** The caller's open transaction to append in (see ApplyOptions.transaction); stores that cannot join one throw UNSUPPORTED. */
  readonly transaction?: unknown;
}

/** Refuses a caller's transaction, for stores that cannot join one. */
export function refuseTransaction(store: string, options: AppendOptions | undefined): void {
  if (options?.transaction !== undefined) {
    throw new LovageError('UNSUPPORTED', `the ${store} store cannot append inside a caller's transaction; only the Postgres store can (omit the transaction option)`);
  }
}

/** What a worker asks of the ready queue. */
export interface ClaimRequest {
  readonly queues: readonly string[];
  readonly limit: number;
  readonly worker: string;
  readonly leaseMs: number;
}

/** A node leased to a worker, with the events its claim appended (NodeLeaseExpired?, NodeStarted). */
export interface ClaimedNode {
  readonly runId: string;
  readonly nodeId: string;
  readonly task: string;
  readonly args: readonly Json[];
  readonly attempt: number;
  readonly leaseToken: string;
  readonly leaseExpiresAt: number;
  /** The per-call options of the node's NodeReady event (retry, expiry, time limits), if any. */
  readonly options?: ExecOptions;
  readonly events: readonly StoredEvent[];
  /**
   * The run's whole log before this claim (versions 1..n), when the store read it with the claim: on
   * the first node of a small run of the batch (Postgres, Redis). A worker that has not cached the run
   * folds it instead of reading the run again.
   */
  readonly history?: readonly StoredEvent[];
}

/** A lease to extend. */
export interface LeaseRef {
  readonly runId: string;
  readonly nodeId: string;
  readonly leaseToken: string;
}

/** The run row of the projection. */
export interface RunRecord {
  readonly runId: string;
  /** `quarantined`: its log does not fold; nothing more is recorded for it (see `quarantineReason`). */
  readonly status: 'running' | 'succeeded' | 'failed' | 'cancelled' | 'quarantined';
  readonly quarantineReason?: string;
  readonly version: number;
  /** The version of the event that ended the run (WorkflowSucceeded/Failed/Cancelled); unset while it runs (again). */
  readonly finishedVersion?: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Which runs `listRuns` returns: all conditions must hold. Newest first. */
export interface RunFilter {
  readonly status?: readonly RunRecord['status'][];
  /** Runs with at least one node of this task. */
  readonly task?: string;
  /** Runs whose submitted canvas (the WorkflowSubmitted event's JSON) contains this text. */
  readonly text?: string;
  /** Created at or after, epoch ms. */
  readonly createdFrom?: number;
  /** Created before, epoch ms. */
  readonly createdTo?: number;
  /** Page size (default 50, at most 1000). */
  readonly limit?: number;
  /** Continue after this run (the last of the previous page): older, or as old with a smaller id. */
  readonly after?: { readonly createdAt: number; readonly runId: string };
}

/**
 * The one interface every store implements (memory, SQLite; Postgres and Redis next). Appends are
 * atomic with their ready-queue projection; leases use the store's clock.
 */
export interface EventStore {
  /**
   * The store runs its calls elsewhere (a server): a worker then sends its next batch while the one
   * before is on its way, and runs tasks and decides meanwhile (default false: one call at a time).
   */
  readonly pipelined?: boolean;
  /**
   * A call costs the server far more than a task in it (Postgres: a transaction and its commit, ~0.3-1
   * ms besides its tasks): on a `pipelined` store a worker then keeps a second call on its way only
   * when its `concurrency` holds two whole batches, never by halving its batches (default false).
   */
  readonly costlyCalls?: boolean;
  /**
   * `onReady` fires for appends made by any process on the store (Postgres LISTEN/NOTIFY, Redis
   * pub/sub, the memory store's one process). An idle worker then sleeps until woken or until its
   * `pollMs` poll (for other processes' delayed nodes falling due, lost leases), with no quicker polls
   * in between.
   * Default false (SQLite): after a busy spell a worker polls again within 1, 2, 4... ms, so that it
   * finds other processes' new work soon.
   */
  readonly wakesEveryProcess?: boolean;
  /**
   * The store takes commuting appends (AppendRequest.after): a worker may then send a run's outcomes
   * while a claim that appends to the same run is on its way (default false).
   */
  readonly commutes?: boolean;
  /** The store's clock, epoch ms: leases and event times come from here, never from a worker. */
  now(): Promise<number>;
  /**
   * The same clock without a call, where the store has it at hand (every built-in store: the local
   * clock, or the local clock plus the server's offset measured in the background). A worker stamps an
   * outcome with it without awaiting `now()`. Optional: a store without it is asked through `now()`.
   */
  nowSync?(): number;
  /**
   * Appends all requests or none. Throws a CONCURRENCY LovageError (details.runId) when a run is not
   * at its expected version (or a commuting request may not land, see AppendRequest.after). Returns the
   * stored events per request.
   */
  append(requests: readonly AppendRequest[], options?: AppendOptions): Promise<StoredEvent[][]>;
  /** A run's events from `fromVersion` (1-based, inclusive), in order. */
  readStream(runId: string, fromVersion?: number): Promise<StoredEvent[]>;
  /** Every run's events after global position `afterPosition`, in append order. */
  readAll(afterPosition?: number, limit?: number): Promise<StoredEvent[]>;
  /**
   * Leases up to `limit` ready nodes of `queues` (expired leases first, then by priority, then age).
   * A node whose `availableAt` (NodeReady's countdown/eta, NodeRetryScheduled's `retryAt`,
   * NodeDeferred's `until`) is after the store's clock is not claimed.
   */
  claim(request: ClaimRequest): Promise<ClaimedNode[]>;
  /**
   * `append` then `claim` in one transaction: a worker records its outcomes and takes its next nodes
   * with one commit (as BullMQ's completion script fetches the next job). All or nothing.
   */
  appendAndClaim(requests: readonly AppendRequest[], claim: ClaimRequest): Promise<ClaimedNode[]>;
  /** Extends leases still held; `false` for a lease that was lost. */
  extend(leases: readonly LeaseRef[], leaseMs: number): Promise<boolean[]>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** Runs matching `filter`, newest first (by createdAt, then runId descending). */
  listRuns(filter?: RunFilter): Promise<RunRecord[]>;
  /**
   * Deletes runs whole — events, ready-queue rows, run rows — in one transaction; returns how many
   * were deleted. With `onlyStatus`, a run is deleted only if its status (checked in that same
   * transaction) is one of them: a run resumed since it was listed stays.
   */
  deleteRuns(runIds: readonly string[], options?: DeleteOptions): Promise<number>;
  /** Takes a run whose log does not fold out of the ready queue and marks it quarantined, with the reason. */
  quarantine(runId: string, reason: string): Promise<void>;
  /**
   * Global rate limits, shared by every process on the store. Atomically takes one permit for `key` (a
   * task name, 1-200 characters) under `limit` — or under the run-time override stored for `key` by
   * `setRateLimit`, which wins when there is one — and resolves to `0` when granted, else to the ms
   * after which a permit may be free (nothing is taken then). `limit` null means "no limit unless
   * overridden": with no override stored it resolves to `NOT_LIMITED` (-1) and takes nothing.
   *
   * The algorithm is a sliding-window log on the store's clock (memory/SQLite: the injectable clock;
   * Postgres: `clock_timestamp()`; Redis: `TIME`; or the injected test clock): a permit is granted only
   * while fewer than `count` were granted in the last `periodMs`, so no window of `periodMs` ever holds
   * more than `count` grants (a burst of `count` at once is allowed). Past 1,000 permits a period, grants
   * are coalesced into 1,000 slots a period: the limit still holds, a permit may come up to 0.1% of the
   * period late. A limit that changes applies at once, to the grants remembered (those of the last
   * period of the limit in force). See src/eventstore/rate/window.ts. Throws VALIDATION for a bad key
   * or limit.
   */
  takeToken(key: string, limit: RateLimit | null): Promise<number>;
  /**
   * Stores (a limit) or clears (null) the run-time override of `key`'s rate limit. It is read inside
   * `takeToken`'s atomic step, so every process on the store obeys it from its next `takeToken` on.
   */
  setRateLimit(key: string, limit: RateLimit | null): Promise<void>;
  /**
   * `takeToken`, but a refusal books the caller a turn: it resolves to the ms until its turn instead of
   * until the next permit may be free. The first `count` refused callers (of the limit in force) get the
   * wait to the next free permit, the next `count` a period and a twentieth (at least 20 ms) later, and
   * so on, for every process on the store: a backlog spread over many workers comes back about once a
   * node, `count` at a time. A turn is a time, not a permit: a caller that comes back finds the permits
   * free unless others took them first (then it is refused again and booked after the turns given).
   * Turns reach at most a minute ahead (four periods of a slower limit); a caller refused beyond that is
   * told to come back then, unbooked. See src/eventstore/rate/window.ts (`nextTurn`). Optional for a
   * store of your own: without it, workers send refused nodes back when the next permit may be free.
   */
  takeTurn?(key: string, limit: RateLimit | null): Promise<number>;
  /**
   * Calls `listener` when nodes may have become ready (wakes idle workers); returns an unsubscribe. A
   * listener that throws is reported on stderr; the others are still called.
   */
  onReady(listener: () => void): () => void;
  close(): Promise<void>;
}

/** How a run's status changes with an event, for the runs projection. */
export function runStatusAfter(event: WorkflowEvent): RunRecord['status'] | undefined {
  switch (event.type) {
    case 'WorkflowSubmitted':
    case 'WorkflowResumed':
      return 'running';
    case 'WorkflowSucceeded':
      return 'succeeded';
    case 'WorkflowFailed':
      return 'failed';
    case 'WorkflowCancelled':
      return 'cancelled';
    default:
      return undefined;
  }
}

/** Whether an event ends a run (the version `RunRecord.finishedVersion` points at). */
export function endsRun(event: WorkflowEvent): boolean {
  return event.type === 'WorkflowSucceeded' || event.type === 'WorkflowFailed' || event.type === 'WorkflowCancelled';
}

/** The page size of a RunFilter: 50 by default, 1..1000. */
export function pageSize(limit: number | undefined): number {
  return Math.min(1000, Math.max(1, Math.floor(limit ?? 50)));
}

/** Whether a run matches a filter (for stores that filter in memory). */
export function matchesRun(run: RunRecord, tasks: ReadonlySet<string>, canvasJson: string, f: RunFilter): boolean {
  if (f.status?.length && !f.status.includes(run.status)) return false;
  if (f.task !== undefined && !tasks.has(f.task)) return false;
  if (f.text !== undefined && !canvasJson.includes(f.text)) return false;
  if (f.createdFrom !== undefined && run.createdAt < f.createdFrom) return false;
  if (f.createdTo !== undefined && run.createdAt >= f.createdTo) return false;
  if (f.after && !(run.createdAt < f.after.createdAt || (run.createdAt === f.after.createdAt && run.runId < f.after.runId))) return false;
  return true;
}

/** Newest first, then by run id descending: the order of `listRuns`. */
export function newestFirst(a: RunRecord, b: RunRecord): number {
  return b.createdAt - a.createdAt || (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0);
}

/** At most this many due times are kept (the earliest); later ones are found by the workers' polls. */
const DUE_MAX = 1000;
/** Node's longest timer: a longer delay fires after 1 ms (a countdown or eta may be 366 days away). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A small set of local listeners, for `onReady`; also emits when held-back nodes fall due. */
export class Signal {
  readonly #listeners = new Set<() => void>();
  /** Local times (ms) at which held-back nodes appended here fall due, ascending, each once. */
  #due: number[] = [];
  #dueTimer: NodeJS.Timeout | undefined;
  on(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  /**
   * Calls every listener. One that throws is reported on stderr and stops neither the others nor the
   * store call that woke them (an append that landed must not reject).
   */
  emit(): void {
    for (const l of this.#listeners) {
      try {
        l();
      } catch (e) {
        console.error(`lovage: an onReady listener threw: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      }
    }
  }
  /**
   * Emits again when each node these appended events hold back falls due (a countdown or eta, a
   * retry's backoff, a deferral): this process's idle workers claim it then, not at their next poll.
   * Other processes find it at their poll. Call after the append committed.
   */
  emitWhenDue(requests: readonly AppendRequest[]): void {
    if (this.#listeners.size === 0) return;
    const first = this.#due[0];
    for (const r of requests) {
      for (const e of r.events) {
        const due = e.type === 'NodeReady' ? e.availableAt : e.type === 'NodeRetryScheduled' ? e.retryAt : e.type === 'NodeDeferred' ? e.until : undefined;
        // The event's `at` is the store's now: the wait is the same on the local clock.
        if (due !== undefined && due > e.at) this.#addDue(Date.now() + Math.ceil(due - e.at));
      }
    }
    if (this.#due[0] !== first) this.#arm();
  }
  /** Stops the due timer (the store closes). */
  close(): void {
    clearTimeout(this.#dueTimer);
    this.#dueTimer = undefined;
    this.#due = [];
  }
  #addDue(at: number): void {
    const due = this.#due;
    let lo = 0;
    let hi = due.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (due[mid]! < at) lo = mid + 1;
      else hi = mid;
    }
    if (due[lo] === at || lo >= DUE_MAX) return;
    due.splice(lo, 0, at);
    if (due.length > DUE_MAX) due.length = DUE_MAX;
  }
  #arm(): void {
    clearTimeout(this.#dueTimer);
    const next = this.#due[0];
    if (next === undefined) return;
    // Capped: past the cap the timer fires early, finds nothing due, and arms again.
    this.#dueTimer = setTimeout(() => this.#fire(), Math.min(MAX_TIMER_MS, Math.max(0, next - Date.now()) + 1));
    this.#dueTimer.unref();
  }
  #fire(): void {
    this.#dueTimer = undefined;
    const now = Date.now();
    let n = 0;
    while (n < this.#due.length && this.#due[n]! <= now) n++;
    if (n > 0) {
      this.#due.splice(0, n);
      this.emit();
    }
    this.#arm();
  }
}

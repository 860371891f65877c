import type { ExecOptions } from '../canvas/dag.ts';
import type { Json } from '../canvas/json.ts';
import { decideStart } from '../engine/decide.ts';
import type { StoredEvent } from '../engine/events.ts';
import { LovageError } from '../errors.ts';
import { RateTable, type RateLimit } from './rate/window.ts';
import { newToken } from './token.ts';
import { checkCommute, commuteRefused, type DeleteOptions, endsRun, matchesRun, newestFirst, pageSize, refuseTransaction, runStatusAfter, Signal, type AppendOptions, type AppendRequest, type RunFilter, type ClaimRequest, type ClaimedNode, type EventStore, type LeaseRef, type RunRecord } from './store.ts';

interface ReadyRow {
  readonly runId: string;
  readonly nodeId: string;
  readonly task: string;
  readonly args: readonly Json[];
  readonly queue: string;
  readonly priority: number;
  readonly seq: number;
  readonly options?: ExecOptions;
  availableAt?: number;
  attempts: number;
  worker?: string;
  leaseToken?: string;
  leaseExpiresAt?: number;
}

const key = (runId: string, nodeId: string): string => `${runId}\u0000${nodeId}`;

/**
 * A copy that shares nothing with `value`, as the other stores' serialisation gives: the log and the
 * ready queue never hold a caller's objects, and no reader gets theirs (a task changing its input
 * would change a sibling's input, its retry's, and the recorded event).
 */
const copy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/**
 * The reference store: everything in memory, one process. Same semantics as every other store.
 *
 * @example
 * const app = createApp({ store: new MemoryStore() })
 */
export class MemoryStore implements EventStore {
  /** All its appends are in this process (see EventStore.wakesEveryProcess). */
  readonly wakesEveryProcess = true;
  /** It takes commuting appends (see AppendRequest.after). */
  readonly commutes = true;
  /** Each run's last append id (see AppendRequest.id): set by appends that name one, cleared by those that do not or end the run; claims leave it. */
  readonly #lastAppend = new Map<string, string>();
  /** Index = position - 1; a deleted run leaves holes, so positions never move. */
  readonly #events: (StoredEvent | undefined)[] = [];
  readonly #streams = new Map<string, StoredEvent[]>();
  readonly #runs = new Map<string, RunRecord>();
  readonly #ready = new Map<string, ReadyRow>();
  readonly #signal = new Signal();
  readonly #clock: () => number;
  readonly #rates = new RateTable();

  /** `clock` is injectable for tests (default `Date.now`). */
  constructor(options: { clock?: () => number } = {}) {
    this.#clock = options.clock ?? Date.now;
  }

  async now(): Promise<number> {
    return this.nowSync();
  }

  nowSync(): number {
    return this.#clock();
  }

  async append(requests: readonly AppendRequest[], options?: AppendOptions): Promise<StoredEvent[][]> {
    refuseTransaction('memory', options);
    for (const r of requests) checkCommute(r, true);
    return this.#append(requests, false);
  }

  /** Appends (a claim's NodeStarted events when `claim`: they leave the runs' last append ids as they are). */
  #append(requests: readonly AppendRequest[], claim: boolean): StoredEvent[][] {
    const versions = new Map<string, number>();
    const last = new Map<string, string>();
    for (const r of requests) {
      const current = versions.get(r.runId) ?? this.#runs.get(r.runId)?.version ?? 0;
      if (r.after !== undefined) {
        const named = last.has(r.runId) ? last.get(r.runId)! : (this.#lastAppend.get(r.runId) ?? '');
        if (named !== r.after) throw commuteRefused(r.runId, 'after', named);
        for (const [nodeId, token] of r.leases ?? []) {
          if (this.#ready.get(key(r.runId, nodeId))?.leaseToken !== token) throw commuteRefused(r.runId, 'lease', nodeId);
        }
      }
      if (r.after !== undefined ? current < r.expectedVersion : current !== r.expectedVersion) {
        const why = r.expectedVersion === 0 ? 'it exists already' : `it is at version ${current}`;
        throw new LovageError('CONCURRENCY', `run ${r.runId} is not at version ${r.expectedVersion}: ${why}`, { runId: r.runId });
      }
      versions.set(r.runId, current + r.events.length);
      // A run's end clears its name too (nothing commutes after it).
      if (!claim && r.events.length > 0) last.set(r.runId, r.events.some(endsRun) ? '' : (r.id ?? ''));
    }
    // Check the projection's uniqueness before changing anything, so the batch stays all-or-nothing. The
    // events apply in order, as in the SQL stores: a NodeReady for a node whose row an earlier event of the
    // batch dropped (a resumed run's log, imported) is taken.
    const inQueue = new Map<string, boolean>();
    for (const r of requests) for (const e of r.events) {
      if (e.type === 'NodeReady') {
        const k = key(r.runId, e.nodeId);
        if (inQueue.get(k) ?? this.#ready.has(k)) throw new LovageError('CONCURRENCY', `node ${e.nodeId} of run ${r.runId} is already in the ready queue`, { runId: r.runId });
        inQueue.set(k, true);
      } else if (e.type === 'NodeSucceeded' || e.type === 'NodeFailed') inQueue.set(key(r.runId, e.nodeId), false);
      else if (e.type === 'WorkflowCancelled' || e.type === 'NodesAborted') for (const id of e.nodeIds) inQueue.set(key(r.runId, id), false);
    }
    let woke = false;
    // The store keeps copies, all made before anything changes (one that cannot be made fails the batch
    // whole); the caller gets its own events back (as from the SQL stores).
    const copies = requests.map((r) => r.events.map(copy));
    const out = requests.map((r, i) => {
      const stored: StoredEvent[] = [];
      for (const [j, event] of r.events.entries()) {
        const stream = this.#streams.get(r.runId) ?? [];
        this.#streams.set(r.runId, stream);
        const s: StoredEvent = { runId: r.runId, version: stream.length + 1, position: this.#events.length + 1, event: copies[i]![j]! };
        stream.push(s);
        this.#events.push(s);
        stored.push({ ...s, event });
        woke = this.#project(s) || woke;
      }
      return stored;
    });
    for (const [runId, id] of last) {
      if (id === '') this.#lastAppend.delete(runId);
      else this.#lastAppend.set(runId, id);
    }
    if (woke) this.#signal.emit();
    this.#signal.emitWhenDue(requests);
    return out;
  }

  #project(s: StoredEvent): boolean {
    const e = s.event;
    const status = runStatusAfter(e);
    const run = this.#runs.get(s.runId);
    this.#runs.set(s.runId, {
      runId: s.runId,
      status: run?.status === 'quarantined' ? 'quarantined' : (status ?? run?.status ?? 'running'),
      ...(run?.quarantineReason !== undefined ? { quarantineReason: run.quarantineReason } : {}),
      version: s.version,
      ...(endsRun(e) ? { finishedVersion: s.version } : status === undefined && run?.finishedVersion !== undefined ? { finishedVersion: run.finishedVersion } : {}),
      createdAt: run?.createdAt ?? e.at,
      updatedAt: e.at,
    });
    switch (e.type) {
      case 'NodeReady':
        this.#ready.set(key(s.runId, e.nodeId), {
          runId: s.runId, nodeId: e.nodeId, task: e.task, args: e.args, queue: e.queue, priority: e.priority, seq: s.position, attempts: 0,
          ...(e.options ? { options: e.options } : {}), ...(e.availableAt !== undefined ? { availableAt: e.availableAt } : {}),
        });
        return e.availableAt === undefined;
      case 'NodeSucceeded':
      case 'NodeFailed':
        this.#ready.delete(key(s.runId, e.nodeId));
        return false;
      case 'WorkflowCancelled':
      case 'NodesAborted':
        for (const id of e.nodeIds) this.#ready.delete(key(s.runId, id));
        return false;
      case 'NodeRetryScheduled':
      case 'NodeDeferred': {
        const row = this.#ready.get(key(s.runId, e.nodeId));
        if (row) {
          delete row.leaseToken; delete row.worker; delete row.leaseExpiresAt;
          row.availableAt = e.type === 'NodeRetryScheduled' ? e.retryAt : e.until;
          if (e.type === 'NodeDeferred') row.attempts = e.attempt - 1;
        }
        return false;
      }
      case 'NodeLeaseExpired':
      case 'NodeReleased': {
        const row = this.#ready.get(key(s.runId, e.nodeId));
        if (row) { delete row.leaseToken; delete row.worker; delete row.leaseExpiresAt; }
        return true;
      }
      case 'NodeStarted': {
        const row = this.#ready.get(key(s.runId, e.nodeId));
        if (row) { row.leaseToken = e.leaseToken; row.worker = e.worker; row.leaseExpiresAt = e.leaseExpiresAt; row.attempts = e.attempt; delete row.availableAt; }
        return false;
      }
      default:
        return false;
    }
  }

  async readStream(runId: string, fromVersion = 1): Promise<StoredEvent[]> {
    return copy((this.#streams.get(runId) ?? []).slice(Math.max(0, fromVersion - 1)));
  }

  async readAll(afterPosition = 0, limit = 1000): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    for (let i = afterPosition; i < this.#events.length && out.length < limit; i++) {
      const e = this.#events[i];
      if (e) out.push(e);
    }
    return copy(out);
  }

  async claim(request: ClaimRequest): Promise<ClaimedNode[]> {
    return this.#claim(request);
  }

  #claim(request: ClaimRequest): ClaimedNode[] {
    const now = this.#clock();
    const queues = new Set(request.queues);
    const candidates: ReadyRow[] = [];
    for (const row of this.#ready.values()) {
      if (!queues.has(row.queue)) continue;
      if (row.leaseToken === undefined ? (row.availableAt ?? 0) <= now : (row.leaseExpiresAt ?? 0) < now) candidates.push(row);
    }
    candidates.sort((a, b) => Number(b.leaseToken !== undefined) - Number(a.leaseToken !== undefined) || b.priority - a.priority || a.seq - b.seq);
    const claimed: ClaimedNode[] = [];
    for (const row of candidates.slice(0, request.limit)) {
      const leaseToken = newToken();
      const leaseExpiresAt = now + request.leaseMs;
      const events = decideStart({
        nodeId: row.nodeId, attempts: row.attempts, worker: request.worker, leaseToken, leaseExpiresAt, at: now,
        ...(row.leaseToken !== undefined && row.worker !== undefined ? { expiredWorker: row.worker } : {}),
      });
      const [stored] = this.#append([{ runId: row.runId, expectedVersion: this.#runs.get(row.runId)!.version, events }], true);
      claimed.push({ runId: row.runId, nodeId: row.nodeId, task: row.task, args: copy(row.args), attempt: row.attempts, leaseToken, leaseExpiresAt, ...(row.options ? { options: copy(row.options) } : {}), events: stored! });
    }
    return claimed;
  }

  async appendAndClaim(requests: readonly AppendRequest[], claim: ClaimRequest): Promise<ClaimedNode[]> {
    for (const r of requests) checkCommute(r, true);
    this.#append(requests, false);
    return this.#claim(claim);
  }

  async extend(leases: readonly LeaseRef[], leaseMs: number): Promise<boolean[]> {
    const until = this.#clock() + leaseMs;
    return leases.map((l) => {
      const row = this.#ready.get(key(l.runId, l.nodeId));
      if (!row || row.leaseToken !== l.leaseToken) return false;
      row.leaseExpiresAt = until;
      return true;
    });
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const run = this.#runs.get(runId);
    return run && { ...run };
  }

  async listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const out: RunRecord[] = [];
    for (const run of this.#runs.values()) {
      const first = this.#streams.get(run.runId)?.[0]?.event;
      const tasks = new Set(first?.type === 'WorkflowSubmitted' ? first.dag.nodes.map((n) => n.task) : []);
      if (matchesRun(run, tasks, first ? JSON.stringify(first) : '', filter)) out.push({ ...run });
    }
    return out.sort(newestFirst).slice(0, pageSize(filter.limit));
  }

  async deleteRuns(runIds: readonly string[], options: DeleteOptions = {}): Promise<number> {
    let n = 0;
    const gone = new Set<string>();
    for (const runId of runIds) {
      const run = this.#runs.get(runId);
      if (!run || (options.onlyStatus && !options.onlyStatus.includes(run.status))) continue;
      this.#runs.delete(runId);
      gone.add(runId);
      n++;
      this.#streams.delete(runId);
      this.#lastAppend.delete(runId);
      for (const [k, row] of this.#ready) if (row.runId === runId) this.#ready.delete(k);
    }
    // The global log keeps positions: the deleted run's entries leave it, the others keep their numbers.
    for (let i = 0; i < this.#events.length; i++) if (gone.has(this.#events[i]?.runId ?? '')) this.#events[i] = undefined;
    return n;
  }

  async quarantine(runId: string, reason: string): Promise<void> {
    const run = this.#runs.get(runId);
    if (!run) return;
    this.#runs.set(runId, { ...run, status: 'quarantined', quarantineReason: reason, updatedAt: this.#clock() });
    for (const [k, row] of this.#ready) if (row.runId === runId) this.#ready.delete(k);
  }

  /** See {@link EventStore.takeToken} (src/eventstore/rate/window.ts), on the store's clock. */
  async takeToken(key: string, limit: RateLimit | null): Promise<number> {
    return this.#rates.take(key, limit, this.#clock());
  }

  async setRateLimit(key: string, limit: RateLimit | null): Promise<void> {
    this.#rates.set(key, limit);
  }

  /** See {@link EventStore.takeTurn}. */
  async takeTurn(key: string, limit: RateLimit | null): Promise<number> {
    return this.#rates.take(key, limit, this.#clock(), true);
  }

  onReady(listener: () => void): () => void {
    return this.#signal.on(listener);
  }

  async close(): Promise<void> {
    this.#signal.close();
  }
}

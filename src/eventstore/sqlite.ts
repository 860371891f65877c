import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ExecOptions } from '../canvas/dag.ts';
import type { Json } from '../canvas/json.ts';
import { decideStart } from '../engine/decide.ts';
import type { StoredEvent, WorkflowEvent } from '../engine/events.ts';
import { conflict, EXPIRED_CHECK_MS, parseEvent, prepareStatements, taskList, toRecord, type ReadyRow, type RunRow, type Statements } from './sqlite-schema.ts';
import { SqliteRate } from './rate/sqlite.ts';
import type { RateLimit } from './rate/window.ts';
import { newToken } from './token.ts';
import { checkCommute, type DeleteOptions, endsRun, pageSize, refuseTransaction, runStatusAfter, Signal, type AppendOptions, type AppendRequest, type RunFilter, type ClaimRequest, type ClaimedNode, type EventStore, type LeaseRef, type RunRecord } from './store.ts';

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /** File path, or `:memory:`. */
  readonly path: string;
  /** How long a writer waits for another process's lock, ms (default 10,000). */
  readonly busyTimeoutMs?: number;
  /** Injectable clock for tests (default `Date.now`: every process on one machine shares it). */
  readonly clock?: () => number;
}


/**
 * The embedded default: one SQLite file in WAL mode; several worker processes may share it.
 * Schema through kysely's schema builder; the hot path runs better-sqlite3 prepared statements
 * inside `BEGIN IMMEDIATE` transactions (one statement costs ~1 µs there, a kysely round trip ~10×).
 *
 * @example
 * const app = createApp({ store: new SqliteStore({ path: './lovage.db' }) })
 */
export class SqliteStore implements EventStore {
  readonly db: Database.Database;
  readonly #signal = new Signal();
  readonly #clock: () => number;
  readonly #stmt: Statements;
  readonly #keys = new Map<string, number>();
  /** One transaction wrapper, built once (better-sqlite3 builds a new one per `db.transaction`). */
  readonly #tx: Database.Transaction<(fn: () => unknown) => unknown>;
  #checkpoint: NodeJS.Timeout | undefined;
  /** When the claim last looked for expired leases (see #claimRows). */
  #expiredCheckedAt = Number.NEGATIVE_INFINITY;
  readonly #newKeys = new Map<string, number>();
  readonly #claimStmts = new Map<string, { fresh: Database.Statement; expired: Database.Statement }>();
  #rates: SqliteRate | undefined;

  private constructor(db: Database.Database, clock: () => number) {
    this.db = db;
    this.#clock = clock;
    this.#stmt = prepareStatements(db);
    this.#tx = db.transaction((fn: () => unknown) => fn());
    // Checkpoints mostly run on a timer between commits: SQLite's automatic one copies the WAL into the
    // database in the middle of whichever commit crosses 1000 pages, a 5 ms stall for that caller. The
    // automatic one stays as a backstop: a WAL left to grow makes every read slower.
    if (db.name !== ':memory:') {
      this.#checkpoint = setInterval(() => {
        try {
          db.pragma('wal_checkpoint(PASSIVE)');
        } catch {
          // Busy or closed: the next tick tries again; SQLite also checkpoints when the last connection closes.
        }
      }, 200);
      this.#checkpoint.unref();
    }
  }

  /** Opens (and creates or migrates) the database. */
  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    const db = new Database(options.path);
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 10_000))}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // A bigger page cache keeps the B-trees of a busy queue in memory (the default is 2 MiB).
    db.pragma('cache_size = -65536');
    db.pragma('temp_store = MEMORY');
    try {
      const { migrate } = await import('./sqlite-migrations.ts'); // kysely only when a store opens
      await migrate(db);
    } catch (e) {
      db.close(); // a file this Lovage cannot use (say, a newer schema) is not left open
      throw e;
    }
    return new SqliteStore(db, options.clock ?? Date.now);
  }

  async now(): Promise<number> {
    return this.nowSync();
  }

  nowSync(): number {
    return this.#clock();
  }

  async append(requests: readonly AppendRequest[], options?: AppendOptions): Promise<StoredEvent[][]> {
    refuseTransaction('SQLite', options);
    for (const r of requests) checkCommute(r, false);
    const out = this.#write(() => requests.map((r) => this.#appendOne(r.runId, r.expectedVersion, r.events)));
    if (out.some((events) => events.some((s) => s.event.type === 'NodeReady' || s.event.type === 'NodeReleased'))) this.#signal.emit();
    this.#signal.emitWhenDue(requests);
    return out;
  }

  /** Runs `fn` in one `BEGIN IMMEDIATE` transaction (all or nothing); run keys learned inside count only after commit. */
  #write<T>(fn: () => T): T {
    try {
      const out = this.#tx.immediate(fn) as T;
      for (const [id, k] of this.#newKeys) this.#rememberKey(id, k);
      return out;
    } finally {
      this.#newKeys.clear();
    }
  }

  #rememberKey(runId: string, key: number): void {
    if (this.#keys.size >= 100_000) this.#keys.clear();
    this.#keys.set(runId, key);
  }

  /**
   * Runs are keyed by an integer inside the database: events and the ready queue index
   * (run_key, ...) instead of a random text id, which makes their B-tree inserts ~4x cheaper.
   */
  #keyOf(runId: string): number | undefined {
    const known = this.#keys.get(runId) ?? this.#newKeys.get(runId);
    if (known !== undefined) return known;
    const row = this.#stmt.runKey.get(runId);
    if (row) this.#newKeys.set(runId, row.run_key);
    return row?.run_key;
  }

  /** `current`: the caller read `expectedVersion` as the run's version in this transaction. */
  #appendOne(runId: string, expectedVersion: number, events: readonly WorkflowEvent[], current = false): StoredEvent[] {
    const s = this.#stmt;
    if (events.length === 0) return [];
    const last = events[events.length - 1]!;
    let status: RunRecord['status'] | null = null;
    let finishedVersion: number | null = null;
    events.forEach((e, i) => {
      status = runStatusAfter(e) ?? status;
      // A run that ends records where; one that runs again (resumed) has no end yet.
      if (endsRun(e)) finishedVersion = expectedVersion + i + 1;
      else if (e.type === 'WorkflowResumed') finishedVersion = null;
    });
    // Optimistic concurrency is the events table's uniqueness on (run_key, version): a second
    // writer at the same expected version collides on its first event. The runs row changes only
    // with the run's status.
    let key: number;
    if (expectedVersion === 0) {
      try {
        const first = events[0]!;
        const tasks = first.type === 'WorkflowSubmitted' ? taskList(first.dag.nodes.map((n) => n.task)) : '|';
        key = Number(s.insertRun.run(runId, status ?? 'running', finishedVersion, tasks, first.at, last.at).lastInsertRowid);
      } catch (e) {
        if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw conflict(runId, expectedVersion, 'it exists already');
        throw e;
      }
      this.#newKeys.set(runId, key);
    } else {
      const known = this.#keyOf(runId);
      if (known === undefined) throw conflict(runId, expectedVersion, 'it does not exist');
      key = known;
      if (!current && !s.hasVersion.get(key, expectedVersion)) throw conflict(runId, expectedVersion, `it is at version ${s.runVersion.get(key)?.version ?? 0}`);
      if (status !== null) s.setStatus.run(status, finishedVersion, last.at, key);
    }
    const stored: StoredEvent[] = [];
    let v = expectedVersion;
    for (const event of events) {
      v++;
      let position: number;
      try {
        position = Number(s.insertEvent.run(key, v, event.type, event.at, JSON.stringify(event)).lastInsertRowid);
      } catch (e) {
        if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw conflict(runId, expectedVersion, `version ${v} exists already`);
        throw e;
      }
      stored.push({ runId, version: v, position, event });
      this.#project(key, runId, position, event);
    }
    return stored;
  }

  #project(key: number, runId: string, position: number, e: WorkflowEvent): void {
    const s = this.#stmt;
    switch (e.type) {
      case 'NodeReady':
        s.insertReady.run(key, e.nodeId, runId, e.queue, e.priority, position, e.task, JSON.stringify(e.args), e.availableAt ?? null, e.options ? JSON.stringify(e.options) : null);
        return;
      case 'NodeRetryScheduled':
        s.delayLease.run(e.retryAt, null, key, e.nodeId);
        return;
      case 'NodeDeferred':
        s.delayLease.run(e.until, e.attempt - 1, key, e.nodeId);
        return;
      case 'NodeSucceeded':
      case 'NodeFailed':
        s.deleteReady.run(key, e.nodeId);
        return;
      case 'WorkflowCancelled':
        s.dropReady.run(key);
        return;
      case 'NodesAborted':
        for (const id of e.nodeIds) s.deleteReady.run(key, id);
        return;
      case 'NodeLeaseExpired':
      case 'NodeReleased':
        s.clearLease.run(key, e.nodeId);
        return;
      case 'NodeStarted':
        s.setLease.run(e.leaseToken, e.leaseExpiresAt, e.worker, e.attempt, key, e.nodeId);
        return;
      default:
        return;
    }
  }

  async readStream(runId: string, fromVersion = 1): Promise<StoredEvent[]> {
    return this.#stmt.readStream.all(runId, fromVersion).map((r) => ({ runId, version: r.version, position: r.position, event: parseEvent(r.data, runId, r.version) }));
  }

  async readAll(afterPosition = 0, limit = 1000): Promise<StoredEvent[]> {
    return this.#stmt.readAll.all(afterPosition, limit).map((r) => ({ runId: r.run_id, version: r.version, position: r.position, event: parseEvent(r.data, r.run_id, r.version) }));
  }

  #claimStatements(queues: readonly string[]) {
    const cacheKey = queues.join('\u0000');
    let stmts = this.#claimStmts.get(cacheKey);
    if (!stmts) {
      const marks = queues.map(() => '?').join(', ');
      const cols = 'run_key, run_id, node_id, task, args, attempts, worker, lease_token, options';
      stmts = {
        expired: this.db.prepare(`SELECT ${cols} FROM ready WHERE lease_token IS NOT NULL AND lease_expires < ? AND queue IN (${marks}) ORDER BY lease_expires LIMIT ?`),
        fresh: this.db.prepare(`SELECT ${cols} FROM ready WHERE lease_token IS NULL AND available_at IS NULL AND queue IN (${marks}) ORDER BY priority DESC, seq LIMIT ?`),
      };
      this.#claimStmts.set(cacheKey, stmts);
    }
    return stmts;
  }

  async claim(request: ClaimRequest): Promise<ClaimedNode[]> {
    if (request.queues.length === 0 || request.limit < 1) return [];
    return this.#write(() => this.#claimRows(request));
  }

  async appendAndClaim(requests: readonly AppendRequest[], claim: ClaimRequest): Promise<ClaimedNode[]> {
    for (const r of requests) checkCommute(r, false);
    const woke = requests.some((r) => r.events.some((e) => e.type === 'NodeReady' || e.type === 'NodeReleased'));
    const claimed = this.#write(() => {
      for (const r of requests) this.#appendOne(r.runId, r.expectedVersion, r.events);
      return claim.queues.length === 0 || claim.limit < 1 ? [] : this.#claimRows(claim);
    });
    if (woke) this.#signal.emit();
    this.#signal.emitWhenDue(requests);
    return claimed;
  }

  /** Leases ready rows; runs inside a write transaction. */
  #claimRows(request: ClaimRequest): ClaimedNode[] {
    const stmts = this.#claimStatements(request.queues);
    const now = this.#clock();
    // Expired leases are looked for at most every 50 ms (a lease is 30 s by default): on a busy queue
    // that query is a third of a claim's cost and almost always finds nothing.
    let rows: ReadyRow[] = [];
    // Delayed rows (countdown, eta, retry backoff) whose time has come join the fresh ones (an index
    // seek that finds nothing when none is due).
    this.#stmt.promoteDue.run(now);
    if (now - this.#expiredCheckedAt >= EXPIRED_CHECK_MS) {
      this.#expiredCheckedAt = now;
      rows = stmts.expired.all(now, ...request.queues, request.limit) as ReadyRow[];
    }
    if (rows.length < request.limit) rows.push(...(stmts.fresh.all(...request.queues, request.limit - rows.length) as ReadyRow[]));
    const leaseExpiresAt = now + request.leaseMs;
    const versions = new Map<number, number>();
    return rows.map((row): ClaimedNode => {
      const leaseToken = newToken();
      const events = decideStart({
        nodeId: row.node_id, attempts: row.attempts, worker: request.worker, leaseToken, leaseExpiresAt, at: now,
        ...(row.lease_token !== null && row.worker !== null ? { expiredWorker: row.worker } : {}),
      });
      this.#newKeys.set(row.run_id, row.run_key);
      const version = versions.get(row.run_key) ?? this.#stmt.runVersion.get(row.run_key)?.version ?? 0;
      const stored = this.#appendOne(row.run_id, version, events, true);
      versions.set(row.run_key, version + events.length);
      return {
        runId: row.run_id, nodeId: row.node_id, task: row.task, args: JSON.parse(row.args) as Json[], attempt: row.attempts + 1, leaseToken, leaseExpiresAt,
        ...(row.options !== null ? { options: JSON.parse(row.options) as ExecOptions } : {}), events: stored,
      };
    });
  }

  async extend(leases: readonly LeaseRef[], leaseMs: number): Promise<boolean[]> {
    return this.#write(() => {
      const until = this.#clock() + leaseMs;
      return leases.map((l) => {
        const key = this.#keyOf(l.runId);
        return key !== undefined && this.#stmt.extend.run(until, key, l.nodeId, l.leaseToken).changes === 1;
      });
    });
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const r = this.#stmt.getRun.get(runId);
    return r && toRecord(r);
  }

  async listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.status?.length) {
      where.push(`r.status IN (${filter.status.map(() => '?').join(', ')})`);
      params.push(...filter.status);
    }
    if (filter.task !== undefined) {
      where.push('instr(r.tasks, ?) > 0');
      params.push(`|${filter.task}|`);
    }
    if (filter.text !== undefined) {
      where.push('EXISTS (SELECT 1 FROM events e WHERE e.run_key = r.run_key AND e.version = 1 AND instr(e.data, ?) > 0)');
      params.push(filter.text);
    }
    if (filter.createdFrom !== undefined) {
      where.push('r.created_at >= ?');
      params.push(filter.createdFrom);
    }
    if (filter.createdTo !== undefined) {
      where.push('r.created_at < ?');
      params.push(filter.createdTo);
    }
    if (filter.after) {
      where.push('(r.created_at < ? OR (r.created_at = ? AND r.run_id < ?))');
      params.push(filter.after.createdAt, filter.after.createdAt, filter.after.runId);
    }
    const rows = this.db
      .prepare(
        `SELECT r.*, (SELECT max(version) FROM events e WHERE e.run_key = r.run_key) AS version FROM runs r
         ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY r.created_at DESC, r.run_id DESC LIMIT ?`,
      )
      .all(...params, pageSize(filter.limit)) as RunRow[];
    return rows.map(toRecord);
  }

  async deleteRuns(runIds: readonly string[], options: DeleteOptions = {}): Promise<number> {
    return this.#write(() => {
      let n = 0;
      for (const runId of runIds) {
        const key = this.#keyOf(runId);
        if (key === undefined) continue;
        const status = this.#stmt.getRun.get(runId)?.status;
        if (status === undefined || (options.onlyStatus && !options.onlyStatus.includes(status))) continue;
        this.#stmt.deleteEvents.run(key);
        this.#stmt.dropReady.run(key);
        this.#stmt.deleteRun.run(key);
        this.#keys.delete(runId);
        this.#newKeys.delete(runId);
        n++;
      }
      return n;
    });
  }

  async quarantine(runId: string, reason: string): Promise<void> {
    this.#write(() => {
      const key = this.#keyOf(runId);
      if (key === undefined) return;
      this.#stmt.quarantine.run('quarantined', reason, this.#clock(), key);
      this.#stmt.dropReady.run(key);
    });
  }

  /** See {@link EventStore.takeToken} (src/eventstore/rate/sqlite.ts), on the store's clock. */
  async takeToken(key: string, limit: RateLimit | null): Promise<number> {
    return (this.#rates ??= new SqliteRate(this.db, this.#clock)).take(key, limit);
  }

  async setRateLimit(key: string, limit: RateLimit | null): Promise<void> {
    (this.#rates ??= new SqliteRate(this.db, this.#clock)).set(key, limit);
  }

  /** See {@link EventStore.takeTurn}: the turn is booked in the same write transaction as a grant would be. */
  async takeTurn(key: string, limit: RateLimit | null): Promise<number> {
    return (this.#rates ??= new SqliteRate(this.db, this.#clock)).take(key, limit, true);
  }

  onReady(listener: () => void): () => void {
    return this.#signal.on(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.#checkpoint);
    this.#signal.close();
    if (this.db.open) this.db.close();
  }
}


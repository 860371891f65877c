import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { StoredEvent } from '../engine/events.ts';
import { LovageError, preview } from '../errors.ts';
import { buildAppend } from './postgres/append-input.ts';
import { appendInCallerTransaction } from './postgres/caller-transaction.ts';
import { toClaimed, type ClaimRow } from './postgres/claim-rows.ts';
import { connectionError, redactUrl } from './postgres/connection.ts';
import { DbClock } from './postgres/db-clock.ts';
import { APPEND_PARAMS, CLAIM_PARAMS } from './postgres/functions-sql.ts';
import { ReadyListener } from './postgres/listener.ts';
import { checkMigrated, migrate as migratePostgres } from './postgres/migrations.ts';
import { RunQueries, type Tables } from './postgres/run-queries.ts';
import { namedQuery } from './postgres/query.ts';
import { setRateLimitPg, takeTokenPg } from './postgres/rate-sql.ts';
import type { RateLimit } from './rate/window.ts';
import { quoteSchema } from './postgres/schema-name.ts';
import { newToken } from './token.ts';
import type { AppendOptions, AppendRequest, DeleteOptions, ClaimedNode, ClaimRequest, EventStore, LeaseRef, RunFilter, RunRecord } from './store.ts';

export { parsePostgresUrl, type PostgresUrl } from './postgres/connection.ts';
export { migrate as migratePostgres } from './postgres/migrations.ts';
export { LATEST_VERSION, type MigrateOptions, type MigrationResult } from './postgres/migrations.ts';
export { quoteSchema } from './postgres/schema-name.ts';

/** Options of {@link PostgresStore.open}. */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` (Lovage's `?schema=`/`?migrate=` belong to `openStore`, not here). */
  readonly connectionString?: string;
  /** A pool of your own instead (the store does not end it on close). Give one or the other, or neither for the PG* environment variables. */
  readonly pool?: pg.Pool;
  /** The schema of the store's tables (default `lovage`): 1-63 of a-z 0-9 _, see {@link quoteSchema}. */
  readonly schema?: string;
  /** Create or bring the schema up to date on open (default true); false only checks it is current. */
  readonly migrate?: boolean;
  /** Most connections of the pool the store makes (default 10). */
  readonly max?: number;
  /** Injectable clock for tests; by default leases and `now()` use the database's clock. */
  readonly clock?: () => number;
  /** Called with errors of the LISTEN connection (it reconnects by itself). Default: ignored. */
  readonly onError?: (error: unknown) => void;
}

/**
 * The distributed store: Postgres through `pg` and kysely. Appends check expected versions and update
 * the ready queue in one transaction; workers on many machines claim with `FOR UPDATE SKIP LOCKED`
 * (one round trip per batch: a server-side function); leases run on the database's clock; NOTIFY wakes
 * idle workers anywhere. Submits can join the caller's own transaction.
 *
 * @example
 * import { PostgresStore } from 'lovage/postgres'
 * const store = await PostgresStore.open({ connectionString: 'postgres://app@db/prod', schema: 'lovage' })
 * const app = createApp({ store })
 */
export class PostgresStore implements EventStore {
  /** The schema of the store's tables. */
  readonly schema: string;
  /** Every process's appends NOTIFY (see EventStore.wakesEveryProcess). */
  readonly wakesEveryProcess = true;
  /**
   * Calls run in Postgres, each on a connection of its own: a worker whose concurrency holds two whole
   * batches keeps its next one on its way (see EventStore.pipelined, costlyCalls).
   */
  readonly pipelined = true;
  readonly costlyCalls = true;
  /** The pool the store uses. */
  readonly pool: pg.Pool;
  /** A kysely instance on the pool (`withSchema(store.schema)` to query the tables). */
  readonly db: Kysely<Tables>;
  readonly #ownsPool: boolean;
  readonly #clock: DbClock | undefined;
  readonly #injected: (() => number) | undefined;
  readonly #origin = newToken();
  readonly #listener: ReadyListener;
  readonly #runs: RunQueries;
  readonly #sql: Record<'append' | 'appendInTransaction' | 'claim' | 'appendAndClaim' | 'extend', string>;
  #closed = false;

  private constructor(pool: pg.Pool, ownsPool: boolean, schema: string, options: PostgresStoreOptions) {
    const s = quoteSchema(schema);
    this.schema = schema;
    this.pool = pool;
    this.#ownsPool = ownsPool;
    this.db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
    this.#injected = options.clock;
    this.#clock = options.clock ? undefined : new DbClock(pool);
    this.#listener = new ReadyListener(pool.options, schema, this.#origin, options.onError ?? (() => undefined));
    this.#runs = new RunQueries(pool, this.db, schema);
    const placeholders = (params: readonly string[], from = 1) => params.map((p, i) => `$${from + i}::${p.split(' ')[1]}`).join(', ');
    this.#sql = {
      append: `SELECT ${s}.append_events(${placeholders(APPEND_PARAMS)}) AS positions`,
      appendInTransaction: `SELECT * FROM ${s}.append_in_transaction(${placeholders(APPEND_PARAMS)}, $${APPEND_PARAMS.length + 1}::text)`,
      claim: `SELECT * FROM ${s}.claim_nodes(${placeholders(CLAIM_PARAMS)})`,
      appendAndClaim: `SELECT * FROM ${s}.append_and_claim(${placeholders(APPEND_PARAMS)}, ${placeholders(CLAIM_PARAMS, APPEND_PARAMS.length + 1)})`,
      extend: `SELECT ${s}.extend_leases($1::text[], $2::text[], $3::text[], $4::bigint, $5::bigint) AS held`,
    };
  }

  /**
   * Connects, migrates (or, with `migrate: false`, checks the schema is current) and measures the
   * database clock. Throws VALIDATION for a bad schema name or options, TIMEOUT when no server answers.
   *
   * @example
   * const store = await PostgresStore.open({ connectionString: process.env.DATABASE_URL, schema: 'jobs' })
   */
  static async open(options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const schema = options.schema ?? 'lovage';
    quoteSchema(schema);
    if (options.pool && options.connectionString !== undefined) {
      throw new LovageError('VALIDATION', 'PostgresStore.open takes a connectionString or a pool, not both');
    }
    if (options.max !== undefined && (!Number.isInteger(options.max) || options.max < 1)) {
      throw new LovageError('VALIDATION', `PostgresStore.open max must be an integer ≥ 1 (connections in the pool), got ${preview(options.max)}`);
    }
    const ownsPool = !options.pool;
    const pool = options.pool ?? new pg.Pool({
      ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : {}),
      max: options.max ?? 10,
      connectionTimeoutMillis: 10_000,
      application_name: 'lovage',
    });
    // An idle connection that breaks (server restart) is dropped from the pool; it must not crash the process.
    if (ownsPool) pool.on('error', () => undefined);
    const store = new PostgresStore(pool, ownsPool, schema, options);
    try {
      await (options.migrate === false ? checkMigrated(pool, schema) : migratePostgres(pool, schema, { onOpen: true }));
      await store.#clock?.sync();
    } catch (e) {
      await store.close();
      throw connectionError(e, redactUrl(options.connectionString ?? describePool(pool)));
    }
    return store;
  }

  async now(): Promise<number> {
    return this.nowSync();
  }

  nowSync(): number {
    return this.#injected ? this.#injected() : this.#clock!.now();
  }

  async append(requests: readonly AppendRequest[], options?: AppendOptions): Promise<StoredEvent[][]> {
    const { params, groups } = buildAppend(requests);
    if (!params.hasEvents) return requests.map(() => []);
    const tx = options?.transaction;
    // Inside the caller's transaction, every process (this one too) wakes when it commits: no local emit.
    const notify = params.wakes ? `${this.schema}/${tx === undefined ? this.#origin : ''}` : null;
    const values = [...params.args, notify];
    const rowPositions = tx === undefined
      ? (await this.#query<{ positions: number[] }>(this.#sql.append, values))[0]!.positions
      : await appendInCallerTransaction(tx, this.#sql.appendInTransaction, values);
    if (params.wakes && tx === undefined) this.#listener.emit();
    this.#listener.emitWhenDue(requests);
    // Each events row's position; its events follow at position + 1, + 2, ... (rows in group, then event order).
    const positions: number[] = [];
    params.rowCounts.forEach((n, r) => {
      for (let j = 0; j < n; j++) positions.push(rowPositions[r]! + j);
    });
    const stored = new Map<string, StoredEvent[]>();
    let i = 0;
    for (const g of groups) {
      stored.set(g.runId, g.events.map((event, j) => ({ runId: g.runId, version: g.expectedVersion + j + 1, position: positions[i++]!, event })));
    }
    return requests.map((r) => {
      const g = groups.find((x) => x.runId === r.runId);
      if (!g || r.events.length === 0) return [];
      const start = r.expectedVersion - g.expectedVersion;
      return stored.get(r.runId)!.slice(start, start + r.events.length);
    });
  }

  async readStream(runId: string, fromVersion = 1): Promise<StoredEvent[]> {
    return this.#runs.readStream(runId, fromVersion);
  }

  async readAll(afterPosition = 0, limit = 1000): Promise<StoredEvent[]> {
    return this.#runs.readAll(afterPosition, limit);
  }

  async claim(request: ClaimRequest): Promise<ClaimedNode[]> {
    if (request.queues.length === 0 || request.limit < 1) return [];
    const rows = await this.#query<ClaimRow>(this.#sql.claim, this.#claimValues(request));
    return rows.map((row) => toClaimed(row, request.worker));
  }

  async appendAndClaim(requests: readonly AppendRequest[], claim: ClaimRequest): Promise<ClaimedNode[]> {
    const { params } = buildAppend(requests);
    const notify = params.wakes ? `${this.schema}/${this.#origin}` : null;
    const limit = claim.queues.length === 0 ? 0 : claim.limit;
    const rows = await this.#query<ClaimRow>(this.#sql.appendAndClaim, [
      ...params.args, notify, ...this.#claimValues({ ...claim, limit }),
    ]);
    if (params.wakes) this.#listener.emit();
    this.#listener.emitWhenDue(requests);
    return rows.map((row) => toClaimed(row, claim.worker));
  }

  #claimValues(c: ClaimRequest): unknown[] {
    const limit = Math.max(0, Math.floor(c.limit));
    return [c.queues, limit, c.worker, Math.round(c.leaseMs), leaseTokens(limit), this.#injected?.() ?? null];
  }

  async extend(leases: readonly LeaseRef[], leaseMs: number): Promise<boolean[]> {
    if (leases.length === 0) return [];
    const rows = await this.#query<{ held: boolean[] }>(this.#sql.extend, [
      leases.map((l) => l.runId), leases.map((l) => l.nodeId), leases.map((l) => l.leaseToken), Math.round(leaseMs), this.#injected?.() ?? null,
    ]);
    return rows[0]!.held;
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    return this.#runs.getRun(runId);
  }

  async listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    return this.#runs.listRuns(filter);
  }

  async deleteRuns(runIds: readonly string[], options: DeleteOptions = {}): Promise<number> {
    return runIds.length === 0 ? 0 : this.#runs.deleteRuns(runIds, options.onlyStatus);
  }

  async quarantine(runId: string, reason: string): Promise<void> {
    await this.#runs.quarantine(runId, reason, await this.now());
  }

  /** See {@link EventStore.takeToken}: one call of `take_token` (postgres/rate-sql.ts) on the database clock (or the injected one). */
  async takeToken(key: string, limit: RateLimit | null): Promise<number> {
    return takeTokenPg(this.pool, this.schema, key, limit, this.#injected?.() ?? null);
  }

  async setRateLimit(key: string, limit: RateLimit | null): Promise<void> {
    await setRateLimitPg(this.pool, this.schema, key, limit);
  }

  /** See {@link EventStore.takeTurn}: one call of `take_turn` (postgres/rate-sql.ts). */
  async takeTurn(key: string, limit: RateLimit | null): Promise<number> {
    return takeTokenPg(this.pool, this.schema, key, limit, this.#injected?.() ?? null, true);
  }

  /** Wakes `listener` on this store's appends at once, and on any process's through LISTEN/NOTIFY. */
  onReady(listener: () => void): () => void {
    return this.#listener.on(listener);
  }

  /**
   * Resolves once this store's LISTEN connection is up (starting it if no `onReady` listener has): from
   * then on, other processes' appends wake this one's listeners.
   *
   * @example
   * await store.whenListening()
   */
  whenListening(): Promise<void> {
    return this.#listener.whenListening();
  }

  /** Closes the LISTEN connection and the pool (unless the pool was given to `open`). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#listener.close();
    // The pool itself: kysely's destroy() ends it only if kysely ever ran a query, and the hot path
    // never does (its connections stayed open, idle, until the process ended).
    if (this.#ownsPool) await this.pool.end();
  }

  #query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> {
    return namedQuery<R>(this.pool, text, values);
  }
}

/**
 * A claim's `limit` lease tokens as a Postgres array literal: one random seed (16 characters, ~96
 * bits) and the node's number in the claim, as the Redis store makes them. A fresh random token each
 * and an array that pg escapes element by element cost 32-36 µs of every claim of 100, on W3's critical path.
 */
function leaseTokens(limit: number): string {
  const seed = newToken();
  let out = '{';
  for (let k = 1; k <= limit; k++) out += `${k > 1 ? ',' : ''}${seed}.${k}`;
  return `${out}}`;
}

function describePool(pool: pg.Pool): string {
  const o = pool.options;
  return o.connectionString ?? `postgres://${o.user ?? ''}@${o.host ?? 'localhost'}:${o.port ?? 5432}/${o.database ?? ''}`;
}

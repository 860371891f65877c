import type { ExecOptions } from '../../canvas/dag.ts';
import { sql, type Generated, type Kysely } from 'kysely';
import type pg from 'pg';
import type { StoredEvent, WorkflowEvent } from '../../engine/events.ts';
import { LovageError } from '../../errors.ts';
import { pageSize, type RunFilter, type RunRecord } from '../store.ts';
import { EVENT_ROW_MAX } from './functions-sql.ts';
import { namedQuery, prepared, storeError } from './query.ts';
import { quoteSchema } from './schema-name.ts';

/** The store's tables, for kysely (`store.db.withSchema(store.schema).selectFrom('runs')`). Bigints read as strings. */
export interface Tables {
  runs: {
    run_key: Generated<string>;
    run_id: string;
    status: RunRecord['status'];
    version: number;
    finished_version: number | null;
    quarantine_reason: string | null;
    tasks: string[];
    created_at: string;
    updated_at: string;
  };
  /** One row per consecutive events of a run written together: `n` events from `version` and `position` on, `data` their JSON array (one event object in rows written before schema version 4). */
  events: { position: Generated<string>; run_key: string; version: number; type: string; data: string; n: Generated<number> };
  ready: {
    run_key: string; node_id: string; run_id: string; queue: string; priority: number; seq: string; task: string; args: string;
    attempts: number; worker: string | null; lease_token: string | null; lease_expires: string | null;
    /** Not claimable before (epoch ms); NULL: available (a claim promotes a due row to NULL). */
    available_at: string | null;
    /** The NodeReady's per-call options (json). */
    options: ExecOptions | null;
  };
}

interface RunRow {
  run_id: string;
  status: RunRecord['status'];
  version: number;
  finished_version: number | null;
  quarantine_reason: string | null;
  created_at: string | number;
  updated_at: string | number;
}

function toRecord(r: RunRow): RunRecord {
  return {
    runId: r.run_id,
    status: r.status,
    version: r.version,
    ...(r.finished_version !== null ? { finishedVersion: r.finished_version } : {}),
    ...(r.quarantine_reason !== null ? { quarantineReason: r.quarantine_reason } : {}),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** The reads and whole-run changes of the Postgres store (everything but the hot path). */
export class RunQueries {
  readonly #pool: pg.Pool;
  readonly #db: Kysely<Tables>;
  readonly #schema: string;
  readonly #sql: Record<'readStream' | 'readAll' | 'getRun' | 'lockRuns' | 'deleteRuns' | 'quarantine' | 'unready', string>;

  constructor(pool: pg.Pool, db: Kysely<Tables>, schema: string) {
    const s = quoteSchema(schema);
    this.#pool = pool;
    this.#db = db;
    this.#schema = schema;
    this.#sql = {
      // An events row holds n events from its version and position on (see functions-sql.ts), at most
      // EVENT_ROW_MAX: the rows that may hold the events asked for start at most that far before.
      readStream: `SELECT e.version, e.position::float8 AS position, e.n, e.data FROM ${s}.events e JOIN ${s}.runs r ON r.run_key = e.run_key
        WHERE r.run_id = $1 AND e.version > $2 - ${EVENT_ROW_MAX} AND e.version + e.n > $2 ORDER BY e.version`,
      readAll: `SELECT r.run_id, e.version, e.position::float8 AS position, e.n, e.data FROM ${s}.events e JOIN ${s}.runs r ON r.run_key = e.run_key
        WHERE e.position > $1 - ${EVENT_ROW_MAX} AND e.position + e.n > $1 + 1 ORDER BY e.position LIMIT $2`,
      getRun: `SELECT run_id, status, version, finished_version, quarantine_reason, created_at::float8, updated_at::float8 FROM ${s}.runs WHERE run_id = $1`,
      // deleteRuns and quarantine lock the run rows first (in id order, as appends lock them), then, in a
      // statement of its own, change what hangs off them: one statement's snapshot is taken when it
      // begins, so it would miss the rows of the append or claim whose run row lock it waited for.
      lockRuns: `SELECT run_key::text FROM ${s}.runs WHERE run_id = ANY ($1::text[]) AND ($2::text[] IS NULL OR status = ANY ($2::text[]))
        ORDER BY run_id FOR UPDATE`,
      deleteRuns: `WITH e AS (DELETE FROM ${s}.events WHERE run_key = ANY ($1::bigint[])),
        d AS (DELETE FROM ${s}.ready WHERE run_key = ANY ($1::bigint[])),
        r AS (DELETE FROM ${s}.runs WHERE run_key = ANY ($1::bigint[]) RETURNING 1)
        SELECT count(*)::integer AS n FROM r`,
      quarantine: `UPDATE ${s}.runs SET status = 'quarantined', quarantine_reason = $2, updated_at = $3 WHERE run_id = $1 RETURNING run_key::text`,
      unready: `DELETE FROM ${s}.ready WHERE run_key = ANY ($1::bigint[])`,
    };
  }

  async readStream(runId: string, fromVersion: number): Promise<StoredEvent[]> {
    const from = Math.max(1, Math.floor(fromVersion));
    const rows = await namedQuery<EventRow>(this.#pool, this.#sql.readStream, [runId, from]);
    const out: StoredEvent[] = [];
    for (const r of rows) expand(r, runId, out, (e) => e.version >= from);
    return out;
  }

  async readAll(afterPosition: number, limit: number): Promise<StoredEvent[]> {
    const after = Math.floor(afterPosition);
    const max = Math.max(0, Math.floor(limit));
    // Every row holds at least one event after `after`: `max` rows are enough.
    const rows = await namedQuery<EventRow & { run_id: string }>(this.#pool, this.#sql.readAll, [after, max]);
    const out: StoredEvent[] = [];
    for (const r of rows) expand(r, r.run_id, out, (e) => e.position > after);
    return out.slice(0, max);
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const [row] = await namedQuery<RunRow>(this.#pool, this.#sql.getRun, [runId]);
    return row && toRecord(row);
  }

  async listRuns(f: RunFilter): Promise<RunRecord[]> {
    let q = this.#db.withSchema(this.#schema).selectFrom('runs as r')
      .select(['r.run_id', 'r.status', 'r.version', 'r.finished_version', 'r.quarantine_reason', 'r.created_at', 'r.updated_at']);
    if (f.status?.length) q = q.where('r.status', 'in', [...f.status]);
    if (f.task !== undefined) q = q.where(sql<boolean>`${f.task} = ANY (${sql.ref('r.tasks')})`);
    if (f.text !== undefined) {
      const text = f.text;
      q = q.where((eb) => eb.exists(eb.selectFrom('events as e').select(sql`1`.as('one'))
        .whereRef('e.run_key', '=', 'r.run_key').where('e.version', '=', 1).where(sql<boolean>`strpos(${sql.ref('e.data')}, ${text}) > 0`)));
    }
    if (f.createdFrom !== undefined) q = q.where('r.created_at', '>=', String(Math.ceil(f.createdFrom)));
    if (f.createdTo !== undefined) q = q.where('r.created_at', '<', String(Math.ceil(f.createdTo)));
    if (f.after) {
      const { createdAt, runId } = f.after;
      q = q.where((eb) => eb.or([eb('r.created_at', '<', String(createdAt)), eb.and([eb('r.created_at', '=', String(createdAt)), eb('r.run_id', '<', runId)])]));
    }
    const rows = await q.orderBy('r.created_at', 'desc').orderBy('r.run_id', 'desc').limit(pageSize(f.limit)).execute();
    return rows.map(toRecord);
  }

  async deleteRuns(runIds: readonly string[], onlyStatus?: readonly string[]): Promise<number> {
    return this.#inTransaction(async (client) => {
      const keys = (await client.query<{ run_key: string }>(prepared(this.#sql.lockRuns, [[...runIds], onlyStatus ? [...onlyStatus] : null]))).rows;
      if (keys.length === 0) return 0;
      const { rows } = await client.query<{ n: number }>(prepared(this.#sql.deleteRuns, [keys.map((k) => k.run_key)]));
      return rows[0]?.n ?? 0;
    });
  }

  async quarantine(runId: string, reason: string, at: number): Promise<void> {
    await this.#inTransaction(async (client) => {
      const keys = (await client.query<{ run_key: string }>(prepared(this.#sql.quarantine, [runId, reason, Math.round(at)]))).rows;
      if (keys.length > 0) await client.query(prepared(this.#sql.unready, [keys.map((k) => k.run_key)]));
    });
  }

  /** `fn` in a transaction on one pooled connection, with Postgres errors in Lovage's words. */
  async #inTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect().catch((e: unknown) => { throw storeError(e); });
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (e) {
      // A connection that cannot even roll back goes, not back to the pool.
      await client.query('ROLLBACK').catch((r: unknown) => { broken = r instanceof Error ? r : new Error(String(r)); });
      throw storeError(e);
    } finally {
      client.release(broken);
    }
  }
}

/** An events row as read: `n` events from `version` and `position` on, `data` their JSON array (one event object in rows written before schema version 4). */
interface EventRow { version: number; position: number; n: number; data: string }

/**
 * Appends a row's events that pass `keep` to `out`. Unreadable JSON (or a row that does not hold `n`
 * event objects) quarantines the run (CORRUPT_LOG), it never crashes a reader.
 */
function expand(row: EventRow, runId: string, out: StoredEvent[], keep: (e: StoredEvent) => boolean): void {
  let events: WorkflowEvent[];
  try {
    const parsed = JSON.parse(row.data) as WorkflowEvent | WorkflowEvent[];
    events = Array.isArray(parsed) ? parsed : [parsed];
    if (events.length !== row.n) throw new Error(`${events.length} events where the row says ${row.n}`);
    for (const event of events) if (typeof event !== 'object' || event === null || typeof event.type !== 'string') throw new Error('not an event object');
  } catch (e) {
    throw new LovageError('CORRUPT_LOG', `run ${runId} event ${row.version} is unreadable (${(e as Error).message}); the run is quarantined`, { runId, version: row.version });
  }
  events.forEach((event, j) => {
    const stored = { runId, version: row.version + j, position: row.position + j, event };
    if (keep(stored)) out.push(stored);
  });
}

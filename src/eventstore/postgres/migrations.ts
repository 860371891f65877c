import type pg from 'pg';
import { LovageError } from '../../errors.ts';
import { appendInTransactionSql } from './caller-transaction.ts';
import { extendLeasesSql, hotFunctionsSql } from './functions-sql.ts';
import { functionsSqlV1 } from './functions-sql-v1.ts';
import { functionsSqlV2 } from './functions-sql-v2.ts';
import { extendLeasesSqlV4, hotFunctionsSqlV4 } from './functions-sql-v4.ts';
import { rateLimitsSqlV3, rateTurnsSqlV6 } from './rate-sql.ts';
import { quoteSchema } from './schema-name.ts';

/** One forward-only schema version: SQL statements for a quoted schema name. */
interface Migration {
  readonly version: number;
  readonly name: string;
  /**
   * Why workers of an earlier Lovage must be stopped before this version is applied (they would
   * damage runs written after it). A store opened with `migrate: true` refuses to apply such a version
   * to a schema that exists already: `lovage migrate` does, once they are stopped.
   */
  readonly stopWorkersFirst?: string;
  up(s: string): readonly string[];
}

/**
 * The versions, in order. Never edit one that has shipped: add the next (a changed function is
 * `CREATE OR REPLACE`d by a new version, or dropped and created when its result columns change).
 * A version keeps creating the functions it created when it shipped: when the functions change,
 * freeze the text the latest version used (as functions-sql-v1.ts) and point that version at it.
 */
const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'runs, events, ready queue, functions',
    up: (s) => [
      // Runs are keyed by an integer inside the database: events and ready rows index (run_key, ...)
      // instead of a random text id. run_id sorts bytewise (COLLATE "C"), as in every other store.
      `CREATE TABLE ${s}.runs (
        run_key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id text COLLATE "C" NOT NULL UNIQUE,
        status text NOT NULL,
        version integer NOT NULL,
        finished_version integer,
        quarantine_reason text,
        tasks text[] NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      ) WITH (fillfactor = 80)`,
      `CREATE INDEX runs_created ON ${s}.runs (created_at DESC, run_id DESC)`,
      // data is the event's JSON text exactly as written (text, not jsonb: cheaper, and byte-stable).
      `CREATE TABLE ${s}.events (
        position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_key bigint NOT NULL,
        version integer NOT NULL,
        type text NOT NULL,
        data text NOT NULL,
        CONSTRAINT events_run_version UNIQUE (run_key, version)
      )`,
      `CREATE TABLE ${s}.ready (
        run_key bigint NOT NULL,
        node_id text COLLATE "C" NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        queue text NOT NULL,
        priority integer NOT NULL,
        seq bigint NOT NULL,
        task text NOT NULL,
        args text NOT NULL,
        attempts integer NOT NULL,
        worker text,
        lease_token text,
        lease_expires bigint,
        PRIMARY KEY (run_key, node_id)
      ) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0)`,
      `CREATE INDEX ready_fresh ON ${s}.ready (queue, priority DESC, seq) WHERE lease_token IS NULL`,
      `CREATE INDEX ready_leased ON ${s}.ready (lease_expires) WHERE lease_token IS NOT NULL`,
      ...functionsSqlV1(s),
    ],
  },
  {
    version: 2,
    name: 'delayed readiness (countdown, eta, retries, deferrals) and per-call options',
    up: (s) => [
      // Both columns are NULL for every existing row (no table rewrite): available at once, no options.
      `ALTER TABLE ${s}.ready ADD COLUMN available_at bigint, ADD COLUMN options json`,
      // The claim's hot index holds only rows available now; delayed rows wait in their own index,
      // by time, until a claim promotes the due ones (available_at = NULL).
      `DROP INDEX ${s}.ready_fresh`,
      `CREATE INDEX ready_fresh ON ${s}.ready (queue, priority DESC, seq) WHERE lease_token IS NULL AND available_at IS NULL`,
      `CREATE INDEX ready_delayed ON ${s}.ready (available_at) WHERE available_at IS NOT NULL`,
      // The claim functions return one more column (options): a result type cannot be replaced.
      `DROP FUNCTION ${s}.append_and_claim(json, json, json, json, json, json, text, text[], integer, text, bigint, text[], bigint)`,
      `DROP FUNCTION ${s}.claim_nodes(text[], integer, text, bigint, text[], bigint)`,
      ...functionsSqlV2(s),
    ],
  },
  {
    version: 3,
    name: 'global rate limits: run-time overrides, sliding-window logs, take_token',
    up: (s) => rateLimitsSqlV3(s),
  },
  {
    version: 4,
    name: 'cheaper hot path: events rows of many events, array arguments, one run lookup per batch',
    stopWorkersFirst: 'its events rows hold many events each, which workers of an earlier Lovage read as a corrupt log: they would claim new runs\' nodes, run them, and quarantine those runs',
    up: (s) => [
      // A run row changes at every claim and append of the run: with half of each page free, the new
      // version stays on its page (a HOT update, no index entries) instead of moving with three.
      `ALTER TABLE ${s}.runs SET (fillfactor = 50)`,
      // An events row holds n consecutive events of one run (data: their JSON array): the rows written
      // so far hold one each (data: the event object). A row takes a position from the identity, its events are
      // position + 0 .. n - 1: the identity now steps by EVENT_ROW_MAX, from above every position
      // given so far (they stay as they are).
      `ALTER TABLE ${s}.events ADD COLUMN n integer NOT NULL DEFAULT 1`,
      `ALTER TABLE ${s}.events ALTER COLUMN position SET INCREMENT BY 1024`, // EVENT_ROW_MAX (functions-sql.ts)
      `SELECT setval(pg_get_serial_sequence('${s}.events', 'position'), coalesce((SELECT max(position) FROM ${s}.events), 0) + 1, false)`,
      // The append functions take arrays instead of JSON: new signatures, so the old ones go.
      `DROP FUNCTION ${s}.append_and_claim(json, json, json, json, json, json, text, text[], integer, text, bigint, text[], bigint)`,
      `DROP FUNCTION ${s}.append_events(json, json, json, json, json, json, text)`,
      `DROP FUNCTION ${s}.claim_nodes(text[], integer, text, bigint, text[], bigint)`,
      `DROP FUNCTION ${s}.extend_leases(text[], text[], text[], bigint, bigint)`,
      ...hotFunctionsSqlV4(s),
      extendLeasesSqlV4(s),
    ],
  },
  {
    version: 5,
    name: 'the hot functions never scan a table whole, whatever the statistics said when they were first planned',
    up: (s) => [
      // A session plans each statement of these functions once (generic plans) and keeps the plan. Planned
      // while the queue was small, a claim read its ready rows by a scan of the whole table; after a
      // fan-out of thousands of nodes every claim scanned them all (a worker that had run a few tasks
      // burnt down a 30k group at 5k tasks/s instead of 16k) until autovacuum's next ANALYZE. Every
      // statement in them has an index or row-id path: with seqscan off the planner takes it.
      `ALTER FUNCTION ${s}.claim_nodes(text[], integer, text, bigint, text[], bigint) SET enable_seqscan = off`,
      `ALTER FUNCTION ${s}.append_events(text[], integer[], integer[], text[], integer[], boolean[], bigint[], bigint[], text[], integer[], integer[],
        integer[], text[], json, integer[], integer[], text[], text[], integer[], text[], text[], integer[], text[], text[], bigint[], bigint[], text[],
        integer[], text[], json, text) SET enable_seqscan = off`,
    ],
  },
  {
    version: 6,
    name: 'rate-limit turns kept for every worker: the latest turn of each key, take_turn',
    up: (s) => rateTurnsSqlV6(s),
  },
  {
    version: 7,
    name: 'extend_leases skips rows another transaction holds (a heartbeat never waits, so never deadlocks with an append)',
    // Same signature and result: workers of the previous Lovage keep working while it is applied.
    up: (s) => [extendLeasesSql(s)],
  },
  {
    version: 8,
    name: 'append_events and claim_nodes join the rows they locked by ctid alone (no quadratic filter)',
    // Same signatures and results: workers of the previous Lovage keep working while it is applied.
    up: (s) => hotFunctionsSql(s),
  },
  {
    version: 9,
    name: 'append_in_transaction: a submit inside the caller\'s transaction in one statement, refused once that transaction has ended',
    up: (s) => [appendInTransactionSql(s)],
  },
];

/**
 * The newest schema version this code knows.
 *
 * @example
 * const { to } = await migrate(pool, 'lovage'); to === LATEST_VERSION // true
 */
export const LATEST_VERSION = migrations[migrations.length - 1]!.version;

/** What `migrate` did. */
export interface MigrationResult {
  readonly schema: string;
  /** The version found (0: a new schema). */
  readonly from: number;
  readonly to: number;
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /**
   * Stop at this version instead of the newest (default {@link LATEST_VERSION}): to build a database
   * as an older Lovage left it, e.g. to test an upgrade. A store refuses to open on it until migrated.
   */
  readonly to?: number;
  /**
   * Applied by a store as it opens (`migrate: true`), not by an operator: versions that need the
   * workers of an earlier Lovage stopped first (`stopWorkersFirst`) are refused on a schema that
   * exists already (UNSUPPORTED, naming the command to run once they are stopped).
   */
  readonly onOpen?: boolean;
}

/**
 * Brings `schema` to the newest version: creates it if needed, applies the missing versions in
 * order, each recorded in `<schema>.lovage_migrations`, all in one transaction under an advisory
 * lock, so processes that start at once apply each version exactly once (the others wait, then find
 * nothing to do). A schema that holds objects of something else (another
 * application's `runs`, say) is VALIDATION naming the schema and the object; nothing is changed.
 *
 * @example
 * await migrate(pool, 'lovage') // { schema: 'lovage', from: 0, to: LATEST_VERSION }
 */
export async function migrate(pool: pg.Pool, schema: string, options: MigrateOptions = {}): Promise<MigrationResult> {
  const s = quoteSchema(schema);
  const target = options.to ?? LATEST_VERSION;
  if (!Number.isInteger(target) || target < 1 || target > LATEST_VERSION) {
    throw new LovageError('VALIDATION', `migrate to must be a schema version from 1 to ${LATEST_VERSION}, got ${String(target)}`);
  }
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    try {
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('lovage.migrate'), hashtext($1))`, [schema]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${s}.lovage_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const from = await currentVersion(client, s, schema);
      const breaking = options.onOpen && from > 0 ? migrations.find((m) => m.version > from && m.version <= target && m.stopWorkersFirst) : undefined;
      if (breaking) {
        throw new LovageError(
          'UNSUPPORTED',
          `Postgres schema "${schema}" is at version ${from}; version ${breaking.version} needs every worker of the earlier Lovage stopped first (${breaking.stopWorkersFirst}). Stop them, then run \`lovage migrate --store <url>\``,
          { schema, found: from, version: breaking.version },
        );
      }
      for (const m of migrations) {
        if (m.version <= from || m.version > target) continue;
        for (const statement of m.up(s)) await client.query(statement);
        await client.query(`INSERT INTO ${s}.lovage_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      }
      await client.query('COMMIT');
      return { schema, from, to: Math.max(from, target) };
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw takenNameError(e, schema);
    }
  } finally {
    client.release();
  }
}

/** duplicate_table (relations: tables, indexes, sequences), duplicate_object, duplicate_function. */
const TAKEN = new Set(['42P07', '42710', '42723']);

/** A migration's name clash with an object it did not make, in Lovage's words (others pass through). */
function takenNameError(e: unknown, schema: string): unknown {
  const err = e as { code?: unknown; message?: unknown } | null;
  if (typeof err?.code !== 'string' || !TAKEN.has(err.code)) return e;
  const message = typeof err.message === 'string' ? err.message : String(e);
  // Postgres says 'relation "runs" already exists': the object, in its words.
  const object = /^(.*) already exists$/.exec(message)?.[1] ?? message;
  return new LovageError(
    'VALIDATION',
    `Postgres schema "${schema}" holds ${object} already, not made by Lovage's migrations (its lovage_migrations table does not record them); nothing was changed: give Lovage a schema of its own (?schema=name, default lovage) or move that object out`,
    { schema, cause: message },
  );
}

/**
 * Checks, without changing anything, that `schema` is at the newest version (for `migrate: false`).
 * Throws VALIDATION saying which version was found and how to migrate.
 */
export async function checkMigrated(pool: pg.Pool, schema: string): Promise<void> {
  const s = quoteSchema(schema);
  const exists = await pool.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [`${s}.lovage_migrations`]);
  const found = exists.rows[0]?.t ? await currentVersion(pool, s, schema) : 0;
  if (found < LATEST_VERSION) {
    // A version that needs the earlier Lovage's workers stopped first is never applied by a store as it opens.
    const breaking = found > 0 ? migrations.find((m) => m.version > found && m.stopWorkersFirst) : undefined;
    const how = breaking
      ? `stop every worker of the earlier Lovage (version ${breaking.version} needs it: ${breaking.stopWorkersFirst}), then run \`lovage migrate --store <url>\``
      : 'run `lovage migrate --store <url>` or open the store with migrate: true (the URL without ?migrate=false)';
    throw new LovageError('VALIDATION', `Postgres schema "${schema}" is at version ${found}, this Lovage needs version ${LATEST_VERSION}; ${how}`, { schema, found, needed: LATEST_VERSION });
  }
}

async function currentVersion(db: pg.Pool | pg.PoolClient, s: string, schema: string): Promise<number> {
  const { rows } = await db.query<{ v: number }>(`SELECT coalesce(max(version), 0)::integer AS v FROM ${s}.lovage_migrations`);
  const v = rows[0]?.v ?? 0;
  if (v > LATEST_VERSION) {
    throw new LovageError(
      'UNSUPPORTED',
      `Postgres schema "${schema}" is at version ${v}, newer than this Lovage knows (${LATEST_VERSION}); upgrade Lovage (migrations only go forward)`,
      { schema, found: v, known: LATEST_VERSION },
    );
  }
  return v;
}

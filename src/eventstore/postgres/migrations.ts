import type pg from 'pg';
import { LovageError } from '../../errors.ts';
import { functionsSql } from './functions-sql.ts';
import { quoteSchema } from './schema-name.ts';

/** One forward-only schema version: SQL statements for a quoted schema name. */
interface Migration {
  readonly version: number;
  readonly name: string;
  up(s: string): readonly string[];
}

/**
 * The versions, in order. Never edit one that has shipped: add the next (a changed function is
 * `CREATE OR REPLACE`d by a new version).
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
      ...functionsSql(s),
    ],
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

/**
 * Brings `schema` to the newest version: creates it if needed, applies the missing versions in
 * order, each recorded in `<schema>.lovage_migrations`, all in one transaction under an advisory
 * lock, so processes that start at once apply each version exactly once (the others wait, then find
 * nothing to do).
 *
 * @example
 * await migrate(pool, 'lovage') // { schema: 'lovage', from: 0, to: 1 }
 */
export async function migrate(pool: pg.Pool, schema: string): Promise<MigrationResult> {
  const s = quoteSchema(schema);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    try {
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('lovage.migrate'), hashtext($1))`, [schema]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${s}.lovage_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const from = await currentVersion(client, s, schema);
      for (const m of migrations) {
        if (m.version <= from) continue;
        for (const statement of m.up(s)) await client.query(statement);
        await client.query(`INSERT INTO ${s}.lovage_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      }
      await client.query('COMMIT');
      return { schema, from, to: LATEST_VERSION };
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  } finally {
    client.release();
  }
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
    throw new LovageError(
      'VALIDATION',
      `Postgres schema "${schema}" is at version ${found}, this Lovage needs version ${LATEST_VERSION}; run \`lovage migrate --store <url>\` or open the store with migrate: true (the URL without ?migrate=false)`,
      { schema, found, needed: LATEST_VERSION },
    );
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

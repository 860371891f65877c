// The SQLite store's schema versions. Loaded when a store opens (src/eventstore/sqlite.ts), not with
// the module: kysely, which builds the schema, takes ~0.4 s to import, and a process that never
// opens a SQLite store (a threads-pool thread, a worker on Postgres or Redis) need not pay it.
import type Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { LovageError } from '../errors.ts';

/** Forward-only schema versions, applied in order inside one transaction each. */
export async function migrate(raw: Database.Database): Promise<void> {
  const db = new Kysely<Record<string, never>>({ dialect: new SqliteDialect({ database: raw }) });
  const migrations: ((k: Kysely<Record<string, never>>) => Promise<void>)[] = [
    async (k) => {
      await k.schema.createTable('runs')
        .addColumn('run_key', 'integer', (c) => c.primaryKey())
        .addColumn('run_id', 'text', (c) => c.notNull().unique())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('finished_version', 'integer')
        .addColumn('quarantine_reason', 'text')
        .addColumn('tasks', 'text', (c) => c.notNull())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .execute();
      await k.schema.createTable('events')
        .addColumn('position', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('run_key', 'integer', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('at', 'integer', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addUniqueConstraint('events_run_version', ['run_key', 'version'])
        .execute();
      await k.schema.createTable('ready')
        .addColumn('run_key', 'integer', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('run_id', 'text', (c) => c.notNull())
        .addColumn('queue', 'text', (c) => c.notNull())
        .addColumn('priority', 'integer', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('task', 'text', (c) => c.notNull())
        .addColumn('args', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('worker', 'text')
        .addColumn('lease_token', 'text')
        .addColumn('lease_expires', 'integer')
        .addPrimaryKeyConstraint('ready_pk', ['run_key', 'node_id'])
        .modifyEnd(sql`WITHOUT ROWID`)
        .execute();
      await sql`CREATE INDEX runs_created ON runs (created_at DESC, run_id DESC)`.execute(k);
      await sql`CREATE INDEX IF NOT EXISTS ready_fresh ON ready (queue, priority DESC, seq) WHERE lease_token IS NULL`.execute(k);
      await sql`CREATE INDEX IF NOT EXISTS ready_leased ON ready (lease_expires) WHERE lease_token IS NOT NULL`.execute(k);
    },
    // 2: delayed readiness (countdown, eta, retries, deferrals) and per-call options.
    async (k) => {
      await sql`ALTER TABLE ready ADD COLUMN available_at INTEGER`.execute(k);
      await sql`ALTER TABLE ready ADD COLUMN options TEXT`.execute(k);
      await sql`DROP INDEX ready_fresh`.execute(k);
      await sql`CREATE INDEX ready_fresh ON ready (queue, priority DESC, seq) WHERE lease_token IS NULL AND available_at IS NULL`.execute(k);
      await sql`CREATE INDEX ready_delayed ON ready (available_at) WHERE available_at IS NOT NULL`.execute(k);
    },
    // 3: global rate limits (src/eventstore/rate/sqlite.ts): run-time overrides, and each key's sliding-window log.
    async (k) => {
      await sql`CREATE TABLE rate_limits (key TEXT PRIMARY KEY, count INTEGER NOT NULL, period_ms INTEGER NOT NULL) WITHOUT ROWID`.execute(k);
      await sql`CREATE TABLE rate_log (key TEXT PRIMARY KEY, log TEXT NOT NULL) WITHOUT ROWID`.execute(k);
    },
    // 4: rate-limit turns (EventStore.takeTurn): each key's latest turn handed out, and its room left.
    async (k) => {
      await sql`ALTER TABLE rate_log ADD COLUMN turn_at INTEGER`.execute(k);
      await sql`ALTER TABLE rate_log ADD COLUMN turn_left INTEGER`.execute(k);
    },
  ];
  raw.exec('CREATE TABLE IF NOT EXISTS lovage_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
  raw.exec('BEGIN IMMEDIATE');
  try {
    const done = (raw.prepare('SELECT coalesce(max(version), 0) AS v FROM lovage_migrations').get() as { v: number }).v;
    if (done > migrations.length) {
      throw new LovageError('VALIDATION', `this SQLite file has schema version ${done}, newer than this Lovage knows (${migrations.length}); upgrade Lovage to open it`);
    }
    for (let v = done; v < migrations.length; v++) {
      await migrations[v]!(db);
      raw.prepare('INSERT INTO lovage_migrations (version, applied_at) VALUES (?, ?)').run(v + 1, Date.now());
    }
    raw.exec('COMMIT');
  } catch (e) {
    raw.exec('ROLLBACK');
    throw e;
  }
}

import { LovageError } from '../errors.ts';
import { redactUrl } from '../eventstore/redact-url.ts';
import { defaultStoreUrl, openStore } from '../eventstore/url.ts';
import { parseFlags, UsageError, type Io } from './args.ts';

/** The help text of `lovage migrate`. */
export const migrateUsage = `Usage: lovage migrate [--store <url>]

Brings a store's schema up to this version of Lovage. Migrations are numbered and only go forward;
each is applied once, under a lock, so running this while workers start is safe. From a Postgres
schema below version 4, stop every worker of the earlier Lovage first (a store opening with
migrate: true refuses to take that step; see docs/deploy.md).

  Postgres  postgres://user:password@host:port/database[?schema=name]  (schema default: lovage)
            creates the schema if needed, applies the missing versions in one transaction
  SQLite    sqlite:<path>  (migrated whenever it is opened; this opens it)

Options:
      --store <url>   the store (default LOVAGE_STORE, else sqlite:./.lovage/lovage.db)
  -h, --help          show this help

Example:
  lovage migrate --store postgres://lovage@db.internal/app?schema=lovage`;

const flags = { store: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

/**
 * Runs `lovage migrate`: resolves to the exit code, after saying which versions were applied.
 *
 * @example
 * process.exit(await runMigrate(['--store', 'postgres://localhost/app'], processIo))
 */
export async function runMigrate(argv: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags('migrate', argv, flags);
  if (values.help) {
    io.out(migrateUsage);
    return 0;
  }
  if (values.store === '') throw new UsageError('--store must not be empty; allowed are postgres://..., sqlite:<path> (see lovage migrate --help)');
  const url = values.store ?? defaultStoreUrl();
  if (/^(postgres|postgresql):/.test(url)) {
    const { migratePostgres, parsePostgresUrl } = await import('../eventstore/postgres.ts');
    const { connectionString, schema = 'lovage' } = parsePostgresUrl(url);
    const { default: pg } = await import('pg');
    const { connectionError } = await import('../eventstore/postgres/connection.ts');
    const pool = new pg.Pool({ connectionString, max: 1, connectionTimeoutMillis: 10_000, application_name: 'lovage-migrate' });
    pool.on('error', () => undefined);
    try {
      const { from, to } = await migratePostgres(pool, schema).catch((e: unknown) => { throw connectionError(e, redactUrl(connectionString)); });
      io.out(from === to ? `schema "${schema}" is at version ${to}, nothing to do` : `schema "${schema}" migrated from version ${from} to ${to}`);
      return 0;
    } finally {
      await pool.end();
    }
  }
  if (url.startsWith('sqlite:')) {
    const store = await openStore(url);
    await store.close();
    io.out(`${url} is at the current version (SQLite stores migrate when opened)`);
    return 0;
  }
  if (url.startsWith('memory:')) {
    io.out('memory: has nothing to migrate');
    return 0;
  }
  throw new LovageError('UNSUPPORTED', `lovage migrate: store URL "${redactUrl(url)}" has no migrations here; allowed are postgres://..., sqlite:<path>`);
}

import type pg from 'pg';
import { LovageError } from '../../errors.ts';
import { migrate, type MigrateOptions, type MigrationResult } from './migrations.ts';

/**
 * {@link migrate}, with a schema that holds objects of something else said in Lovage's words: a
 * migration that creates a table, index or function whose name is taken there (another
 * application's `runs`, say) throws VALIDATION naming the schema and the object, instead of
 * Postgres's bare 'relation "runs" already exists'. Nothing is changed: the migration is one
 * transaction.
 *
 * @example
 * await migratePostgres(pool, 'lovage') // { schema: 'lovage', from: 0, to: LATEST_VERSION }
 */
export async function migratePostgres(pool: pg.Pool, schema: string, options: MigrateOptions = {}): Promise<MigrationResult> {
  try {
    return await migrate(pool, schema, options);
  } catch (e) {
    throw takenNameError(e, schema);
  }
}

/** duplicate_table (relations: tables, indexes, sequences), duplicate_object, duplicate_function. */
const TAKEN = new Set(['42P07', '42710', '42723']);

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

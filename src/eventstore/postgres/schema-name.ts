import { LovageError } from '../../errors.ts';

const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Checks a Postgres schema name for the Lovage tables and returns it quoted, ready to put into SQL.
 * Allowed: 1-63 of lowercase `a-z`, `0-9`, `_`, not starting with a digit nor with `pg_` (Postgres
 * reserves those). Lowercase only, so the name means the same quoted and unquoted (in psql too).
 *
 * @example
 * quoteSchema('lovage') // '"lovage"'
 * quoteSchema('Lovage') // throws VALIDATION
 */
export function quoteSchema(name: unknown): string {
  if (typeof name !== 'string' || !SCHEMA.test(name) || name.startsWith('pg_')) {
    throw new LovageError(
      'VALIDATION',
      `Postgres schema name ${JSON.stringify(name)} is invalid; allowed are 1-63 of a-z 0-9 _ (lowercase), not starting with a digit or "pg_" (e.g. "lovage", "lovage_test")`,
      { schema: name },
    );
  }
  return `"${name}"`;
}

import type pg from 'pg';
import { LovageError } from '../../errors.ts';

const names = new Map<string, string>();

/** A short stable name per statement text (a pool may be shared by stores of several schemas). */
function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    name = `lovage_${(h >>> 0).toString(16)}_${text.length}`;
    names.set(text, name);
  }
  return name;
}

/** One statement as a named prepared statement (parsed once per connection), for a pool or a client. */
export function prepared(text: string, values: unknown[]): pg.QueryConfig {
  return { name: statementName(text), text, values };
}

/**
 * Runs one statement on the pool as a named prepared statement (parsed once per connection), with
 * Postgres errors in Lovage's words (see {@link storeError}).
 *
 * @example
 * const rows = await namedQuery<{ n: number }>(pool, 'SELECT 1 AS n', [])
 */
export async function namedQuery<R extends pg.QueryResultRow>(pool: pg.Pool, text: string, values: unknown[]): Promise<R[]> {
  try {
    return (await pool.query<R>(prepared(text, values))).rows;
  } catch (e) {
    throw storeError(e);
  }
}

/**
 * A Postgres error in Lovage's words: a version or ready-queue conflict (SQLSTATE LV409, raised by the
 * store's functions, DETAIL = run id), a deadlock or a serialization failure is CONCURRENCY: nothing
 * was written, try again. Others pass through.
 */
export function storeError(e: unknown): unknown {
  const err = e as { code?: string; detail?: string; message?: string } | null;
  if (err?.code === 'LV409') return new LovageError('CONCURRENCY', err.message ?? 'conflict', { runId: err.detail ?? '' });
  if (err?.code === '40P01' || err?.code === '40001' || err?.code === '23505') {
    return new LovageError('CONCURRENCY', `the batch was rolled back, nothing was written (${err.message ?? ''}); try again`, { runId: '' });
  }
  return e;
}

import { CompiledQuery, type Kysely } from 'kysely';
import type pg from 'pg';
import { LovageError } from '../../errors.ts';
import { newToken } from '../token.ts';
import { APPEND_PARAMS } from './functions-sql.ts';
import { storeError } from './query.ts';

const ALLOWED = 'allowed is a kysely Transaction (inside db.transaction().execute(trx => ...)) or a pg client after BEGIN';

/** The setting that marks the caller's transaction for its submits (see appendInTransactionSql). */
const SUBMIT_SETTING = 'lovage.submit';

/**
 * `append_in_transaction(...APPEND_PARAMS, p_token)` (schema version 9): `append_events` for a submit
 * inside the caller's transaction, in one statement, after `set_config` added the submit's token to
 * SUBMIT_SETTING (a list of tokens, local to the transaction).
 * - It appends only if its token is in the list (and takes it out): the statement before it ran in the
 *   same transaction. When the caller's COMMIT or ROLLBACK came between them, the two ran as statements
 *   of their own and the token is gone (as it is after a ROLLBACK TO a savepoint set before the submit).
 * - Every failure comes back as data (`error_code`, `error_message`, `error_detail`), never raised: the
 *   append runs in a subtransaction (an exception block, query_canceled included: a statement_timeout)
 *   that rolls back what it wrote, and the caller's transaction goes on. LV401: the token was gone,
 *   nothing was written.
 * Tokens, not one value: submits on one connection through several objects (a kysely Transaction and
 * its withSchema()) may set theirs before either appends.
 */
export function appendInTransactionSql(s: string): string {
  return `
CREATE FUNCTION ${s}.append_in_transaction(${APPEND_PARAMS.join(', ')}, p_token text)
RETURNS TABLE (positions float8[], error_code text, error_message text, error_detail text) LANGUAGE plpgsql AS $fn$
DECLARE
  v_tokens text[] := string_to_array(nullif(current_setting('${SUBMIT_SETTING}', true), ''), ',');
BEGIN
  IF v_tokens IS NULL OR NOT p_token = ANY (v_tokens) THEN
    error_code := 'LV401';
    error_message := 'the caller''s transaction ended (COMMIT or ROLLBACK), or was rolled back to a savepoint, before the submit ran';
    RETURN NEXT;
    RETURN;
  END IF;
  PERFORM set_config('${SUBMIT_SETTING}', array_to_string(array_remove(v_tokens, p_token), ','), true);
  BEGIN
    positions := ${s}.append_events(${APPEND_PARAMS.map((p) => p.split(' ')[0]).join(', ')});
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    GET STACKED DIAGNOSTICS error_code = RETURNED_SQLSTATE, error_message = MESSAGE_TEXT, error_detail = PG_EXCEPTION_DETAIL;
  END;
  RETURN NEXT;
END
$fn$`;
}

type Run = (text: string, values?: unknown[]) => Promise<unknown[]>;

/** What `append_in_transaction` returns: the events rows' positions, or the append's error as data. */
interface AppendRow {
  positions: number[] | null;
  error_code: string | null;
  error_message: string | null;
  error_detail: string | null;
}

/**
 * Appends in the caller's open transaction — a kysely Transaction, or a pg client after BEGIN — and
 * resolves to the events rows' positions. Two statements: `set_config` adds a token of this submit's
 * to the transaction's SUBMIT_SETTING, then `append` (the `append_in_transaction` call, whose last
 * argument is the token) appends, in a subtransaction of its own, only inside that same transaction
 * (see appendInTransactionSql). So whatever the caller sends on the connection meanwhile:
 * - a failed append (a conflict, a taken run id, a statement_timeout) leaves nothing and the caller's
 *   transaction usable, and none of the caller's statements is rolled back with it;
 * - a COMMIT or ROLLBACK of the caller's that comes first (or a ROLLBACK TO a savepoint set before
 *   the submit) makes the append refuse (VALIDATION, nothing written), instead of committing the run
 *   on its own; the transaction, if still open, stays usable.
 * Postgres errors come in Lovage's words (see {@link storeError}).
 *
 * Throws VALIDATION, before writing anything, for what is not an open transaction: a pool (by its
 * shape, whichever copy of `pg` or `pg-pool` made it), a Kysely instance, a pg client outside BEGIN
 * or in a failed transaction.
 *
 * @example
 * const positions = await appendInCallerTransaction(client, appendSql, values)
 */
export async function appendInCallerTransaction(tx: unknown, append: string, values: unknown[]): Promise<number[]> {
  const { run, what } = runner(tx);
  const token = newToken();
  let row: AppendRow;
  try {
    await run(`SELECT set_config('${SUBMIT_SETTING}', concat_ws(',', nullif(current_setting('${SUBMIT_SETTING}', true), ''), $1::text), true)`, [token]);
    [row] = (await run(append, [...values, token])) as [AppendRow];
  } catch (e) {
    if ((e as { code?: unknown } | null)?.code === '25P02') throw refused(`${what} in a failed transaction (a statement in it failed, it can only roll back)`);
    throw storeError(e);
  }
  if (row.error_code === 'LV401') throw refused(`${what} whose transaction ended (COMMIT or ROLLBACK), or was rolled back to a savepoint, before the submit ran; nothing was written`);
  if (row.error_code !== null) throw storeError(Object.assign(new Error(row.error_message ?? 'the append failed'), { code: row.error_code, detail: row.error_detail ?? undefined }));
  return row.positions ?? [];
}

/** How to run a statement on `tx`, and what to call it in messages; VALIDATION if it is no transaction. */
function runner(tx: unknown): { run: Run; what: string } {
  if (typeof tx !== 'object' || tx === null) throw refused(tx === null ? 'null' : `a ${typeof tx}`);
  const t = tx as Record<string, unknown>;
  if (typeof t['executeQuery'] === 'function') {
    if (t['isTransaction'] !== true) throw refused('a Kysely instance, not a Transaction: a statement on it commits on its own');
    const db = tx as Kysely<unknown>;
    return { what: 'a kysely Transaction', run: async (text, values = []) => (await db.executeQuery(CompiledQuery.raw(text, values))).rows };
  }
  if (isPool(t)) throw refused('a pool (pg.Pool or alike), not a transaction: each statement on it commits on its own');
  if (typeof t['query'] !== 'function') throw refused(`an object (${constructorName(tx)}) that is neither`);
  // pg's clients say where they are without a round trip; append_in_transaction checks the others.
  const status = typeof t['getTransactionStatus'] === 'function' ? (tx as { getTransactionStatus(): unknown }).getTransactionStatus() : undefined;
  if (status === 'I') throw refused('a pg client outside a transaction (no BEGIN): the submit would commit on its own');
  if (status === 'E') throw refused('a pg client in a failed transaction (a statement in it failed, it can only roll back)');
  const client = tx as pg.ClientBase;
  return { what: 'a pg client', run: async (text, values = []) => (await client.query(text, values)).rows };
}

/**
 * A pool of any copy of `pg` or `pg-pool` (not `instanceof`: a second copy's class is another): pools
 * count their connections, clients do not. One that hides it is still refused: append_in_transaction
 * runs only inside the transaction its set_config marked, and a pool's two statements run in two.
 */
function isPool(t: Record<string, unknown>): boolean {
  return typeof t['totalCount'] === 'number' && typeof t['idleCount'] === 'number' && typeof t['connect'] === 'function';
}

function constructorName(value: object): string {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? name : 'Object';
}

function refused(what: string): LovageError {
  return new LovageError('VALIDATION', `transaction is ${what}; ${ALLOWED}`);
}

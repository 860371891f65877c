import { CompiledQuery, type Kysely } from 'kysely';
import type pg from 'pg';
import { LovageError } from '../../errors.ts';
import { storeError } from './query.ts';

const ALLOWED = 'allowed is a kysely Transaction (inside db.transaction().execute(trx => ...)) or a pg client after BEGIN';
const SAVEPOINT = 'lovage_append';

type Run = (text: string, values?: unknown[]) => Promise<unknown[]>;

/** Statements on one transaction object go one at a time (see {@link inCallerTransaction}). */
const turns = new WeakMap<object, Promise<unknown>>();

/**
 * Runs one statement in the caller's open transaction — a kysely Transaction, or a pg client after
 * BEGIN — inside a savepoint: on success the savepoint is released (the statement's writes commit or
 * roll back with the caller's transaction); on failure the transaction is rolled back to it, so
 * nothing of the statement is left and the caller's transaction stays usable. Postgres errors come in
 * Lovage's words (see {@link storeError}).
 *
 * Throws VALIDATION, before writing anything, for what is not an open transaction: a pool (by its
 * shape, whichever copy of `pg` or `pg-pool` made it), a Kysely instance, a pg client outside BEGIN
 * or in a failed transaction. Each would otherwise commit the submit on its own or fail obscurely.
 * Calls on one transaction object run one at a time: two savepoints of the same name interleaved on
 * one connection would release or roll back each other's.
 *
 * @example
 * const rows = await inCallerTransaction<{ positions: number[] }>(client, 'SELECT ...', values)
 */
export function inCallerTransaction<R>(tx: unknown, text: string, values: unknown[]): Promise<R[]> {
  const { run, what } = runner(tx);
  const key = tx as object;
  const turn = (turns.get(key) ?? Promise.resolve()).catch(() => undefined).then(() => inSavepoint<R>(run, what, text, values));
  turns.set(key, turn);
  return turn;
}

async function inSavepoint<R>(run: Run, what: string, text: string, values: unknown[]): Promise<R[]> {
  try {
    await run(`SAVEPOINT ${SAVEPOINT}`);
  } catch (e) {
    // The reliable check, whatever made the object: SAVEPOINT fails outside BEGIN and in a failed transaction.
    const code = (e as { code?: unknown } | null)?.code;
    if (code === '25P01') throw refused(`${what} outside a transaction (no BEGIN): the submit would commit on its own`);
    if (code === '25P02') throw refused(`${what} in a failed transaction (a statement in it failed, it can only roll back)`);
    throw storeError(e);
  }
  try {
    const rows = (await run(text, values)) as R[];
    await run(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    return rows;
  } catch (e) {
    // If even this fails (the connection is gone), the caller's COMMIT fails too: nothing is kept.
    await run(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`).then(() => run(`RELEASE SAVEPOINT ${SAVEPOINT}`)).catch(() => undefined);
    throw storeError(e);
  }
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
  // pg's clients say where they are without a round trip; the SAVEPOINT checks the others.
  const status = typeof t['getTransactionStatus'] === 'function' ? (tx as { getTransactionStatus(): unknown }).getTransactionStatus() : undefined;
  if (status === 'I') throw refused('a pg client outside a transaction (no BEGIN): the submit would commit on its own');
  if (status === 'E') throw refused('a pg client in a failed transaction (a statement in it failed, it can only roll back)');
  const client = tx as pg.ClientBase;
  return { what: 'a pg client', run: async (text, values = []) => (await client.query(text, values)).rows };
}

/**
 * A pool of any copy of `pg` or `pg-pool` (not `instanceof`: a second copy's class is another): pools
 * count their connections, clients do not. One that hides it still fails the SAVEPOINT check.
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

import { LovageError } from '../../errors.ts';
import { redactUrl } from '../redact-url.ts';

export { redactUrl } from '../redact-url.ts';

/** What a `postgres://` store URL says: the connection string for `pg`, and Lovage's own parameters. */
export interface PostgresUrl {
  /** The URL without `schema` and `migrate` (passed to `pg` as is otherwise). */
  readonly connectionString: string;
  readonly schema?: string;
  readonly migrate?: boolean;
  /** `?max=`: connections in the store's pool (1-1000; default 10). */
  readonly max?: number;
}

const FORM = 'allowed is postgres://[user[:password]@]host[:port]/database[?schema=name&migrate=true|false&max=connections] (postgresql:// too)';

/**
 * Parses a `postgres://` or `postgresql://` store URL. `?schema=name` picks the schema (default
 * `lovage`), `?migrate=false` opens without migrating (default: migrate), `?max=n` sizes the pool
 * (default 10 connections). Throws VALIDATION, with the
 * password hidden, for a malformed URL.
 *
 * @example
 * parsePostgresUrl('postgres://app@db/prod?schema=jobs') // { connectionString: 'postgres://app@db/prod', schema: 'jobs' }
 */
export function parsePostgresUrl(url: string): PostgresUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new LovageError('VALIDATION', `store URL "${redactUrl(url)}" is not a valid URL; ${FORM}`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new LovageError('VALIDATION', `store URL "${redactUrl(url)}" is not a Postgres URL; ${FORM}`);
  }
  const schema = parsed.searchParams.get('schema') ?? undefined;
  const flag = parsed.searchParams.get('migrate');
  if (flag !== null && !['true', 'false', '1', '0'].includes(flag)) {
    throw new LovageError('VALIDATION', `store URL "${redactUrl(url)}": migrate=${flag} is not allowed; allowed are migrate=true and migrate=false`);
  }
  const maxText = parsed.searchParams.get('max');
  const max = maxText === null ? undefined : Number(maxText);
  if (max !== undefined && (!/^\d+$/.test(maxText!) || max < 1 || max > 1000)) {
    throw new LovageError('VALIDATION', `store URL "${redactUrl(url)}": max=${maxText} is not allowed; allowed is the pool's size in connections, an integer from 1 to 1000`);
  }
  parsed.searchParams.delete('schema');
  parsed.searchParams.delete('migrate');
  parsed.searchParams.delete('max');
  return {
    connectionString: parsed.toString(),
    ...(schema !== undefined ? { schema } : {}),
    ...(flag !== null ? { migrate: flag === 'true' || flag === '1' } : {}),
    ...(max !== undefined ? { max } : {}),
  };
}

const NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EAI_AGAIN']);

/**
 * An error met while opening the store, said in Lovage's words when it is about the connection: a
 * server that does not answer is TIMEOUT (worth retrying), one that refuses the login or the database
 * is VALIDATION (fix the URL). Other errors pass through.
 */
export function connectionError(e: unknown, where: string): unknown {
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' ? err.code : '';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  if (NETWORK.has(code) || /timeout exceeded when trying to connect|Connection terminated/i.test(message)) {
    return new LovageError('TIMEOUT', `Postgres at ${where} did not answer (${message}); check the host and port, and that the server runs`, { cause: message });
  }
  if (code.startsWith('28') || code === '3D000') {
    return new LovageError('VALIDATION', `Postgres at ${where} refused the connection (${message}); check the user, password and database`, { cause: message });
  }
  return e;
}

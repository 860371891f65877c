import { resolve } from 'node:path';
import { LovageError } from '../errors.ts';
import { MemoryStore } from './memory.ts';
import { redactUrl } from './redact-url.ts';
import { SqliteStore } from './sqlite.ts';
import type { EventStore } from './store.ts';

const ALLOWED = 'allowed are sqlite:<path> (sqlite:./lovage.db), sqlite::memory:, memory:, postgres://[user[:password]@]host[:port]/database[?schema=name], redis://[user:password@]host[:port][/db][?prefix=name:]';

/** The default store: `LOVAGE_STORE`, else a SQLite file under `./.lovage/`. */
export function defaultStoreUrl(): string {
  return process.env['LOVAGE_STORE'] || 'sqlite:./.lovage/lovage.db';
}

/**
 * Opens a store from a URL. Throws a VALIDATION error naming the URL and the allowed forms.
 *
 * @example
 * const store = await openStore('sqlite:./lovage.db')
 */
export async function openStore(url: string): Promise<EventStore> {
  if (typeof url !== 'string' || url.length === 0) throw new LovageError('VALIDATION', `store URL ${JSON.stringify(url)} is empty; ${ALLOWED}`);
  if (url === 'memory:' || url === 'memory://') return new MemoryStore();
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') throw new LovageError('VALIDATION', `store URL "${url}" names no file; ${ALLOWED}`);
    return SqliteStore.open({ path: path === ':memory:' ? path : resolve(path) });
  }
  if (/^(postgres|postgresql):/.test(url)) {
    // Loaded only here, so `pg` is loaded only by those who use Postgres. Migrates unless ?migrate=false.
    const { PostgresStore, parsePostgresUrl } = await import('./postgres.ts');
    const { connectionString, schema, migrate, max } = parsePostgresUrl(url);
    return PostgresStore.open({ connectionString, ...(schema !== undefined ? { schema } : {}), ...(migrate !== undefined ? { migrate } : {}), ...(max !== undefined ? { max } : {}) });
  }
  if (/^(redis|rediss):/.test(url)) {
    // Loaded on demand: only those who use Redis load ioredis.
    const { openRedisUrl } = await import('./redis.ts');
    return openRedisUrl(url);
  }
  throw new LovageError('VALIDATION', `store URL "${redactUrl(url)}" is not recognised; ${ALLOWED}`);
}

/** A URL with its password hidden, for messages (see {@link redactUrl}). */
export const redact: (url: string) => string = redactUrl;

// The table of stores the fault tests run on: one row a store. Each row makes a fresh, empty store
// for one test (its own SQLite file, Postgres schema or Redis key prefix) and drops it afterwards.
// A row whose server does not answer skips (or fails, with LOVAGE_REQUIRE_SERVICES=1) through the
// probes of test/support/services.ts.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { deletePrefixes } from './redis-server.ts';
import { postgresUrl, redisUrl } from './services.ts';

/** A fresh store for one test: its URL and how to remove it. */
export interface FreshStore {
  readonly url: string;
  drop(): Promise<void>;
}

/** One row of the table. */
export interface StoreCase {
  readonly name: 'sqlite' | 'postgres' | 'redis';
  /** A fresh store under `dir` or on the shared server; undefined when the server does not answer (skip). */
  fresh(dir: string): Promise<FreshStore | undefined>;
}

const suffix = () => randomBytes(5).toString('hex');

/** The shared Postgres's URL (no schema), or undefined after saying why (services.postgresUrl). */
export const sharedPostgres = (): Promise<string | undefined> => postgresUrl();

/** The shared Redis's URL, or undefined after saying why (services.redisUrl). */
export const sharedRedis = (): Promise<string | undefined> => redisUrl();

/** Connects and runs `SELECT 1`; resolves to the error text, or undefined when it answered. */
export async function pingPostgres(url: string, timeoutMs = 2000): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Drops a schema with everything in it (the store's tables and functions). */
export async function dropSchema(url: string, schema: string): Promise<void> {
  if (!/^[a-z0-9_]{1,63}$/.test(schema)) throw new Error(`refusing to drop schema ${JSON.stringify(schema)}`);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** `url` with `?<key>=<value>` set. */
export function withParam(url: string, key: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.toString();
}

export const sqliteCase: StoreCase = {
  name: 'sqlite',
  fresh: async (dir) => ({ url: `sqlite:${join(dir, 'faults.db')}`, drop: async () => undefined }),
};

export const postgresCase: StoreCase = {
  name: 'postgres',
  async fresh() {
    const base = await sharedPostgres();
    if (!base) return undefined;
    const schema = `lovage_fault_${suffix()}`;
    // A small pool per process: several worker processes and two test files share one server (max_connections 100).
    return { url: withParam(withParam(base, 'max', '4'), 'schema', schema), drop: () => dropSchema(base, schema) };
  },
};

export const redisCase: StoreCase = {
  name: 'redis',
  async fresh() {
    const base = await sharedRedis();
    if (!base) return undefined;
    const prefix = `lovage-fault:${suffix()}:`;
    return { url: withParam(base, 'prefix', prefix), drop: async () => void (await deletePrefixes(base, [prefix])) };
  },
};

/** Every store the fault tests run on; `LOVAGE_FAULT_STORES=sqlite,redis` keeps only those named. */
export const storeCases: readonly StoreCase[] = selected([sqliteCase, postgresCase, redisCase]);

/** The rows named in LOVAGE_FAULT_STORES (all when unset); an unknown name is an error, not a silent skip. */
export function selected<T extends { readonly name: string }>(rows: readonly T[]): T[] {
  const only = process.env['LOVAGE_FAULT_STORES']?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!only?.length) return [...rows];
  const known = ['sqlite', 'postgres', 'redis'];
  const unknown = only.filter((n) => !known.includes(n));
  if (unknown.length > 0) throw new Error(`LOVAGE_FAULT_STORES names unknown stores ${unknown.join(', ')}; allowed are ${known.join(', ')}`);
  return rows.filter((r) => only.includes(r.name));
}

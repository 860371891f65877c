// `--store sqlite|postgres|redis`: where the Lovage workloads keep their store, and which peer runs beside
// them. Postgres and Redis stores are opened through the public `openStore(url)`, each under a fresh
// schema / key prefix that is dropped afterwards.
import { Redis } from 'ioredis';
import pg from 'pg';
import { LovageError } from '../src/errors.ts';
import type { EventStore } from '../src/eventstore/store.ts';
import { openStore } from '../src/eventstore/url.ts';
import { PG_URL, randomTag, REDIS } from './peer-common.ts';

export type StoreKind = 'sqlite' | 'postgres' | 'redis';
export const STORE_KINDS: readonly StoreKind[] = ['sqlite', 'postgres', 'redis'];

/** A Lovage store on a fresh schema / prefix, and how to remove every trace of it (after `store.close()`). */
export interface BenchStore {
  readonly url: string;
  readonly store: EventStore;
  drop(): Promise<void>;
}

/** Opens Lovage on a fresh Postgres schema or Redis key prefix through `openStore(url)`. */
export async function openBenchStore(kind: Exclude<StoreKind, 'sqlite'>): Promise<BenchStore> {
  const tag = randomTag();
  if (kind === 'postgres') {
    const schema = `lovage_bench_${tag}`;
    const url = `${PG_URL}?schema=${schema}`;
    const drop = () => dropSchema(schema);
    return { url, store: await openOrDrop(url, drop), drop };
  }
  const prefix = `lovage-bench-${tag}:`;
  const url = `redis://${REDIS.host}:${REDIS.port}?prefix=${prefix}`;
  const drop = () => dropPrefix(prefix);
  return { url, store: await openOrDrop(url, drop), drop };
}

async function openOrDrop(url: string, drop: () => Promise<void>): Promise<EventStore> {
  try {
    return await openStore(url);
  } catch (e) {
    await drop().catch(() => undefined); // a store that failed half-way may have created some of it
    throw e;
  }
}

/**
 * Opens and drops one store to see whether Lovage runs on `kind` in this checkout: undefined when it
 * does, else the line to print ("Lovage on postgres: not available yet" for an UNSUPPORTED store).
 */
export async function probeStore(kind: StoreKind): Promise<string | undefined> {
  if (kind === 'sqlite') return undefined;
  try {
    const s = await openBenchStore(kind);
    await s.store.close();
    await s.drop();
    return undefined;
  } catch (e) {
    if (e instanceof LovageError && e.code === 'UNSUPPORTED') return `Lovage on ${kind}: not available yet (${e.message})`;
    return `Lovage on ${kind}: cannot open the store (${e instanceof Error ? e.message : String(e)})`;
  }
}

async function dropSchema(schema: string): Promise<void> {
  if (!/^[a-z0-9_]+$/.test(schema)) throw new Error(`refusing to drop schema ${JSON.stringify(schema)}`);
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis({ ...REDIS });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

// The private-server helpers of the fault tests (test/support/private-servers.ts) on their own:
// each server starts on its own port, keeps committed data across a crash and restart, and is gone
// after stop(). The shared servers on 5432/6379 are never touched.
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { pingPostgres } from './support/fault-stores.ts';
import { postgresBin, redisServerBin, startDurableRedis, startPrivatePostgres, stopAllPrivateServers } from './support/private-servers.ts';
import { pingRedis, servicesRequired } from './support/services.ts';

afterAll(() => stopAllPrivateServers());

const missing = (what: string, have: unknown) => {
  if (have) return false;
  if (servicesRequired) throw new Error(`${what} is not installed; LOVAGE_REQUIRE_SERVICES=1 requires it`);
  console.warn(`${what} is not installed: skipping its private-server test`);
  return true;
};

async function query<T>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('private servers', () => {
  it.skipIf(missing('Postgres (initdb under /usr/lib/postgresql/*/bin)', postgresBin()))('a private Postgres starts, keeps committed rows across an immediate-mode restart, and stops', async () => {
    const server = await startPrivatePostgres();
    expect(server.port).not.toBe(5432);
    await query(server.url, 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (1), (2)');
    const [before] = await query<{ t: string }>(server.url, 'SELECT pg_postmaster_start_time()::text AS t');

    await server.restart();
    const [after] = await query<{ t: string }>(server.url, 'SELECT pg_postmaster_start_time()::text AS t');
    expect(after!.t).not.toBe(before!.t); // a new postmaster
    expect(await query(server.url, 'SELECT n FROM kept ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);

    // A client that was connected across the crash sees its connection end, and a new one works.
    const client = new pg.Client({ connectionString: server.url });
    client.on('error', () => undefined);
    await client.connect();
    await server.crash();
    await expect(client.query('SELECT 1')).rejects.toThrow();
    await client.end().catch(() => undefined);
    await server.start();
    expect(await query(server.url, 'SELECT count(*)::int AS c FROM kept')).toEqual([{ c: 2 }]);

    await server.stop();
    expect(await pingPostgres(server.url, 1000)).toMatch(/ECONNREFUSED|connect/);
    await server.stop(); // idempotent
  }, 120_000);

  it.skipIf(missing('redis-server', redisServerBin))('a private Redis with AOF keeps acknowledged writes across kill -9 and restart, and stops', async () => {
    const server = await startDurableRedis();
    expect(server.port).not.toBe(6379);
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    redis.on('error', () => undefined);
    try {
      await redis.set('kept', 'yes');
      await redis.rpush('list', 'a', 'b', 'c');
      const runId = (await redis.info('server')).match(/run_id:(\w+)/)?.[1];

      await server.restart();
      // The same ioredis client reconnects by itself.
      await expect.poll(() => redis.get('kept').catch(() => 'not yet'), { timeout: 10_000, interval: 100 }).toBe('yes');
      expect(await redis.lrange('list', 0, -1)).toEqual(['a', 'b', 'c']);
      expect((await redis.info('server')).match(/run_id:(\w+)/)?.[1]).not.toBe(runId);
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    } finally {
      redis.disconnect();
    }

    await server.stop();
    expect(await pingRedis('127.0.0.1', server.port, 500)).toBeDefined();
    await server.stop(); // idempotent
  }, 60_000);
});

// The machine's scale for the many-machines budgets, measured in the same run: the issue sets them
// beside "raw Postgres here does ~36k claim+complete/s in batches of 50 from one client, and a 5-call
// Lua script runs ~54k/s". These machines' speed moves by 2× from day to day (docs/benchmarks.md), so
// `npm run bench -- --store postgres|redis` ends with today's figure for the same raw work.
import { Redis } from 'ioredis';
import pg from 'pg';
import { performance } from 'node:perf_hooks';
import { count } from './harness.ts';
import { PG_URL, randomTag, REDIS } from './peer-common.ts';

/** The raw figures the issue quotes beside its budgets, per second. */
export const ISSUE_SCALE = { postgres: 36_000, redis: 54_000 } as const;

/**
 * Raw Postgres, no event log: `n` jobs in a table, claimed `batch` at a time (UPDATE ... FOR UPDATE SKIP
 * LOCKED) and deleted, by one client. Returns jobs/s.
 */
export async function rawPostgres(url: string, n: number, batch: number): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const table = `lovage_bench_jobs_${randomTag()}`;
  try {
    await client.query(`CREATE TABLE ${table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, queue text NOT NULL,
      payload text NOT NULL, locked_by text, locked_until timestamptz)`);
    await client.query(`CREATE INDEX ON ${table} (queue, id) WHERE locked_by IS NULL`);
    await client.query(`INSERT INTO ${table} (queue, payload) SELECT 'default', json_build_object('task', 'noop', 'args', json_build_array(i))::text FROM generate_series(1, $1) i`, [n]);
    await client.query(`VACUUM ANALYZE ${table}`);
    const claim = `UPDATE ${table} j SET locked_by = $1, locked_until = now() + interval '30 s'
      FROM (SELECT id FROM ${table} WHERE queue = 'default' AND locked_by IS NULL ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) c
      WHERE j.id = c.id RETURNING j.id, j.payload`;
    const t0 = performance.now();
    let done = 0;
    for (;;) {
      const { rows: got } = await client.query<{ id: string; payload: string }>({ name: `${table}_claim`, text: claim, values: ['peer', batch] });
      if (got.length === 0) break;
      for (const r of got) JSON.parse(r.payload);
      await client.query({ name: `${table}_done`, text: `DELETE FROM ${table} WHERE id = ANY ($1::bigint[])`, values: [got.map((r) => r.id)] });
      done += got.length;
    }
    const timeMs = performance.now() - t0;
    if (done !== n) throw new Error(`raw Postgres completed ${done} of ${n} jobs`);
    return (n / timeMs) * 1000;
  } finally {
    await client.query(`DROP TABLE IF EXISTS ${table}`);
    await client.end();
  }
}

/** Raw Redis: `n` calls of a Lua script that makes 5 calls (a hash, a sorted set, a counter), 100 in flight from one client. Returns calls/s. */
export async function rawRedisScript(n: number): Promise<number> {
  const redis = new Redis({ host: REDIS.host, port: REDIS.port });
  const p = `lovage-bench-scale:${randomTag()}:`;
  const script = `redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
    redis.call('INCR', KEYS[3]) redis.call('ZREM', KEYS[2], ARGV[2]) return redis.call('HDEL', KEYS[1], ARGV[1])`;
  try {
    const sha = (await redis.script('LOAD', script)) as string;
    const t0 = performance.now();
    for (let i = 0; i < n; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => redis.evalsha(sha, 3, `${p}h`, `${p}z`, `${p}n`, String(i + k), `m${i + k}`)));
    }
    return (n / (performance.now() - t0)) * 1000;
  } finally {
    await redis.del(`${p}h`, `${p}z`, `${p}n`);
    redis.disconnect();
  }
}

/** One line: today's raw figure on `store` beside the issue's, or why it could not be measured. */
export async function machineScale(store: 'postgres' | 'redis', quick: boolean): Promise<string> {
  const n = quick ? 10_000 : 50_000;
  try {
    if (store === 'postgres') {
      const r = await rawPostgres(PG_URL, n, 50);
      return `This machine now: raw Postgres claim+complete, batches of 50, one client: ${count(r)} jobs/s (the issue's figure beside its budgets: ~${count(ISSUE_SCALE.postgres)}; ${(r / ISSUE_SCALE.postgres).toFixed(2)}×).`;
    }
    const r = await rawRedisScript(n);
    return `This machine now: a 5-call Lua script, 100 in flight from one client: ${count(r)} calls/s (the issue's figure beside its budgets: ~${count(ISSUE_SCALE.redis)}; ${(r / ISSUE_SCALE.redis).toFixed(2)}×).`;
  } catch (e) {
    return `This machine now: the raw ${store} figure could not be measured (${e instanceof Error ? e.message : String(e)}).`;
  }
}

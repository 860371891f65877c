// `tsx bench/redis.ts [--quick] [--url redis://127.0.0.1:6379]`: the Redis store's own budgets, W1
// (burn-down) with one worker and with two workers in the process (while one waits for Redis the other
// folds and decides: Node and Redis then use both cores) and W3 (enqueue→start latency), each under its
// own random key prefix (deleted afterwards); and PEER, a raw Redis queue of the same batch shape (one Lua
// call claims 100 jobs, one completes 100), in the same run. Budgets: W1 ≥ 25k tasks/s, W3 p50 ≤ 1 ms.
// `npm run bench -- --store redis` runs every workload (W1-W6) on Redis beside BullMQ.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { createApp, type App } from '../src/app/app.ts';
import { group } from '../src/canvas/combinators.ts';
import { RedisStore } from '../src/eventstore/redis.ts';
import { count, ms, quantile, sleep, workerFor } from './harness.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const url = args[args.indexOf('--url') + 1] && args.includes('--url') ? args[args.indexOf('--url') + 1]! : 'redis://127.0.0.1:6379';
const scale = (n: number) => (quick ? Math.round(n / 10) : n);
const rows: string[][] = [];
const report = (cells: string[]) => {
  rows.push(cells);
  console.log(cells.map((c, i) => c.padEnd([38, 12, 9, 30, 18, 6][i]!)).join('  ').trimEnd());
};

async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(url);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}

/**
 * Resolves when every run in `ids` is finished, to the time the last-submitted one was seen finished.
 * Waits on the last run's handle (woken by this process's coordinator, no polling: a tight getRun
 * poll, as the SQLite harness does, would be a Redis round trip per event-loop turn competing with the
 * worker), then checks all runs with the clock stopped, 1000 at a time (ioredis pipelines them).
 */
async function waitAll(app: App, store: RedisStore, ids: readonly string[]): Promise<number> {
  let end = 0;
  for (let checked = false; !checked;) {
    await app.run(ids[ids.length - 1]!).get({ timeoutMs: 300_000 });
    end = performance.now();
    checked = true;
    for (let i = 0; i < ids.length && checked; i += 1000) {
      const runs = await Promise.all(ids.slice(i, i + 1000).map((id) => store.getRun(id)));
      const open = runs.findIndex((r) => r?.status !== 'succeeded');
      if (open >= 0) {
        await app.run(ids[i + open]!).get({ timeoutMs: 300_000 });
        end = performance.now();
        checked = false;
      }
    }
  }
  return end;
}

async function withApp<T>(fn: (app: App, store: RedisStore) => Promise<T>): Promise<T> {
  const prefix = `lovage-bench:${randomBytes(4).toString('hex')}:`;
  const store = await RedisStore.open({ url, prefix });
  const app = createApp({ store });
  try {
    return await fn(app, store);
  } finally {
    await app.close();
    await dropPrefix(prefix);
  }
}

/** The raw baseline: jobs in a list and a zset of leases; a claim script pops 100, a complete script acks 100. */
async function peer(n: number): Promise<number> {
  const redis = new Redis(url);
  const p = `lovage-bench-peer:${randomBytes(4).toString('hex')}:`;
  const claim = `local out = {} local now = redis.call('TIME')[1]
    for i = 1, tonumber(ARGV[1]) do local id = redis.call('LPOP', KEYS[1]) if not id then break end
      redis.call('ZADD', KEYS[2], now + 30, id) redis.call('HSET', KEYS[3] .. id, 'worker', ARGV[2]) out[#out + 1] = id end return out`;
  const complete = `for i = 1, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) redis.call('DEL', KEYS[2] .. ARGV[i]) redis.call('INCR', KEYS[3]) end return #ARGV`;
  for (let i = 0; i < n; i += 1000) await redis.rpush(`${p}q`, ...Array.from({ length: Math.min(1000, n - i) }, (_, k) => String(i + k)));
  const t0 = performance.now();
  let done: string[] = [];
  for (;;) {
    const ids = (await redis.eval(claim, 3, `${p}q`, `${p}l`, `${p}j:`, 100, 'w')) as string[];
    if (done.length) await redis.eval(complete, 3, `${p}l`, `${p}j:`, `${p}n`, ...done);
    if (ids.length === 0) break;
    done = ids;
  }
  const timeMs = performance.now() - t0;
  await redis.del(`${p}q`, `${p}l`, `${p}n`);
  redis.disconnect();
  return timeMs;
}

async function main(): Promise<void> {
  console.log(`Redis store benchmarks (${quick ? 'quick' : 'full'}), ${url}, Node ${process.version}`);
  console.log(['workload', 'size', 'time', 'rate', 'budget', 'result'].map((c, i) => c.padEnd([38, 12, 9, 30, 18, 6][i]!)).join('  '));

  const n = scale(100_000);
  const peerMs = await peer(n);
  report(['PEER raw Redis queue (Lua)', `${count(n)} jobs`, ms(peerMs), `${count((n / peerMs) * 1000)} jobs/s`, '(baseline)', '']);

  for (const workers of [1, 2]) {
    const who = workers === 1 ? '1 worker' : `${workers} workers`;
    await withApp(async (app, store) => {
      const noop = app.task('noop', () => null);
      const t0 = performance.now();
      const ids: string[] = [];
      // Pre-filled 100 submits at a time (ioredis pipelines them): a submit is one script call.
      for (let i = 0; i < n; i += 100) ids.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, async () => (await noop.delay()).id))));
      const submitMs = performance.now() - t0;
      const t1 = performance.now();
      for (let w = 0; w < workers; w++) app.worker(workerFor('redis'));
      const timeMs = (await waitAll(app, store, ids)) - t1;
      const rate = (n / timeMs) * 1000;
      report([`W1a burn-down, single runs, ${who}`, `${count(n)} runs`, ms(timeMs), `${count(rate)} tasks/s`, '≥ 25k tasks/s', rate >= 25_000 ? 'pass' : 'MISS']);
      if (workers === 1) report(['  · pre-fill (100 in flight)', `${count(n)} runs`, ms(submitMs), `${count((n / submitMs) * 1000)} submits/s`, '', '']);
    });

    // Two workers on one run's group fight over its version (each claim appends to the run, so the
    // other's outcomes conflict and retry): W1b runs with one worker only.
    if (workers > 1) continue;
    await withApp(async (app, store) => {
      const noop = app.task('noop', () => null);
      const t0 = performance.now();
      const run = await group(Array.from({ length: n }, () => noop.s())).applyAsync();
      const submitMs = performance.now() - t0;
      const t1 = performance.now();
      for (let w = 0; w < workers; w++) app.worker(workerFor('redis'));
      const timeMs = (await waitAll(app, store, [run.id])) - t1;
      const rate = (n / timeMs) * 1000;
      report(['W1b burn-down, one group, 1 worker', `${count(n)} members`, ms(timeMs), `${count(rate)} tasks/s`, '≥ 25k tasks/s', rate >= 25_000 ? 'pass' : 'MISS']);
      report(['  · submit of the group', '', ms(submitMs), '', '', '']);
    });
  }

  await withApp(async (app, store) => {
    const samples = scale(2000);
    const warmup = Math.min(200, samples);
    let startedAt = 0;
    let onStart: () => void = () => {};
    const ping = app.task('ping', () => {
      startedAt = performance.now();
      onStart();
      return null;
    });
    app.worker(workerFor('redis'));
    await app.store();
    await sleep(50);
    const total: number[] = [];
    for (let i = 0; i < warmup + samples; i++) {
      const started = new Promise<void>((r) => (onStart = r));
      const t0 = performance.now();
      const run = await ping.delay();
      await started;
      if (i >= warmup) total.push(startedAt - t0);
      await run.get({ timeoutMs: 10_000 });
      await sleep(1);
    }
    total.sort((a, b) => a - b);
    const p50 = quantile(total, 0.5);
    report(['W3 enqueue→start latency', `${count(samples)} samples`, '', `p50 ${p50.toFixed(3)} / p99 ${quantile(total, 0.99).toFixed(3)} ms`, 'p50 ≤ 1 ms', p50 <= 1 ? 'pass' : 'MISS']);
  });
}

await main();

// What the BullMQ and graphile-worker peers share: result shapes, "skipped" instead of a throw when a
// server does not answer, and the PEER workload that runs one peer's W1, W3 and W5 and reports them.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import pg from 'pg';
import { count, ms, type BenchContext, type Workload } from './harness.ts';

/** The Redis the bench uses; `LOVAGE_BENCH_REDIS_PORT` points it at a private one (e.g. under a profiler). */
export const REDIS = { host: '127.0.0.1', port: Number(process.env['LOVAGE_BENCH_REDIS_PORT'] ?? 6379) } as const;
export const PG_URL = process.env['LOVAGE_BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A measurement, or why there is none ("skipped: …"), never a throw for an absent server. */
export type PeerResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly skipped: string };

export interface BurnDown { readonly n: number; readonly timeMs: number; readonly rate: number; readonly prefillMs: number; readonly note: string }
export interface Latency { readonly samples: number; readonly p50: number; readonly p99: number; readonly max: number; readonly submitP50: number; readonly note: string }
export interface Chord { readonly n: number; readonly totalMs: number; readonly submitMs: number; readonly note: string }

/** The three functions a peer exports for the harness. */
export interface Peer {
  readonly name: string;
  readonly version: string;
  burnDown(n: number): Promise<PeerResult<BurnDown>>;
  latency(samples: number, warmup: number): Promise<PeerResult<Latency>>;
  chord(n: number): Promise<PeerResult<Chord>>;
}

export const ok = <T>(value: T): PeerResult<T> => ({ ok: true, value });
export const skipped = <T>(why: string): PeerResult<T> => ({ ok: false, skipped: `skipped: ${why}` });

/** A short random name part, e.g. for `graphile_bench_1a2b3c4d` or `lovage-bench-1a2b3c4d`. */
export const randomTag = (): string => randomBytes(4).toString('hex');

/** The installed version of an npm package (read from its package.json). */
export function installedVersion(pkg: string): string {
  try {
    return (createRequire(import.meta.url)(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return '?';
  }
}

/** Why Redis does not answer within 2 s, or undefined when it does. */
export async function redisDown(): Promise<string | undefined> {
  const redis = new Redis({ ...REDIS, lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let cause: string | undefined; // ioredis rejects with "Connection is closed."; the error event says why
  redis.on('error', (e: Error) => (cause ??= e.message));
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (e) {
    return `Redis at ${REDIS.host}:${REDIS.port} does not answer (${cause ?? (e instanceof Error ? e.message : String(e))})`;
  } finally {
    redis.disconnect();
  }
}

/** Why Postgres does not answer within 2 s, or undefined when it does. */
export async function postgresDown(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (e) {
    return `Postgres at ${PG_URL} does not answer (${e instanceof Error ? e.message : String(e)})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Counts events down to zero: `done` resolves with the `performance.now()` of the last `hit()` (taken in
 * the event handler, so no polling loop competes for the two cores), or rejects on `fail()` or timeout.
 */
export class Countdown {
  readonly done: Promise<number>;
  #left: number;
  #resolve: (t: number) => void = () => {};
  #reject: (e: Error) => void = () => {};
  readonly #timer: NodeJS.Timeout;

  constructor(n: number, timeoutMs: number, what: string) {
    this.#left = n;
    this.done = new Promise<number>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.done.catch(() => undefined); // a rejection is read by whoever awaits `done`
    this.#timer = setTimeout(() => this.#reject(new Error(`${what} did not finish within ${(timeoutMs / 1000).toFixed(0)} s (${this.#left} of ${n} left)`)), timeoutMs);
    if (n <= 0) this.#finish();
  }

  hit(): void {
    if (--this.#left === 0) this.#finish();
  }

  fail(e: Error): void {
    clearTimeout(this.#timer);
    this.#reject(e);
  }

  #finish(): void {
    clearTimeout(this.#timer);
    this.#resolve(performance.now());
  }
}

/** The PEER workload for a store: the peer's W1, W3 and W5, reported as rows and kept in `ctx.shared` for the ratios. */
export function peerWorkload(peer: Peer): Workload {
  return {
    id: 'PEER',
    title: `${peer.name} ${peer.version}`,
    async run(ctx: BenchContext) {
      const who = peer.name;
      const skip = (what: string, why: string) => ctx.report({ workload: `${who} ${what}`, size: '', rate: why, budget: '' });
      const n = ctx.scale(100_000);
      await peer.burnDown(Math.min(n, 5000)); // warm-up: the peer runs first, in a cold process
      const w1 = await peer.burnDown(n);
      if (!w1.ok) skip('W1', w1.skipped);
      else {
        const b = w1.value;
        ctx.shared.set('peerRate', b.rate);
        ctx.report({ workload: `${who} W1 burn-down`, size: `${count(n)} jobs`, timeMs: b.timeMs, rate: `${count(b.rate)} jobs/s`, budget: '(peer)', note: `pre-fill ${ms(b.prefillMs)} = ${count((n / b.prefillMs) * 1000)} jobs/s; ${b.note}` });
      }
      const samples = ctx.scale(2000);
      const w3 = await peer.latency(samples, Math.min(200, samples));
      if (!w3.ok) skip('W3', w3.skipped);
      else {
        const l = w3.value;
        ctx.shared.set('peer.w3.p50', l.p50);
        ctx.shared.set('peer.w3.p99', l.p99);
        ctx.report({ workload: `${who} W3 latency`, size: `${count(samples)} samples`, rate: `p50 ${l.p50.toFixed(3)} / p99 ${l.p99.toFixed(3)} ms`, budget: '(peer)', note: `add() resolves at p50 ${l.submitP50.toFixed(3)} ms; max ${l.max.toFixed(2)} ms; ${l.note}` });
      }
      const size = ctx.scale(10_000);
      const w5 = await peer.chord(size);
      if (!w5.ok) skip('W5', w5.skipped);
      else {
        const c = w5.value;
        ctx.shared.set('peer.w5', c.totalMs);
        ctx.report({ workload: `${who} W5 chord`, size: `${count(size)} members`, timeMs: c.totalMs, rate: `${((c.totalMs / size) * 1000).toFixed(1)} µs/child`, budget: '(peer)', note: `submit ${ms(c.submitMs)} included; ${c.note}` });
      }
    },
  };
}

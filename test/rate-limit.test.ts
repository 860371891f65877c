// Rate limits: parsing `'10/s'`-style specs, and the worker's RateLimiter on the memory store (the
// stores' takeToken/setRateLimit are checked on every store by test/support/store-conformance.ts).
import { describe, expect, it } from 'vitest';
import { parseRateLimit } from '../src/app/rate-limit.ts';
import { createApp } from '../src/index.ts';
import { MemoryStore } from '../src/eventstore/memory.ts';
import type { EventStore } from '../src/eventstore/store.ts';
import type { RateLimit } from '../src/eventstore/rate/window.ts';
import { RateLimiter } from '../src/workers/rate-limit.ts';
import { ManualClock } from './support/store-conformance.ts';

describe('parseRateLimit', () => {
  it('reads <count>/<period> with s, m, h, d or ms, optionally a multiple', () => {
    expect(parseRateLimit('10/s')).toEqual({ count: 10, periodMs: 1000 });
    expect(parseRateLimit('100/m')).toEqual({ count: 100, periodMs: 60_000 });
    expect(parseRateLimit('1000/h')).toEqual({ count: 1000, periodMs: 3_600_000 });
    expect(parseRateLimit('5/2s')).toEqual({ count: 5, periodMs: 2000 });
    expect(parseRateLimit('3/500ms')).toEqual({ count: 3, periodMs: 500 });
    expect(parseRateLimit('50000/d')).toEqual({ count: 50_000, periodMs: 86_400_000 });
    expect(parseRateLimit(' 7 / 7d ')).toEqual({ count: 7, periodMs: 7 * 86_400_000 });
    expect(parseRateLimit({ count: 2, periodMs: 10 })).toEqual({ count: 2, periodMs: 10 });
  });

  it.each([
    ['0/s', /the count is 0/],
    ['-1/s', /a negative count/],
    ['1.5/s', /the count is not a whole number/],
    ['10/y', /an unknown unit/],
    ['10/sec', /an unknown unit/],
    ['10/0s', /the period is 0/],
    ['2000000/s', /the count is over 1,000,000/],
    ['1/8d', /the period is over 7 days/],
    ['10', /not <count>\/<period>/],
    ['', /not <count>\/<period>/],
    ['ten/s', /not <count>\/<period>/],
  ])('refuses %j with VALIDATION naming what is allowed', (spec, why) => {
    let error: unknown;
    try {
      parseRateLimit(spec);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'VALIDATION' });
    expect((error as Error).message).toMatch(why);
    expect((error as Error).message).toContain('allowed is a count, a slash and a period');
    expect((error as Error).message).toContain('10/s, 100/m, 1000/h, 5/2s');
  });

  it('refuses bad objects and non-strings with VALIDATION', () => {
    for (const bad of [{ count: 0, periodMs: 1000 }, { count: 1, periodMs: 1.5 }, { count: 1e7, periodMs: 1000 }, null, 10, { count: '1', periodMs: 1000 }]) {
      expect(() => parseRateLimit(bad as never)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
    }
  });
});

/** The memory store with its rate-limit calls counted; `turns: false` hides its takeTurn (a store of your own without it). */
function counted(clock: ManualClock, turns = true): { store: EventStore; calls: () => number } {
  const store = new MemoryStore({ clock: clock.now });
  let calls = 0;
  const take = store.takeToken.bind(store);
  store.takeToken = (key, limit) => {
    calls++;
    return take(key, limit);
  };
  const turn = store.takeTurn.bind(store);
  if (turns) {
    store.takeTurn = (key, limit) => {
      calls++;
      return turn(key, limit);
    };
  } else {
    Object.defineProperty(store, 'takeTurn', { value: undefined });
  }
  return { store, calls: () => calls };
}

/**
 * A simulated backlog: `n` nodes due at once, `workers` workers (a RateLimiter each) on one store; every
 * 10 ms each worker takes the due nodes (round robin) and asks for each. Returns the start times and
 * the hand-backs.
 */
async function backlog(store: EventStore, clock: ManualClock, workers: number, n: number, code: RateLimit | undefined): Promise<{ starts: number[]; deferred: number }> {
  const limiters = Array.from({ length: workers }, () => new RateLimiter(store, { clock: clock.now }));
  const due = new Map<number, number>([[clock.t, n]]);
  const starts: number[] = [];
  let deferred = 0;
  let k = 0;
  while (starts.length < n) {
    const dueNow = due.get(clock.t) ?? 0;
    due.delete(clock.t);
    for (let i = 0; i < dueNow; i++) {
      const wait = await limiters[k++ % workers]!.wait('t', code);
      if (wait === 0) starts.push(clock.t);
      else {
        deferred++;
        const at = clock.t + Math.ceil(wait / 10) * 10; // due at the workers' first tick at or after its turn
        due.set(at, (due.get(at) ?? 0) + 1);
      }
    }
    clock.t += 10;
  }
  return { starts, deferred };
}

describe('RateLimiter', () => {
  it('a task with a limit takes a permit per call; refused nodes are given the store\'s turns, count a turn', async () => {
    const clock = new ManualClock();
    const { store, calls } = counted(clock);
    const limiter = new RateLimiter(store, { clock: clock.now });
    const limit = parseRateLimit('2/5s');
    expect(await limiter.wait('send', limit)).toBe(0);
    expect(await limiter.wait('send', limit)).toBe(0);
    expect(await limiter.wait('send', limit)).toBe(5000); // the first turn: when the next permit may be free
    clock.t += 400;
    expect(await limiter.wait('send', limit)).toBe(4600); // the first turn's second place
    expect(await limiter.wait('send', limit)).toBe(9850); // the first turn is full (2 a turn): the next, a period and a twentieth later
    expect(calls()).toBe(5); // every refused node books its own place
    clock.t += 4600;
    expect(await limiter.wait('send', limit)).toBe(0); // the first turn: both permits are free
    expect(await limiter.wait('send', limit)).toBe(0);
    expect(await limiter.wait('send', limit)).toBe(5250); // refused for 5 s, and the second turn has room for one more
  });

  it('refused at once, nodes take the turns in order; a store without turns sends them all back at the next permit, asked once', async () => {
    const clock = new ManualClock();
    const { store } = counted(clock);
    const limiter = new RateLimiter(store, { clock: clock.now });
    const limit = parseRateLimit('10/s');
    const waits = await Promise.all(Array.from({ length: 50 }, () => limiter.wait('t', limit)));
    expect(waits.filter((w) => w === 0)).toHaveLength(10);
    // 40 refused: four turns of 10, a period and a twentieth (50 ms) apart.
    const turns = new Map<number, number>();
    for (const w of waits) if (w > 0) turns.set(w, (turns.get(w) ?? 0) + 1);
    expect([...turns].sort((a, b) => a[0] - b[0])).toEqual([[1000, 10], [2050, 10], [3100, 10], [4150, 10]]);
    // Without takeTurn: a refusal is remembered (one store call for the crowd), and every node comes back at the next permit.
    const plain = counted(new ManualClock(), false);
    const old = new RateLimiter(plain.store, { clock: () => 0 });
    for (let i = 0; i < 10; i++) expect(await old.wait('t', limit)).toBe(0);
    expect(await old.wait('t', limit)).toBe(1000);
    const oldWaits = await Promise.all(Array.from({ length: 29 }, () => old.wait('t', limit)));
    expect(new Set(oldWaits)).toEqual(new Set([1000]));
    expect(plain.calls()).toBe(11);
  });

  it('a backlog comes back about once a node, however many workers share it: count a turn, one turn a period (simulated workers)', async () => {
    // The last case runs under a run-time override (50/s) of its limit in code (10/s): the override's count makes the turns.
    for (const [spec, n, workers, override] of [['50/s', 500, 1], ['50/s', 1000, 10], ['3/2s', 40, 3], ['1000/m', 4000, 4], ['10/s', 500, 3, '50/s']] as const) {
      const clock = new ManualClock();
      const { store } = counted(clock);
      if (override) await store.setRateLimit('t', parseRateLimit(override));
      const limit = parseRateLimit(override ?? spec);
      const { starts, deferred } = await backlog(store, clock, workers, n, parseRateLimit(spec));
      // The limit holds in every window, and nearly every node is handed back at most once.
      for (let i = limit.count; i < starts.length; i++) expect(starts[i]! - starts[i - limit.count]!).toBeGreaterThanOrEqual(limit.periodMs);
      expect(deferred, `${spec} × ${n} on ${workers} workers`).toBeLessThanOrEqual(n - limit.count + Math.ceil(n / limit.count));
      // And about as fast as the limit allows: turns a period and a twentieth apart, plus a tick each.
      expect(starts.at(-1)! - starts[0]!).toBeLessThanOrEqual((Math.ceil(n / limit.count) - 1) * (limit.periodMs * 1.05 + 20));
    }
  });

  it('a backlog past the horizon: nodes beyond a minute of turns ask again a minute later, and the limit holds', async () => {
    const clock = new ManualClock();
    const { store } = counted(clock);
    const limit = parseRateLimit('20/s');
    const n = 3000; // 150 s of permits: turns reach 60 s, the rest come back to be booked later
    const { starts, deferred } = await backlog(store, clock, 3, n, limit);
    for (let i = limit.count; i < starts.length; i++) expect(starts[i]! - starts[i - limit.count]!).toBeGreaterThanOrEqual(limit.periodMs);
    expect(deferred).toBeGreaterThan(n); // some come back more than once...
    expect(deferred).toBeLessThan(3 * n); // ...but a few times at most, not once a period
    expect(starts.at(-1)! - starts[0]!).toBeLessThanOrEqual(Math.ceil(n / limit.count) * (limit.periodMs * 1.05 + 20));
  });

  it('a task without a limit costs no store call, but checks for an override once a second', async () => {
    const clock = new ManualClock();
    const { store, calls } = counted(clock);
    const limiter = new RateLimiter(store, { clock: clock.now });
    expect(await limiter.wait('free', undefined)).toBe(0);
    expect(calls()).toBe(1);
    for (let i = 0; i < 100; i++) expect(await limiter.wait('free', undefined)).toBe(0);
    expect(calls()).toBe(1);
    // Concurrent first calls of another task share one check.
    expect(await Promise.all(Array.from({ length: 10 }, () => limiter.wait('other', undefined)))).toEqual(Array(10).fill(0));
    expect(calls()).toBe(2);
    // An override set at run time (by any process) applies within a second...
    await store.setRateLimit('free', { count: 2, periodMs: 60_000 });
    expect(await limiter.wait('free', undefined)).toBe(0);
    expect(calls()).toBe(2);
    clock.t += 1000;
    expect(await limiter.wait('free', undefined)).toBe(0); // the check: takes the override's first permit
    expect(await limiter.wait('free', undefined)).toBe(0); // from now on every call takes a permit
    expect(await limiter.wait('free', undefined)).toBe(60_000);
    expect(calls()).toBe(5);
    // ...and once cleared, calls are free again: the next call learns it, the ones after cost nothing.
    await store.setRateLimit('free', null);
    clock.t += 1000;
    expect(await limiter.wait('free', undefined)).toBe(0);
    expect(calls()).toBe(6);
    for (let i = 0; i < 10; i++) expect(await limiter.wait('free', undefined)).toBe(0);
    expect(calls()).toBe(6);
  });

  it('under an override, concurrent calls of a task without a limit each take their own permit', async () => {
    const clock = new ManualClock();
    const { store } = counted(clock);
    await store.setRateLimit('t', { count: 3, periodMs: 1000 });
    const limiter = new RateLimiter(store, { clock: clock.now });
    const waits = await Promise.all(Array.from({ length: 8 }, () => limiter.wait('t', undefined)));
    expect(waits.filter((w) => w === 0)).toHaveLength(3);
    expect(waits.filter((w) => w > 0).sort((a, b) => a - b)).toEqual([1000, 1000, 1000, 2050, 2050]);
  });

  it('the override wins over the limit in code; without turns a refusal is remembered until forget()', async () => {
    const clock = new ManualClock();
    const limit = parseRateLimit('1/m');
    for (const turns of [true, false]) {
      const { store, calls } = counted(clock, turns);
      const limiter = new RateLimiter(store, { clock: clock.now });
      expect(await limiter.wait('t', limit)).toBe(0);
      expect(await limiter.wait('t', limit)).toBe(60_000);
      await store.setRateLimit('t', parseRateLimit('100/s'));
      if (!turns) {
        expect(await limiter.wait('t', limit)).toBe(60_000); // remembered for up to a second
        limiter.forget();
      }
      expect(await limiter.wait('t', limit)).toBe(0);
      expect(calls()).toBe(3);
    }
  });
});

describe('worker and a store that does not answer the rate-limit check', () => {
  it('hands the node back unstarted (NodeDeferred), survives, and runs it once the store answers', async () => {
    const store = new MemoryStore();
    let failures = 1;
    const take = store.takeTurn.bind(store);
    store.takeTurn = async (key, limit) => {
      if (failures-- > 0) throw new Error('connection lost');
      return take(key, limit);
    };
    const errors: unknown[] = [];
    const app = createApp({ store });
    const ran: number[] = [];
    const limited = app.task('limited', (n: number) => (ran.push(n), n), { rateLimit: '100/s' });
    app.worker({ concurrency: 1, onError: (e) => errors.push(e) });
    try {
      const run = await limited.delay(7);
      expect(await run.get({ timeoutMs: 10_000 })).toBe(7);
      const events = (await app.runs.history(run.id)).map((s) => s.event);
      const deferred = events.filter((e) => e.type === 'NodeDeferred');
      expect(deferred).toMatchObject([{ attempt: 1, reason: expect.stringContaining('did not answer') }]);
      expect(events.filter((e) => e.type === 'NodeStarted').map((e) => (e as { attempt: number }).attempt)).toEqual([1, 1]); // the handed-back attempt does not count
      expect(ran).toEqual([7]);
      expect(errors.map((e) => (e as Error).message)).toEqual(['connection lost']);
    } finally {
      await app.close();
    }
  });
});

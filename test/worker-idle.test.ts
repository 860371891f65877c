// An idle worker's polls: quick ones (1, 2, 4... ms) after a busy spell only where other processes'
// appends would not wake it; on a store that wakes every process (Postgres, Redis, memory) it waits for
// a wake-up or its pollMs poll. Counts claims, not time: the window only bounds how many could happen.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../src/eventstore/memory.ts';
import { SqliteStore } from '../src/eventstore/sqlite.ts';
import { MAX_TIMER_MS, Signal, type EventStore } from '../src/eventstore/store.ts';
import { parseWorkerArgs } from '../src/cli/worker-command.ts';
import { createApp } from '../src/index.ts';
import { everyStore } from './support/every-store.ts';

/** Counts the store's claim calls (plain and with an append). */
function counting(store: EventStore): { store: EventStore; claims: () => number } {
  let n = 0;
  const claim = store.claim.bind(store);
  const appendAndClaim = store.appendAndClaim.bind(store);
  store.claim = (r) => (n++, claim(r));
  store.appendAndClaim = (a, r) => (n++, appendAndClaim(a, r));
  return { store, claims: () => n };
}

async function claimsWhileIdle(store: EventStore): Promise<number> {
  const { claims } = counting(store);
  const app = createApp({ store });
  const ping = app.task('ping', () => 1);
  app.worker({ pollMs: 10_000 });
  try {
    expect(await (await ping.delay()).get({ timeoutMs: 5000 })).toBe(1);
    await sleep(20); // the completion is recorded and the worker idles
    const before = claims();
    await sleep(300);
    return claims() - before;
  } finally {
    await app.close();
  }
}

describe('idle worker polls', () => {
  it('a store whose appends wake every process gets no quick polls: the next claim waits for a wake-up or pollMs', async () => {
    expect(new MemoryStore().wakesEveryProcess).toBe(true);
    expect(await claimsWhileIdle(new MemoryStore())).toBe(0);
  });


  it('SQLite (other processes cannot wake this one) is polled again within 1, 2, 4... ms after a busy spell', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lovage-idle-'));
    try {
      const store = await SqliteStore.open({ path: join(dir, 'idle.db') });
      expect((store as EventStore).wakesEveryProcess).toBeUndefined();
      // 1+2+4+...+128 ms: several quick polls fit in 300 ms, none would with pollMs alone.
      expect(await claimsWhileIdle(store)).toBeGreaterThanOrEqual(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Signal.emitWhenDue', () => {
  it('emits once per due time, earliest first; a later due time is kept while an earlier one is armed', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    try {
      const signal = new Signal();
      let emits = 0;
      signal.on(() => emits++);
      const at = Date.now(); // the store's clock agrees with the local one here
      const ready = (nodeId: string, availableAt?: number) => ({ type: 'NodeReady' as const, at, nodeId, task: 't', args: [], queue: 'default', priority: 0, ...(availableAt !== undefined ? { availableAt } : {}) });
      signal.emitWhenDue([{ runId: 'r', expectedVersion: 1, events: [ready('a', at + 200), ready('b', at + 50), ready('c', at + 50), ready('d')] }]);
      signal.emitWhenDue([{ runId: 's', expectedVersion: 1, events: [{ type: 'NodeRetryScheduled', at, nodeId: 'x', attempt: 1, error: { name: 'E', message: 'm' }, retryAt: at + 120 }] }]);
      vi.advanceTimersByTime(49);
      expect(emits).toBe(0);
      vi.advanceTimersByTime(3);
      expect(emits).toBe(1); // b and c share a due time
      vi.advanceTimersByTime(70);
      expect(emits).toBe(2); // the retry
      vi.advanceTimersByTime(80);
      expect(emits).toBe(3); // a
      vi.advanceTimersByTime(10_000);
      expect(emits).toBe(3);
      signal.emitWhenDue([{ runId: 'r', expectedVersion: 5, events: [ready('e', Date.now() + 10)] }]);
      signal.close();
      vi.advanceTimersByTime(100);
      expect(emits).toBe(3); // closed: no timer left
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('due times beyond the longest timer (2^31-1 ms, ~24.8 days; a countdown may be 366 days)', () => {
  it('Signal: a due time 30 days away emits once, when due, not every millisecond', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    try {
      const signal = new Signal();
      let emits = 0;
      signal.on(() => emits++);
      const at = Date.now();
      const day = 86_400_000;
      signal.emitWhenDue([{ runId: 'r', expectedVersion: 1, events: [{ type: 'NodeReady', at, nodeId: 'a', task: 't', args: [], queue: 'default', priority: 0, availableAt: at + 30 * day }] }]);
      vi.advanceTimersByTime(1000);
      expect(emits).toBe(0);
      vi.advanceTimersByTime(30 * day - 1000 - 10);
      expect(emits).toBe(0); // re-armed past the cap, nothing emitted
      vi.advanceTimersByTime(20);
      expect(emits).toBe(1);
      vi.advanceTimersByTime(60 * day);
      expect(emits).toBe(1);
      signal.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('an idle worker does not spin while a node waits for a 30-day countdown', async () => {
    const { store, claims } = counting(new MemoryStore());
    const app = createApp({ store });
    const echo = app.task('echo', (x: unknown) => x);
    app.worker({ pollMs: 100 });
    try {
      await echo.applyAsync([1], { countdown: '30d' });
      await sleep(20);
      const before = claims();
      await sleep(300);
      expect(claims() - before).toBeLessThanOrEqual(5); // the 100 ms poll; ~240 when the due timer fired every 1 ms
    } finally {
      await app.close();
    }
  });
});

describe('worker timer options past the longest timer', () => {
  // Node fires a timer longer than 2^31-1 ms after 1 ms: a worker with such a leaseMs would heartbeat,
  // and with such a pollMs poll, every millisecond. Refused, naming the option and the range.
  it('app.worker refuses leaseMs, pollMs, shutdownGraceMs above 2^31-1 ms', async () => {
    const app = createApp({ store: new MemoryStore() });
    try {
      for (const k of ['leaseMs', 'pollMs', 'shutdownGraceMs'] as const) {
        expect(() => app.worker({ [k]: 10_000_000_000 }), k).toThrow(new RegExp(`worker ${k} must be an integer from [01] to 2147483647 ms .*got 10000000000`));
        expect(() => app.worker({ [k]: MAX_TIMER_MS + 1 }), k).toThrow(/VALIDATION|must be an integer/);
      }
      expect(() => app.worker({ shutdownGraceMs: -1 })).toThrow(/worker shutdownGraceMs must be an integer from 0 to 2147483647 ms/);
      expect(() => app.worker({ shutdownGraceMs: Number.NaN })).toThrow(/worker shutdownGraceMs must be an integer/);
    } finally {
      await app.close();
    }
  });

  it('lovage worker refuses --lease-ms, --poll-ms, --grace-ms above 2^31-1', () => {
    for (const flag of ['--lease-ms', '--poll-ms', '--grace-ms']) {
      expect(() => parseWorkerArgs(['--app', 'x.ts', flag, '10000000000'])).toThrow(new RegExp(`${flag} must be an integer from [01] to 2147483647, got "10000000000"`));
      expect(parseWorkerArgs(['--app', 'x.ts', flag, String(MAX_TIMER_MS)])).toMatchObject({ help: false });
    }
  });

  it('the longest leaseMs and pollMs are taken as they are: no heartbeat nor poll every millisecond', async () => {
    const store = new MemoryStore();
    let extends_ = 0;
    const extend = store.extend.bind(store);
    store.extend = (...a: Parameters<typeof extend>) => (extends_++, extend(...a));
    const { claims } = counting(store);
    const app = createApp({ store });
    const slow = app.task('slow', () => sleep(300));
    app.worker({ leaseMs: MAX_TIMER_MS, pollMs: MAX_TIMER_MS, concurrency: 1 });
    try {
      await (await slow.delay()).get({ timeoutMs: 5000 });
      const before = claims();
      await sleep(300);
      expect({ extends: extends_, idleClaims: claims() - before }).toEqual({ extends: 0, idleClaims: 0 });
    } finally {
      await app.close();
    }
  });
});

const all = await everyStore('idle');
afterAll(() => all.cleanup());

for (const [name, url] of all.stores) {
  describe(`wake-ups reach an idle worker (${name})`, () => {
    it('a wake-up that comes while a claim is on its way is not lost: the empty claim is followed by another, not by the pollMs wait', async () => {
      const app = createApp({ store: url() });
      const ping = app.task('ping', (i: number) => i);
      // The worker's first claim leaves at start, before the submit below, and comes back empty; the
      // submit's wake-up arrives while it is on its way. With pollMs 10 s, only that wake-up can run the task.
      app.worker({ pollMs: 10_000 });
      try {
        for (let i = 0; i < 5; i++) expect(await (await ping.delay(i)).get({ timeoutMs: 5000 })).toBe(i);
      } finally {
        await app.close();
      }
    });

    it('a retry backoff and a countdown run when due, not at the next poll (pollMs 10 s)', async () => {
      const app = createApp({ store: url() });
      let calls = 0;
      const flaky = app.task('flaky', () => {
        if (++calls === 1) throw new Error('once');
        return calls;
      }, { retry: { max: 1, delay: 50, jitter: false } });
      app.worker({ pollMs: 10_000 });
      try {
        // The retry's backoff (50 ms) and the countdown (100 ms) fall due long before a 10 s poll: only
        // the store's due wake-up can start them within the 5 s the runs are given.
        expect(await (await flaky.delay()).get({ timeoutMs: 5000 })).toBe(2);
        expect(await (await flaky.applyAsync([], { countdown: 100 })).get({ timeoutMs: 5000 })).toBe(3);
      } finally {
        await app.close();
      }
    });
  });
}

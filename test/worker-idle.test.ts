// An idle worker's polls: quick ones (1, 2, 4... ms) after a busy spell only where other processes'
// appends would not wake it; on a store that wakes every process (Postgres, Redis, memory) it waits for
// a wake-up or its pollMs poll. Counts claims, not time: the window only bounds how many could happen.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/eventstore/memory.ts';
import { SqliteStore } from '../src/eventstore/sqlite.ts';
import type { EventStore } from '../src/eventstore/store.ts';
import { createApp } from '../src/index.ts';

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

  it('a wake-up that comes while a claim is on its way is not lost: the empty claim is followed by another, not by the pollMs wait', async () => {
    const store = new MemoryStore();
    const app = createApp({ store });
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

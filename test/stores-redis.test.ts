// The Redis store: the shared conformance suite and the end-to-end semantics on a real server, plus
// what only Redis has: the eviction-policy refusal, pub/sub wake-ups across instances, TIME leases.
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { compile } from '../src/canvas/compile.ts';
import type { CanvasData } from '../src/canvas/types.ts';
import { decide } from '../src/engine/decide.ts';
import type { WorkflowEvent } from '../src/engine/events.ts';
import { RedisStore } from '../src/eventstore/redis.ts';
import { scripts } from '../src/eventstore/redis/scripts.ts';
import { REDIS_LAYOUT } from '../src/eventstore/redis/server.ts';
import { openStore } from '../src/eventstore/url.ts';
import { createApp } from '../src/app/app.ts';
import { chord, group } from '../src/canvas/combinators.ts';
import { foldStored, initialState } from '../src/engine/state.ts';
import type { AppendRequest, ClaimedNode, ClaimRequest, EventStore } from '../src/eventstore/store.ts';
import { Coordinator } from '../src/workers/coordinator.ts';
import { deletePrefixes, keysUnder, redisServerBinary, startPrivateRedis, testPrefix } from './support/redis-server.ts';
import { semantics } from './support/semantics.ts';
import { redisUrl } from './support/services.ts';
import { storeConformance } from './support/store-conformance.ts';

const url = await redisUrl();
const used = new Set<string>();
const fresh = (): string => {
  const prefix = testPrefix();
  used.add(prefix);
  return prefix;
};
const open = (options: { prefix?: string; clock?: () => number } = {}) => RedisStore.open({ url: url!, prefix: options.prefix ?? fresh(), ...(options.clock ? { clock: options.clock } : {}) });

const sig = (task: string, args: number[] = []): CanvasData => ({ kind: 'signature', task, args, immutable: false, options: {} });
const submitted = (canvas: CanvasData, at = Date.now()): WorkflowEvent[] => decide(initialState('x'), { type: 'Submit', at, dag: compile(canvas) });
const claimReq = (worker = 'w', leaseMs = 60_000) => ({ queues: ['default'], limit: 10, worker, leaseMs });

if (!url) {
  describe('redis store', () => {
    it.skip('needs a Redis server (see test/support/services.ts)', () => {});
  });
} else {
  afterEach(async () => {
    await deletePrefixes(url, used);
    used.clear();
  });

  storeConformance('redis', (clock) => open({ clock: clock.now }), { claimsBringHistory: true });

  describe('redis store: canvas semantics end to end', () => {
    const prefix = testPrefix();
    afterAll(() => deletePrefixes(url, [prefix]));
    semantics(() => RedisStore.open({ url, prefix }), 30);
  });

  describe('redis store', () => {
    const stores: RedisStore[] = [];
    const track = async (p: Promise<RedisStore>) => {
      const s = await p;
      stores.push(s);
      return s;
    };
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    });

    it('refuses a server whose maxmemory-policy is not noeviction, naming the setting and the allowed value', async () => {
      if (!redisServerBinary) return void console.warn('redis-server is not installed: skipping the private-server test');
      const lru = await startPrivateRedis(['--maxmemory-policy', 'allkeys-lru']);
      const noConfig = await startPrivateRedis(['--rename-command', 'CONFIG', '']);
      try {
        const refused = await RedisStore.open({ url: lru.url }).catch((e: unknown) => e);
        expect(refused).toMatchObject({ code: 'UNSUPPORTED' });
        expect((refused as Error).message).toMatch(/maxmemory-policy is "allkeys-lru"; Lovage needs "noeviction"/);
        const blind = await RedisStore.open({ url: noConfig.url }).catch((e: unknown) => e);
        expect(blind).toMatchObject({ code: 'UNSUPPORTED' });
        expect((blind as Error).message).toMatch(/cannot read the Redis setting maxmemory-policy.*skipEvictionCheck: true/);
        // An explicit skip opens it (the caller vouches for the policy).
        const store = await track(RedisStore.open({ url: noConfig.url, skipEvictionCheck: true }));
        await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t')) }]);
        expect(await store.getRun('r1')).toMatchObject({ status: 'running', version: 2 });
      } finally {
        await Promise.all([lru.stop(), noConfig.stop()]);
      }
    });

    it('records its key layout on first open and refuses a prefix written in a newer or unknown one, writing nothing', async () => {
      const prefix = fresh();
      const admin = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
        const store = await track(open({ prefix }));
        expect(await admin.get(`${prefix}layout`)).toBe(String(REDIS_LAYOUT));
        await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t')) }]);
        await track(open({ prefix })); // a second open of the same layout is fine
        await admin.set(`${prefix}layout`, String(REDIS_LAYOUT + 1));
        const newer = await open({ prefix }).catch((e: unknown) => e);
        expect(newer).toMatchObject({ code: 'UNSUPPORTED', details: { key: `${prefix}layout`, found: String(REDIS_LAYOUT + 1), known: REDIS_LAYOUT } });
        expect((newer as Error).message).toContain(`holds data in layout ${REDIS_LAYOUT + 1} (key ${prefix}layout), newer than this Lovage knows (${REDIS_LAYOUT}); upgrade Lovage`);
        await admin.set(`${prefix}layout`, 'queue');
        await expect(open({ prefix })).rejects.toThrow(`Redis key ${prefix}layout holds "queue", not a layout this Lovage knows (${REDIS_LAYOUT})`);
        expect(await admin.get(`${prefix}layout`)).toBe('queue'); // left as found
        expect(await store.getRun('r1')).toMatchObject({ version: 2 });
      } finally {
        admin.disconnect();
      }
    });

    it('opens on a read-only replica without writing the layout there, and reads what the primary wrote', async () => {
      if (!redisServerBinary) return void console.warn('redis-server is not installed: skipping the private-server test');
      const primary = await startPrivateRedis(['--repl-diskless-sync-delay', '0']);
      const replica = await startPrivateRedis(['--replicaof', '127.0.0.1', new URL(primary.url).port]);
      try {
        const writer = await track(RedisStore.open({ url: primary.url, prefix: 'p:' }));
        await writer.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t')) }]);
        const direct = new Redis(replica.url, { maxRetriesPerRequest: 1 });
        try {
          for (let i = 0; (await direct.get('p:layout')) === null; i++) {
            if (i > 750) throw new Error('the replica did not catch up in 15 s');
            await new Promise((r) => setTimeout(r, 20));
          }
          // A prefix the primary never opened: no layout to read, none written (the replica refuses writes).
          const fresh = await track(RedisStore.open({ url: replica.url, prefix: 'q:' }));
          expect(await fresh.getRun('r1')).toBeUndefined();
          expect(await direct.get('q:layout')).toBeNull();
        } finally {
          direct.disconnect();
        }
        const reader = await track(RedisStore.open({ url: replica.url, prefix: 'p:' }));
        expect(await reader.getRun('r1')).toMatchObject({ status: 'running', version: 2 });
      } finally {
        await Promise.all([primary.stop(), replica.stop()]);
      }
    });

    it('wakes listeners of another store instance through pub/sub, and its own listeners once', async () => {
      const prefix = fresh();
      const a = await track(open({ prefix }));
      const b = await track(open({ prefix }));
      const other = await track(open());
      let own = 0;
      let foreign = 0;
      a.onReady(() => own++);
      const woken = new Promise<void>((resolve) => b.onReady(resolve));
      other.onReady(() => foreign++);
      await Promise.all([a.subscribed(), b.subscribed(), other.subscribed()]);
      const t0 = performance.now();
      await a.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t')) }]);
      await woken;
      const ms = performance.now() - t0;
      expect(ms).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 50));
      expect(own).toBe(1); // the local wake-up; its own PUBLISH is recognised and not counted twice
      expect(foreign).toBe(0); // another prefix, another channel
      expect((await b.claim(claimReq())).map((c) => c.runId)).toEqual(['r1']);
    });

    it('a batch with one conflicting run writes nothing: no events, positions, run records or queue rows', async () => {
      const store = await track(open());
      await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t')) }]);
      const before = await store.readAll();
      const batch = [
        { runId: 'r2', expectedVersion: 0, events: submitted(sig('t')) },
        { runId: 'r3', expectedVersion: 0, events: submitted({ kind: 'group', members: [sig('t'), sig('u')] }) },
        { runId: 'r1', expectedVersion: 1, events: [{ type: 'NodesSkipped', at: 0, nodeIds: [], reason: 'x' } as const] },
      ];
      await expect(store.append(batch)).rejects.toMatchObject({ code: 'CONCURRENCY', details: { runId: 'r1' }, message: 'run r1 is not at version 1: it is at version 2' });
      // A duplicate NodeReady late in a batch refuses the batch too.
      const dup = submitted(sig('t'));
      await expect(store.append([{ runId: 'r2', expectedVersion: 0, events: submitted(sig('t')) }, { runId: 'r1', expectedVersion: 2, events: [dup[1]!] }])).rejects.toMatchObject({ code: 'CONCURRENCY', message: 'node 0 of run r1 is already in the ready queue' });
      for (const id of ['r2', 'r3']) {
        expect(await store.getRun(id)).toBeUndefined();
        expect(await store.readStream(id)).toEqual([]);
      }
      expect(await store.readAll()).toEqual(before);
      expect(await store.listRuns()).toHaveLength(1);
      expect((await store.claim(claimReq())).map((c) => c.runId)).toEqual(['r1']);
      // Refusals used no positions: the next append continues right after.
      const [next] = await store.append([{ runId: 'r4', expectedVersion: 0, events: submitted(sig('t')) }]);
      expect(next![0]!.position).toBe(before.length + 2); // r1's NodeStarted took one
    });

    it('leases run on Redis TIME: a lease expires by the server clock, and claims stamp server time', async () => {
      const store = await track(open());
      const admin = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
        await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t')) }]);
        const [s, us] = await admin.time();
        const serverNow = Number(s) * 1000 + Math.floor(Number(us) / 1000);
        expect(Math.abs((await store.now()) - serverNow)).toBeLessThan(50);
        const [a] = await store.claim(claimReq('A', 150));
        expect(Math.abs(a!.events[0]!.event.at - serverNow)).toBeLessThan(1000);
        expect(a!.leaseExpiresAt - a!.events[0]!.event.at).toBe(150);
        expect(await store.claim(claimReq('B', 150))).toEqual([]);
        await new Promise((r) => setTimeout(r, 200));
        const [b] = await store.claim(claimReq('B', 150));
        expect(b).toMatchObject({ nodeId: '0', attempt: 2 });
        expect(b!.events.map((e) => e.event)).toMatchObject([{ type: 'NodeLeaseExpired', worker: 'A', attempt: 1 }, { type: 'NodeStarted', worker: 'B', attempt: 2 }]);
        expect(await store.extend([a!], 1000)).toEqual([false]);
        expect(await store.extend([b!], 1000)).toEqual([true]);
      } finally {
        admin.disconnect();
      }
    });

    it('events written by the claim script are exactly what decideStart makes (JSON escaping included)', async () => {
      const clock = { t: 1_700_000_000_000 };
      const store = await track(open({ clock: () => clock.t }));
      await store.append([{ runId: 'r"1', expectedVersion: 0, events: submitted(sig('t', [1]), clock.t) }]);
      const worker = 'host:1:wé"\\/\u0001';
      const [a] = await store.claim(claimReq(worker, 1000));
      clock.t += 5000;
      const [b] = await store.claim(claimReq('B', 1000));
      const stored = await store.readStream('r"1');
      expect(stored.slice(2)).toEqual([...a!.events, ...b!.events]);
      expect(JSON.stringify(stored[2]!.event)).toBe(JSON.stringify({ type: 'NodeStarted', at: 1_700_000_000_000, nodeId: '0', attempt: 1, worker, leaseToken: a!.leaseToken, leaseExpiresAt: 1_700_000_001_000 }));
      expect((await store.readAll()).slice(2)).toEqual(stored.slice(2));
    });

    it('listRuns keeps scanning past the per-call budget; deleteRuns leaves no keys behind', async () => {
      const prefix = fresh();
      const store = await track(open({ prefix }));
      const n = 2500;
      const requests = Array.from({ length: n }, (_, i) => ({ runId: `run${String(i).padStart(4, '0')}`, expectedVersion: 0, events: submitted(sig(i === 3 ? 'rare' : 't', [i]), 1_000_000 + i) }));
      await store.append(requests);
      expect((await store.listRuns({ task: 'rare' })).map((r) => r.runId)).toEqual(['run0003']);
      expect((await store.listRuns({ text: '"args":[7]' })).map((r) => r.runId)).toEqual(['run0007']);
      expect(await store.listRuns({ limit: 1000 })).toHaveLength(1000);
      expect(await store.deleteRuns(requests.map((r) => r.runId))).toBe(n);
      expect(await keysUnder(url, prefix)).toEqual([`${prefix}base`, `${prefix}layout`, `${prefix}pos`]); // the log's dead head was trimmed too
    });

    it('a claim over several queues merges them: expired leases first, then priority, then age', async () => {
      const clock = { t: 1_700_000_000_000 };
      const store = await track(open({ clock: () => clock.t }));
      const on = (task: string, queue: string, priority = 0): CanvasData => ({ kind: 'signature', task, args: [], immutable: false, options: { queue, priority } });
      await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted({ kind: 'group', members: [on('a1', 'a'), on('b1', 'b'), on('b9', 'b', 9)] }, clock.t) }]);
      await store.append([{ runId: 'r2', expectedVersion: 0, events: submitted({ kind: 'group', members: [on('a2', 'a'), on('c1', 'c', 99)] }, clock.t) }]);
      const [lapsed] = await store.claim({ queues: ['a'], limit: 1, worker: 'A', leaseMs: 100 });
      expect(lapsed!.task).toBe('a1');
      clock.t += 1000;
      const tasks = (await store.claim({ queues: ['b', 'a'], limit: 10, worker: 'B', leaseMs: 100 })).map((c) => c.task);
      expect(tasks).toEqual(['a1', 'b9', 'b1', 'a2']); // c is not asked for
    });

    it('deleting, quarantining or cancelling a run leaves none of its delayed entries (countdown, retry, deferral) behind', async () => {
      const clock = { t: 1_700_000_000_000 };
      const prefix = fresh();
      const store = await track(open({ prefix, clock: () => clock.t }));
      const coordinator = new Coordinator(store);
      const admin = new Redis(url, { maxRetriesPerRequest: 1 });
      const delayed = async () => (await admin.zrange(`${prefix}d:default`, '0', '-1')).map((m) => m.split('\u0000')[1]!).sort();
      try {
        const runs = ['del', 'quar', 'canc', 'keep'];
        const claim = { queues: ['default'], limit: 10, worker: 'w', leaseMs: 60_000 };
        for (const runId of runs) {
          // Three delayed nodes a run: a countdown (NodeReady.availableAt), a scheduled retry, a deferral.
          const later: CanvasData = { kind: 'signature', task: 'later', args: [], immutable: false, options: { countdown: 5000 } };
          await coordinator.submit(runId, compile({ kind: 'group', members: [later, sig('retry'), sig('defer')] }), clock.t);
          const claimed = await store.claim(claim);
          expect(claimed.map((c) => c.task).sort()).toEqual(['defer', 'retry']);
          coordinator.observe(claimed);
          const [r, d] = [claimed.find((c) => c.task === 'retry')!, claimed.find((c) => c.task === 'defer')!];
          await coordinator.record([
            { type: 'Complete', runId, nodeId: r.nodeId, attempt: 1, leaseToken: r.leaseToken, outcome: { ok: false, error: { name: 'Error', message: 'boom' }, retryAt: clock.t + 2000 }, at: clock.t },
            { type: 'Defer', runId, nodeId: d.nodeId, leaseToken: d.leaseToken, until: clock.t + 3000, reason: 'rate limit', at: clock.t },
          ]);
        }
        expect(await delayed()).toEqual(runs.flatMap((id) => [id, id, id]).sort());
        expect(await admin.exists(`${prefix}q:default`, `${prefix}l:default`)).toBe(0);

        expect(await store.deleteRuns(['del'])).toBe(1);
        await store.quarantine('quar', 'test');
        await coordinator.apply('canc', { type: 'Cancel', at: clock.t, reason: 'test' });
        expect(await delayed()).toEqual(['keep', 'keep', 'keep']);
        expect((await admin.hkeys(`${prefix}rows`)).map((k) => k.split('\u0000')[0]).sort()).toEqual(['keep', 'keep', 'keep']);

        // Once due, only the kept run's nodes come back (the deferred one at its same attempt).
        clock.t += 10_000;
        const back = await store.claim(claim);
        expect(back.map((c) => [c.runId, c.task, c.attempt]).sort()).toEqual([['keep', 'defer', 1], ['keep', 'later', 1], ['keep', 'retry', 2]]);
        expect(await admin.exists(`${prefix}d:default`, `${prefix}q:default`)).toBe(0);
        await coordinator.apply('keep', { type: 'Cancel', at: clock.t, reason: 'test' });
        const left = (await keysUnder(url, prefix)).filter((k) => /^(d|q|l):|^rows$/.test(k.slice(prefix.length)));
        expect(left).toEqual([]);
      } finally {
        admin.disconnect();
      }
    });

    it('readAll skips deleted runs (also under a reused run id) and pages past long dead stretches', async () => {
      const store = await track(open());
      const at = 1_000;
      await store.append([{ runId: 'a', expectedVersion: 0, events: submitted(sig('t'), at) }]); // positions 1, 2
      await store.append(Array.from({ length: 6000 }, (_, i) => ({ runId: `dead${i}`, expectedVersion: 0, events: submitted(sig('t'), at) }))); // 3..12002
      await store.append([{ runId: 'b', expectedVersion: 0, events: submitted(sig('t'), at) }]); // 12003, 12004
      expect(await store.deleteRuns(Array.from({ length: 6000 }, (_, i) => `dead${i}`))).toBe(6000);
      // 12,000 dead entries between a and b: more than one script call scans (10,000 a call).
      expect((await store.readAll(0, 3)).map((e) => e.position)).toEqual([1, 2, 12003]);
      expect(await store.deleteRuns(['a'])).toBe(1); // the head is dead now: trimmed
      await store.append([{ runId: 'a', expectedVersion: 0, events: submitted(sig('t'), at) }]); // the id again: 12005, 12006
      const all = await store.readAll();
      expect(all.map((e) => [e.runId, e.version, e.position])).toEqual([['b', 1, 12003], ['b', 2, 12004], ['a', 1, 12005], ['a', 2, 12006]]);
      expect((await store.readAll(12003, 2)).map((e) => e.position)).toEqual([12004, 12005]);
      expect((await store.readAll(0, 1)).map((e) => e.position)).toEqual([12003]);
    });

    it('an append that makes nodes claimable wakes local listeners as it leaves, and a claim sent then sees it', async () => {
      const store = await track(open());
      await store.claim(claimReq());
      await store.claim(claimReq()); // both connections up: claims alternate between them
      let claimed: Promise<ClaimedNode[]> | undefined;
      store.onReady(() => { claimed ??= store.claim(claimReq()); });
      const appended = store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t')) }]);
      expect(claimed).toBeDefined(); // woken before the append came back
      expect((await claimed!).map((c) => c.runId)).toEqual(['r1']); // it ran behind the append
      await appended;
      // A delayed node wakes nobody at once.
      let woken = 0;
      store.onReady(() => woken++);
      await store.append([{ runId: 'r2', expectedVersion: 0, events: submitted({ kind: 'signature', task: 't', args: [], immutable: false, options: { countdown: 60 } }) }]);
      expect(woken).toBe(0);
    });

    it('a listener that throws is reported, wakes the others, fails no append, and leaves claims alternating between the connections', async () => {
      const client = new Redis(url!, { lazyConnect: true, maxRetriesPerRequest: 3 });
      await client.connect();
      // Which connection each claim goes on: the store's own client or its duplicate.
      const seen: string[] = [];
      const spy = (c: Redis, name: string): Redis => {
        const call = c.call.bind(c) as (...a: unknown[]) => Promise<unknown>;
        (c as unknown as { call: unknown }).call = (cmd: string, args: unknown[]) => {
          if (cmd === 'evalsha' && Array.isArray(args) && args[0] === scripts.claim.sha) seen.push(name);
          return call(cmd, args);
        };
        const duplicate = c.duplicate.bind(c);
        (c as unknown as { duplicate: unknown }).duplicate = (o: unknown) => spy(duplicate(o as never), 'second');
        return c;
      };
      spy(client, 'main');
      const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
      try {
        const store = await track(RedisStore.open({ client, prefix: fresh() }));
        for (let i = 0; i < 2; i++) await store.claim(claimReq());
        let others = 0;
        store.onReady(() => { throw new Error('listener bug'); });
        store.onReady(() => others++);
        const [stored] = await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t')) }]);
        expect(stored).toHaveLength(2); // it landed and says so
        expect(others).toBeGreaterThan(0);
        expect(errors).toHaveBeenCalledWith(expect.stringContaining('lovage: an onReady listener threw: Error: listener bug'));
        seen.length = 0;
        for (let i = 0; i < 4; i++) await store.claim(claimReq());
        expect(seen).toEqual(['main', 'second', 'main', 'second']);
      } finally {
        errors.mockRestore();
        client.disconnect();
      }
    });

    it('readStream of a run deleted, or deleted and submitted again, between two pages gives one run\'s whole log (or none), never a part or a splice', async () => {
      const store = await track(open());
      const big = (task: string) => submitted({ kind: 'group', members: Array.from({ length: 24_999 }, (_, i) => sig(task, [i])) });
      await store.append([{ runId: 'big', expectedVersion: 0, events: big('old') }]);
      // Page 1 goes now; the delete runs before page 2 (which is sent once page 1 is back).
      const read = store.readStream('big');
      await store.deleteRuns(['big']);
      expect([0, 25_000]).toContain((await read).length);
      await store.append([{ runId: 'big', expectedVersion: 0, events: big('old') }]);
      const again = store.readStream('big');
      await store.deleteRuns(['big']);
      await store.append([{ runId: 'big', expectedVersion: 0, events: big('new') }]);
      const log = await again;
      expect(log).toHaveLength(25_000);
      const tasks = new Set(log.filter((e) => e.event.type === 'NodeReady').map((e) => (e.event as { task: string }).task));
      expect(tasks.size).toBe(1); // all 'old' (read before the delete) or all 'new' (read again after it)
      expect(log.map((e) => e.version)).toEqual(Array.from({ length: 25_000 }, (_, i) => i + 1));
    });

    it('readStream reads a long run page by page (10,000 events a call), from any version, and names a missing event in a later page', async () => {
      const prefix = fresh();
      const store = await track(open({ prefix }));
      const events = submitted({ kind: 'group', members: Array.from({ length: 24_999 }, (_, i) => sig('t', [i])) }); // 25,000 events
      await store.append([{ runId: 'big', expectedVersion: 0, events }]);
      const all = await store.readStream('big');
      expect(all.map((e) => e.version)).toEqual(Array.from({ length: 25_000 }, (_, i) => i + 1));
      expect(all.map((e) => e.event)).toEqual(events);
      expect(all.map((e) => e.position)).toEqual(Array.from({ length: 25_000 }, (_, i) => i + 1));
      for (const from of [9_999, 10_000, 10_001, 20_001, 25_000]) {
        expect((await store.readStream('big', from)).map((e) => e.version)).toEqual(Array.from({ length: 25_001 - from }, (_, i) => from + i));
      }
      expect(await store.readStream('big', 25_001)).toEqual([]);
      // A run exactly a page long, and one a page and one event long.
      await store.append([{ runId: 'page', expectedVersion: 0, events: events.slice(0, 10_000) }]);
      expect(await store.readStream('page')).toHaveLength(10_000);
      await store.append([{ runId: 'page', expectedVersion: 10_000, events: [{ type: 'NodesSkipped', at: 1, nodeIds: [], reason: 'x' }] }]);
      expect(await store.readStream('page')).toHaveLength(10_001);
      const redis = new Redis(url);
      try {
        await redis.hdel(`${prefix}ev`, 'big\u000017777');
      } finally {
        redis.disconnect();
      }
      await expect(store.readStream('big')).rejects.toMatchObject({ code: 'CORRUPT_LOG', details: { runId: 'big', version: 17_777 } });
    });

    it('a worker burns down a chord of 3,000 whose records commute with its claims: each member once, the body once, a log that folds', async () => {
      const store = await track(open());
      let commuted = 0;
      const counting = new Proxy(store, {
        get(target, key) {
          if (key === 'appendAndClaim') return (r: AppendRequest[], c: ClaimRequest) => { commuted += r.filter((x) => x.after !== undefined).length; return target.appendAndClaim(r, c); };
          if (key === 'append') return (r: AppendRequest[]) => { commuted += r.filter((x) => x.after !== undefined).length; return target.append(r); };
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }) as EventStore;
      const producer = createApp({ store }); // another process submits: the worker reads the run before its first record
      const double = producer.task('double', (i: number) => i * 2);
      const sum = producer.task('sum', (xs: number[]) => xs.reduce((a, b) => a + b, 0));
      const app = createApp({ store: counting });
      app.task('double', (i: number) => i * 2);
      app.task('sum', (xs: number[]) => xs.reduce((a, b) => a + b, 0));
      const run = await chord(group(Array.from({ length: 3_000 }, (_, i) => double.s(i))), sum.s()).applyAsync();
      app.worker({ concurrency: 100, batchSize: 100 });
      try {
        expect(await run.get({ timeoutMs: 60_000 })).toBe(2 * ((2_999 * 3_000) / 2));
        expect(commuted).toBeGreaterThan(10);
        const log = await store.readStream(run.id);
        expect(foldStored(initialState(run.id), log).status).toBe('succeeded');
        const ends = new Map<string, number>();
        for (const e of log) if (e.event.type === 'NodeSucceeded') ends.set(e.event.nodeId, (ends.get(e.event.nodeId) ?? 0) + 1);
        expect(ends.size).toBe(3_001);
        expect([...ends.values()].every((n) => n === 1)).toBe(true);
      } finally {
        await app.close(); // closes the store too
        await producer.close();
      }
    });

    it('opens from a store URL with ?prefix=, and refuses a bad prefix, parameter or ioredis keyPrefix', async () => {
      const prefix = fresh();
      const store = (await openStore(`${url}?prefix=${prefix}`)) as RedisStore;
      stores.push(store);
      expect(store.prefix).toBe(prefix);
      await expect(openStore(`${url}?prefix=bad*`)).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('key prefix "bad*" is invalid') });
      await expect(openStore(`${url}?db=1`)).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('unknown parameter "db"') });
      const prefixed = new Redis(url, { keyPrefix: 'app:', lazyConnect: true });
      await expect(RedisStore.open({ client: prefixed })).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('keyPrefix "app:"') });
      prefixed.disconnect();
    });
  });
}

// The one suite every store passes. Call `storeConformance(name, open)` once per store.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compile } from '../../src/canvas/compile.ts';
import type { CanvasData } from '../../src/canvas/types.ts';
import { decide } from '../../src/engine/decide.ts';
import type { WorkflowEvent } from '../../src/engine/events.ts';
import { fold, initialState } from '../../src/engine/state.ts';
import { LovageError } from '../../src/errors.ts';
import { NOT_LIMITED } from '../../src/eventstore/rate/window.ts';
import type { AppendRequest, EventStore } from '../../src/eventstore/store.ts';
import { Coordinator } from '../../src/workers/coordinator.ts';

/** A clock the test moves by hand. */
export class ManualClock {
  t = 1_700_000_000_000;
  readonly now = (): number => this.t;
}

const sig = (task: string, args: number[] = [], options: { queue?: string; priority?: number } = {}): CanvasData => ({ kind: 'signature', task, args, immutable: false, options });
const submitted = (canvas: CanvasData, at: number): WorkflowEvent[] => decide(initialState('x'), { type: 'Submit', at, dag: compile(canvas) });

/** What a store does beyond what every store must: `claimsBringHistory`, claims return small runs' logs (ClaimedNode.history). */
export interface StoreTraits {
  readonly claimsBringHistory?: boolean;
}

/** The store, with its `readStream` calls counted: the runs read, and the most calls on their way at once. */
function countingReads(store: EventStore): { counting: EventStore; reads: string[]; mostInFlight: () => number } {
  const reads: string[] = [];
  let inFlight = 0;
  let most = 0;
  const counting = new Proxy(store, {
    get(target, key) {
      if (key === 'readStream') {
        return async (runId: string, from?: number) => {
          reads.push(runId);
          most = Math.max(most, ++inFlight);
          try {
            return await target.readStream(runId, from);
          } finally {
            inFlight--;
          }
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { counting, reads, mostInFlight: () => most };
}

export function storeConformance(name: string, open: (clock: ManualClock) => Promise<EventStore>, traits: StoreTraits = {}): void {
  describe(`${name} store conformance`, () => {
    let store: EventStore;
    let clock: ManualClock;
    beforeEach(async () => {
      clock = new ManualClock();
      store = await open(clock);
    });
    afterEach(() => store.close());

    it('appends and reads a stream in version order, from a version', async () => {
      const events = submitted(sig('t', [1]), clock.t);
      const [stored] = await store.append([{ runId: 'r1', expectedVersion: 0, events }]);
      expect(stored!.map((s) => s.version)).toEqual([1, 2]);
      expect((await store.readStream('r1')).map((s) => s.event)).toEqual(events);
      expect((await store.readStream('r1', 2)).map((s) => s.version)).toEqual([2]);
      expect(await store.readStream('missing')).toEqual([]);
      expect(await store.getRun('r1')).toMatchObject({ runId: 'r1', status: 'running', version: 2 });
    });

    it('keeps any text exactly (multi-byte, astral, long) and takes a batch of thousands of nodes', async () => {
      const texts = ['é', 'a'.repeat(31), 'é'.repeat(70), `${'a'.repeat(40)}日本`, '😀 déjà vu', 'x'.repeat(300) + 'ü', 'ß😀'.repeat(40_000)];
      const members: CanvasData[] = texts.map((text) => ({ kind: 'signature', task: 'echo', args: [text], immutable: false, options: {} }));
      for (let i = 0; members.length < 8000; i++) members.push(sig('t', [i]));
      const events = submitted({ kind: 'group', members }, clock.t);
      await store.append([{ runId: 'r😀', expectedVersion: 0, events }]);
      expect((await store.readStream('r😀')).map((s) => s.event)).toEqual(events);
      const claimed = await store.claim({ queues: ['default'], limit: texts.length, worker: 'w', leaseMs: 1000 });
      expect(claimed.map((c) => [c.runId, c.args[0]])).toEqual(texts.map((text) => ['r😀', text]));
    });

    it('refuses an append at a stale expected version, writing nothing', async () => {
      await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      const more: WorkflowEvent[] = [{ type: 'NodesSkipped', at: clock.t, nodeIds: [], reason: 'test' }];
      for (const expectedVersion of [0, 1, 3]) {
        await expect(store.append([{ runId: 'r1', expectedVersion, events: more }])).rejects.toMatchObject({ code: 'CONCURRENCY' });
      }
      expect(await store.readStream('r1')).toHaveLength(2);
      await store.append([{ runId: 'r1', expectedVersion: 2, events: more }]);
      expect(await store.readStream('r1')).toHaveLength(3);
    });

    it('a batch lands whole or not at all, with its projection', async () => {
      await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      const error = await store
        .append([
          { runId: 'r2', expectedVersion: 0, events: submitted(sig('t'), clock.t) },
          { runId: 'r1', expectedVersion: 0, events: submitted(sig('t'), clock.t) },
        ])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LovageError);
      expect(await store.readStream('r2')).toEqual([]);
      expect(await store.getRun('r2')).toBeUndefined();
      expect(await store.claim({ queues: ['default'], limit: 10, worker: 'w', leaseMs: 1000 })).toHaveLength(1);
    });

    it('refuses a second NodeReady for the same node (the ready queue is unique per node)', async () => {
      const events = submitted(sig('t'), clock.t);
      await store.append([{ runId: 'r1', expectedVersion: 0, events }]);
      await expect(store.append([{ runId: 'r1', expectedVersion: 2, events: [events[1]!] }])).rejects.toBeInstanceOf(Error);
      expect(await store.readStream('r1')).toHaveLength(2);
    });

    it('applies a batch\'s events in order: a NodeReady for a node an earlier event of the batch took out of the ready queue is taken', async () => {
      // A resumed run's log, as an import appends it: node 0 ready, failed (its row dropped), then ready again.
      const at = clock.t;
      const error = { name: 'Error', message: 'boom' };
      const before: WorkflowEvent[] = [
        ...submitted(sig('t', [1]), at),
        { type: 'NodeStarted', at, nodeId: '0', attempt: 1, worker: 'w', leaseToken: 'tok', leaseExpiresAt: at + 1000 },
        { type: 'NodeFailed', at, nodeId: '0', attempt: 1, error },
        { type: 'WorkflowFailed', at, nodeId: '0', task: 't', error },
      ];
      const resumed = decide(fold(initialState('r'), before), { type: 'Resume', at });
      expect(resumed.map((e) => e.type)).toEqual(['WorkflowResumed', 'NodeReady']);
      // In one request, and split over two requests of one batch.
      await store.append([{ runId: 'one', expectedVersion: 0, events: [...before, ...resumed] }]);
      await store.append([{ runId: 'two', expectedVersion: 0, events: before }, { runId: 'two', expectedVersion: before.length, events: resumed }]);
      const claimed = await store.claim({ queues: ['default'], limit: 10, worker: 'w2', leaseMs: 1000 });
      expect(claimed.map((c) => [c.runId, c.nodeId, c.attempt]).sort()).toEqual([['one', '0', 1], ['two', '0', 1]]);
      // Without a drop in between, a second NodeReady of the batch is still refused, writing nothing.
      const twice = [...submitted(sig('t'), at), submitted(sig('t'), at)[1]!];
      await expect(store.append([{ runId: 'three', expectedVersion: 0, events: twice }])).rejects.toBeInstanceOf(Error);
      expect(await store.getRun('three')).toBeUndefined();
    });

    it('keeps copies: changing what was appended, read or claimed changes neither the log nor the ready queue', async () => {
      const value = { xs: [1, 2] };
      const events = submitted({ kind: 'signature', task: 't', args: [value], immutable: false, options: {} }, clock.t);
      const before = JSON.parse(JSON.stringify(events)) as WorkflowEvent[];
      await store.append([{ runId: 'r1', expectedVersion: 0, events }]);
      value.xs.push(3);
      const read = await store.readStream('r1');
      expect(read.map((s) => s.event)).toEqual(before);
      (read[1]!.event as unknown as { args: { xs: number[] }[] }).args[0]!.xs.push(4);
      ((await store.readAll())[1]!.event as unknown as { args: { xs: number[] }[] }).args[0]!.xs.push(5);
      const [claimed] = await store.claim({ queues: ['default'], limit: 1, worker: 'w', leaseMs: 1000 });
      expect(claimed!.args).toEqual([{ xs: [1, 2] }]);
      (claimed!.args[0] as { xs: number[] }).xs.push(6);
      expect((await store.readStream('r1', 1)).slice(0, 2).map((s) => s.event)).toEqual(before);
      clock.t += 2000; // the lease runs out: the next claim hands the row's arguments out again
      const [again] = await store.claim({ queues: ['default'], limit: 1, worker: 'w2', leaseMs: 1000 });
      expect(again!.args).toEqual([{ xs: [1, 2] }]);
    });

    it('commuting appends land at the current version past claims, only right after the append they name and while their leases hold', async () => {
      const claim1 = { queues: ['default'], limit: 1, worker: 'W', leaseMs: 1000 };
      const done = (nodeId: string, result: number): WorkflowEvent => ({ type: 'NodeSucceeded', at: clock.t, nodeId, attempt: 1, result });
      const events = submitted({ kind: 'group', members: [sig('t', [0]), sig('t', [1]), sig('t', [2])] }, clock.t);
      if (store.commutes !== true) {
        // A store that cannot commute says so, and writes nothing.
        await expect(store.append([{ runId: 'r1', expectedVersion: 0, events, after: 'w-1' }])).rejects.toMatchObject({ code: 'UNSUPPORTED' });
        expect(await store.getRun('r1')).toBeUndefined();
        await store.append([{ runId: 'r1', expectedVersion: 0, events, id: 'w-1' }]); // an id alone is ignored
        expect(await store.readStream('r1')).toHaveLength(4);
        return;
      }
      await store.append([{ runId: 'r1', expectedVersion: 0, events, id: 'w-1' }]);
      const [a] = await store.claim(claim1); // version 5
      const [stored] = await store.append([{ runId: 'r1', expectedVersion: 4, events: [done(a!.nodeId, 0)], id: 'w-2', after: 'w-1', leases: [[a!.nodeId, a!.leaseToken]] }]);
      expect(stored!.map((e) => e.version)).toEqual([6]);
      const [b] = await store.claim(claim1); // version 7
      const refused = async (r: Partial<AppendRequest>, details: Record<string, unknown>, claim = false): Promise<void> => {
        const request = { runId: 'r1', expectedVersion: 4, events: [done(b!.nodeId, 1)], id: 'w-3', ...r };
        const call = claim ? store.appendAndClaim([request], claim1) : store.append([request]);
        await expect(call).rejects.toMatchObject({ code: 'CONCURRENCY', details: { runId: 'r1', ...details } });
        expect(await store.getRun('r1')).toMatchObject({ version: 7 });
      };
      await refused({ after: 'w-1', leases: [[b!.nodeId, b!.leaseToken]] }, { reason: 'after', last: 'w-2' }); // not the last one any more
      await refused({ after: 'w-2', leases: [[b!.nodeId, 'not-the-token']] }, { reason: 'lease', nodeId: b!.nodeId });
      await refused({ after: 'w-2', leases: [[a!.nodeId, a!.leaseToken]] }, { reason: 'lease', nodeId: a!.nodeId }, true); // a has ended; nothing claimed
      await refused({ after: 'w-2', leases: [], expectedVersion: 8 }, { runId: 'r1' }); // behind its least version
      // In appendAndClaim: it lands, then the claim takes the last node after it.
      const [c] = await store.appendAndClaim([{ runId: 'r1', expectedVersion: 4, events: [done(b!.nodeId, 1)], after: 'w-2', leases: [[b!.nodeId, b!.leaseToken]] }], claim1);
      expect(c!.events.map((e) => e.version)).toEqual([9]);
      // That append named no id: nothing may follow it by commuting, even naming what came before it.
      await expect(store.append([{ runId: 'r1', expectedVersion: 9, events: [done(c!.nodeId, 2)], after: 'w-2', leases: [] }])).rejects.toMatchObject({ details: { reason: 'after', last: '' } });
      await store.append([{ runId: 'r1', expectedVersion: 9, events: [], id: 'w-4' }]); // an empty append changes nothing
      await store.append([{ runId: 'r1', expectedVersion: 9, events: [{ type: 'NodesSkipped', at: clock.t, nodeIds: [], reason: 'x' }], id: 'w-5' }]);
      // The run's end, landed by commuting: its finished version is where it landed.
      const [end] = await store.append([{ runId: 'r1', expectedVersion: 1, events: [done(c!.nodeId, 2), { type: 'WorkflowSucceeded', at: clock.t, result: [0, 1, 2] }], id: 'w-6', after: 'w-5', leases: [[c!.nodeId, c!.leaseToken]] }]);
      expect(end!.map((e) => e.version)).toEqual([11, 12]);
      expect(await store.getRun('r1')).toMatchObject({ status: 'succeeded', version: 12, finishedVersion: 12 });
      // The run's end clears its name, even one the ending append gives: nothing commutes after it.
      const fenced: WorkflowEvent = { type: 'NodeCompletionFenced', at: clock.t, nodeId: c!.nodeId, attempt: 1, leaseToken: 'old', outcome: 'succeeded', reason: 'node is succeeded' };
      await expect(store.append([{ runId: 'r1', expectedVersion: 12, events: [fenced], after: 'w-6', leases: [] }])).rejects.toMatchObject({ details: { reason: 'after', last: '' } });
      expect((await store.readStream('r1')).map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      // A batch's later append without a name clears the one an earlier request of the same run gave.
      await store.append([
        { runId: 'r2', expectedVersion: 0, events, id: 'x-1' },
        { runId: 'r2', expectedVersion: events.length, events: [{ type: 'NodesSkipped', at: clock.t, nodeIds: [], reason: 'x' }] },
      ]);
      await expect(store.append([{ runId: 'r2', expectedVersion: 5, events: [{ type: 'NodesSkipped', at: clock.t, nodeIds: [], reason: 'y' }], after: 'x-1', leases: [] }])).rejects.toMatchObject({ details: { reason: 'after', last: '' } });
      // Bad ids and leases are refused by name, before anything is written.
      for (const bad of [{ id: '' }, { id: 'a b' }, { id: 'x'.repeat(65) }, { after: '' }, { after: 'w-5', leases: [['n']] }, { leases: [] }] as Partial<AppendRequest>[]) {
        await expect(store.append([{ runId: 'r1', expectedVersion: 12, events: [{ type: 'NodesSkipped', at: clock.t, nodeIds: [], reason: 'x' }], ...bad }])).rejects.toMatchObject({ code: 'VALIDATION' });
      }
      expect(await store.getRun('r1')).toMatchObject({ version: 12 });
    });

    it('reads all runs in one global order, continuing from a position', async () => {
      await store.append([{ runId: 'a', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      await store.append([{ runId: 'b', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      await store.append([{ runId: 'a', expectedVersion: 2, events: [{ type: 'NodesSkipped', at: clock.t, nodeIds: [], reason: 'x' }] }]);
      const all = await store.readAll();
      expect(all.map((s) => `${s.runId}${s.version}`)).toEqual(['a1', 'a2', 'b1', 'b2', 'a3']);
      const positions = all.map((s) => s.position);
      expect([...positions].sort((x, y) => x - y)).toEqual(positions);
      expect(new Set(positions).size).toBe(positions.length);
      expect((await store.readAll(all[1]!.position, 2)).map((s) => `${s.runId}${s.version}`)).toEqual(['b1', 'b2']);
    });

    it('claims by priority then age, only from the asked queues, appending NodeStarted', async () => {
      const canvas: CanvasData = { kind: 'group', members: [sig('low', [], { priority: 0 }), sig('high', [], { priority: 5 }), sig('other', [], { queue: 'mail' }), sig('low2', [], { priority: 0 })] };
      await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(canvas, clock.t) }]);
      const first = await store.claim({ queues: ['default'], limit: 2, worker: 'w1', leaseMs: 1000 });
      expect(first.map((c) => c.task)).toEqual(['high', 'low']);
      expect(first[0]!.events.map((s) => s.event.type)).toEqual(['NodeStarted']);
      expect(first[0]).toMatchObject({ attempt: 1, leaseExpiresAt: clock.t + 1000 });
      const second = await store.claim({ queues: ['default'], limit: 5, worker: 'w1', leaseMs: 1000 });
      expect(second.map((c) => c.task)).toEqual(['low2']);
      expect(await store.claim({ queues: ['default'], limit: 5, worker: 'w1', leaseMs: 1000 })).toEqual([]);
      expect((await store.claim({ queues: ['mail'], limit: 5, worker: 'w1', leaseMs: 1000 })).map((c) => c.task)).toEqual(['other']);
    });

    it('extends held leases; an expired lease goes to another worker with NodeLeaseExpired and attempt 2', async () => {
      await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      const [a] = await store.claim({ queues: ['default'], limit: 1, worker: 'A', leaseMs: 1000 });
      clock.t += 900;
      expect(await store.extend([a!], 1000)).toEqual([true]);
      clock.t += 900; // within the extended lease
      expect(await store.claim({ queues: ['default'], limit: 1, worker: 'B', leaseMs: 1000 })).toEqual([]);
      clock.t += 200; // past it
      const [b] = await store.claim({ queues: ['default'], limit: 1, worker: 'B', leaseMs: 1000 });
      expect(b).toMatchObject({ attempt: 2, nodeId: '0' });
      expect(b!.events.map((s) => s.event)).toMatchObject([{ type: 'NodeLeaseExpired', worker: 'A', attempt: 1 }, { type: 'NodeStarted', worker: 'B', attempt: 2 }]);
      expect(await store.extend([a!], 1000)).toEqual([false]);
    });

    it('fences a stale completion: recorded as NodeCompletionFenced, never as a second outcome', async () => {
      const coordinator = new Coordinator(store);
      await coordinator.submit('r1', compile(sig('t', [1])), clock.t);
      const [a] = await store.claim({ queues: ['default'], limit: 1, worker: 'A', leaseMs: 1000 });
      clock.t += 2000;
      const [b] = await store.claim({ queues: ['default'], limit: 1, worker: 'B', leaseMs: 1000 });
      coordinator.observe([a!, b!]);
      await coordinator.record([{ type: 'Complete', runId: 'r1', nodeId: '0', attempt: b!.attempt, leaseToken: b!.leaseToken, outcome: { ok: true, value: 'B' }, at: clock.t }]);
      await coordinator.record([{ type: 'Complete', runId: 'r1', nodeId: '0', attempt: a!.attempt, leaseToken: a!.leaseToken, outcome: { ok: true, value: 'A' }, at: clock.t }]);
      const types = (await store.readStream('r1')).map((s) => s.event.type);
      expect(types.filter((t) => t === 'NodeSucceeded')).toHaveLength(1);
      expect(types.slice(-1)).toEqual(['NodeCompletionFenced']);
      expect(await store.getRun('r1')).toMatchObject({ status: 'succeeded', finishedVersion: types.indexOf('WorkflowSucceeded') + 1 });
    });

    it('a claim\'s history, where it brings one, is the run\'s whole log before the claim; a coordinator then needs no read', async () => {
      const small: CanvasData = { kind: 'group', members: [sig('t', [1]), sig('t', [2])] };
      const big: CanvasData = { kind: 'group', members: Array.from({ length: 70 }, (_, i) => sig('t', [i])) }; // 71 events: more than a claim brings
      await store.append([
        { runId: 'r1', expectedVersion: 0, events: submitted(small, clock.t) },
        { runId: 'r2', expectedVersion: 0, events: submitted(sig('t', [3]), clock.t) },
        { runId: 'r3', expectedVersion: 0, events: submitted(big, clock.t) },
      ]);
      const before = new Map(await Promise.all(['r1', 'r2', 'r3'].map(async (id) => [id, await store.readStream(id)] as const)));
      const claimed = await store.claim({ queues: ['default'], limit: 100, worker: 'W', leaseMs: 1000 });
      expect(claimed).toHaveLength(73);
      const withHistory = claimed.filter((c) => c.history !== undefined);
      for (const c of withHistory) {
        expect(c.history).toEqual(before.get(c.runId));
        expect(claimed.find((x) => x.runId === c.runId)).toBe(c); // the run's first node
      }
      if (traits.claimsBringHistory) expect(withHistory.map((c) => c.runId).sort()).toEqual(['r1', 'r2']);
      // A coordinator that did not submit the runs records their outcomes, reading only the runs the claim
      // did not bring, all at once (not one round trip after another).
      const { counting, reads, mostInFlight } = countingReads(store);
      const coordinator = new Coordinator(counting);
      coordinator.observe(claimed);
      await coordinator.record(claimed.map((c) => ({ type: 'Complete' as const, runId: c.runId, nodeId: c.nodeId, attempt: c.attempt, leaseToken: c.leaseToken, outcome: { ok: true as const, value: 1 }, at: clock.t })));
      expect(reads.sort()).toEqual(traits.claimsBringHistory ? ['r3'] : ['r1', 'r2', 'r3']);
      expect(mostInFlight()).toBe(reads.length);
      for (const id of ['r1', 'r2', 'r3']) expect(await store.getRun(id)).toMatchObject({ status: 'succeeded' });
    });

    it('a stale cached run is caught up from the history its claim brings, without a read', async () => {
      const { counting, reads } = countingReads(store);
      const mine = new Coordinator(counting);
      await mine.submit('r1', compile({ kind: 'group', members: [sig('t', [1]), sig('t', [2])] }), clock.t);
      // Another process claims and completes the first member: this coordinator's cached r1 is stale.
      const [first] = await store.claim({ queues: ['default'], limit: 1, worker: 'other', leaseMs: 1000 });
      const other = new Coordinator(store);
      await other.record([{ type: 'Complete', runId: 'r1', nodeId: first!.nodeId, attempt: 1, leaseToken: first!.leaseToken, outcome: { ok: true, value: 1 }, at: clock.t }]);
      const [second] = await counting.claim({ queues: ['default'], limit: 1, worker: 'mine', leaseMs: 1000 });
      mine.observe([second!]);
      await mine.record([{ type: 'Complete', runId: 'r1', nodeId: second!.nodeId, attempt: 1, leaseToken: second!.leaseToken, outcome: { ok: true, value: 2 }, at: clock.t }]);
      expect(await store.getRun('r1')).toMatchObject({ status: 'succeeded' });
      expect((await store.readStream('r1')).filter((e) => e.event.type === 'WorkflowSucceeded').map((e) => e.event)).toEqual([{ type: 'WorkflowSucceeded', at: clock.t, result: [1, 2] }]);
      expect(reads).toEqual(traits.claimsBringHistory ? [] : ['r1']);
    });

    it('a record whose reads push a cached run of the same batch out of a full cache still decides it', async () => {
      const coordinator = new Coordinator(store, { cacheNodes: 1 });
      await coordinator.submit('cached', compile(sig('t', [1])), clock.t);
      await store.append([{ runId: 'read', expectedVersion: 0, events: submitted(sig('t', [2]), clock.t) }]);
      const claimed = await store.claim({ queues: ['default'], limit: 10, worker: 'W', leaseMs: 1000 });
      const byRun = new Map(claimed.map((c) => [c.runId, c]));
      const done = (runId: string) => {
        const c = byRun.get(runId)!;
        return { type: 'Complete' as const, runId, nodeId: c.nodeId, attempt: c.attempt, leaseToken: c.leaseToken, outcome: { ok: true as const, value: 1 }, at: clock.t };
      };
      await coordinator.record([done('read'), done('cached')]); // reading "read" (a turn first) pushes "cached" out
      for (const id of ['cached', 'read']) expect(await store.getRun(id)).toMatchObject({ status: 'succeeded' });
    });

    it('a coordinator with a stale cache catches up on conflict and decides again', async () => {
      const one = new Coordinator(store);
      const two = new Coordinator(store);
      await one.submit('r1', compile({ kind: 'group', members: [sig('t', [1]), sig('t', [2])] }), clock.t);
      const claimed = await store.claim({ queues: ['default'], limit: 2, worker: 'W', leaseMs: 1000 });
      await one.load('r1');
      await two.load('r1');
      const done = (c: (typeof claimed)[number], value: number) => ({ type: 'Complete' as const, runId: 'r1', nodeId: c.nodeId, attempt: c.attempt, leaseToken: c.leaseToken, outcome: { ok: true as const, value }, at: clock.t });
      await one.record([done(claimed[0]!, 1)]);
      await two.record([done(claimed[1]!, 2)]); // two's cache is stale: conflict, reload, decide again
      const events = (await store.readStream('r1')).map((s) => s.event);
      expect(events.filter((e) => e.type === 'WorkflowSucceeded')).toEqual([{ type: 'WorkflowSucceeded', at: clock.t, result: [1, 2] }]);
    });

    it('a released node is claimable again at once', async () => {
      const coordinator = new Coordinator(store);
      await coordinator.submit('r1', compile(sig('t')), clock.t);
      const [a] = await store.claim({ queues: ['default'], limit: 1, worker: 'A', leaseMs: 60_000 });
      await coordinator.record([{ type: 'Release', runId: 'r1', nodeId: '0', leaseToken: a!.leaseToken, reason: 'shutdown', at: clock.t }]);
      const [b] = await store.claim({ queues: ['default'], limit: 1, worker: 'B', leaseMs: 60_000 });
      expect(b).toMatchObject({ attempt: 2, nodeId: '0' });
      expect(b!.events.map((s) => s.event.type)).toEqual(['NodeStarted']);
    });

    it('a node with a countdown is claimed only when the store clock reaches it; its options travel with the claim', async () => {
      const canvas: CanvasData = { kind: 'group', members: [
        { kind: 'signature', task: 'later', args: [], immutable: false, options: { countdown: 5000, retry: { max: 2, delay: 10, jitter: false }, softTimeLimit: 100 } },
        sig('now'),
      ] };
      const events = decide(initialState('x'), { type: 'Submit', at: clock.t, dag: compile(canvas as never) });
      expect(events[1]).toMatchObject({ type: 'NodeReady', availableAt: clock.t + 5000, options: { softTimeLimitMs: 100, retry: { max: 2 } } });
      await store.append([{ runId: 'r1', expectedVersion: 0, events }]);
      const claim = { queues: ['default'], limit: 10, worker: 'w', leaseMs: 60_000 };
      expect((await store.claim(claim)).map((c) => c.task)).toEqual(['now']);
      clock.t += 4999;
      expect(await store.claim(claim)).toEqual([]);
      clock.t += 1;
      const [later] = await store.claim(claim);
      expect(later).toMatchObject({ task: 'later', attempt: 1, options: { softTimeLimitMs: 100, retry: { max: 2, delayMs: 10 } } });
    });

    it('a scheduled retry clears the lease; the node comes back at retryAt with the next attempt', async () => {
      const coordinator = new Coordinator(store);
      await coordinator.submit('r1', compile(sig('t')), clock.t);
      const claim = { queues: ['default'], limit: 10, worker: 'w', leaseMs: 60_000 };
      const [a] = await store.claim(claim);
      coordinator.observe([a!]);
      const error = { name: 'Error', message: 'boom' };
      await coordinator.record([{ type: 'Complete', runId: 'r1', nodeId: '0', attempt: 1, leaseToken: a!.leaseToken, outcome: { ok: false, error, retryAt: clock.t + 2000 }, at: clock.t }]);
      expect((await store.readStream('r1')).at(-1)!.event).toEqual({ type: 'NodeRetryScheduled', at: clock.t, nodeId: '0', attempt: 1, error, retryAt: clock.t + 2000 });
      expect(await store.extend([a!], 1000)).toEqual([false]);
      clock.t += 1999;
      expect(await store.claim(claim)).toEqual([]);
      clock.t += 1;
      const [b] = await store.claim(claim);
      expect(b).toMatchObject({ nodeId: '0', attempt: 2 });
      expect(b!.events.map((e) => e.event.type)).toEqual(['NodeStarted']);
      coordinator.observe([b!]);
      await coordinator.record([{ type: 'Complete', runId: 'r1', nodeId: '0', attempt: 2, leaseToken: b!.leaseToken, outcome: { ok: true, value: 7 }, at: clock.t }]);
      expect(await store.getRun('r1')).toMatchObject({ status: 'succeeded' });
    });

    it('a deferred node is handed back unstarted: claimable at `until`, with the same attempt number', async () => {
      const coordinator = new Coordinator(store);
      await coordinator.submit('r1', compile(sig('t')), clock.t);
      const claim = { queues: ['default'], limit: 10, worker: 'w', leaseMs: 60_000 };
      const [a] = await store.claim(claim);
      coordinator.observe([a!]);
      await coordinator.record([{ type: 'Defer', runId: 'r1', nodeId: '0', leaseToken: a!.leaseToken, until: clock.t + 300, reason: 'rate limit 1/s', at: clock.t }]);
      expect(await store.claim(claim)).toEqual([]);
      clock.t += 300;
      const [b] = await store.claim(claim);
      expect(b).toMatchObject({ nodeId: '0', attempt: 1 });
      expect((await coordinator.load('r1')).nodes.get('0')).toMatchObject({ status: 'running', attempt: 1 });
    });

    it('quarantine takes a run out of the ready queue and keeps the reason', async () => {
      await store.append([{ runId: 'bad', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      await store.append([{ runId: 'good', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      await store.quarantine('bad', 'event 3 is unreadable');
      expect(await store.getRun('bad')).toMatchObject({ status: 'quarantined', quarantineReason: 'event 3 is unreadable', version: 2 });
      expect((await store.claim({ queues: ['default'], limit: 10, worker: 'w', leaseMs: 1000 })).map((c) => c.runId)).toEqual(['good']);
    });

    it('appendAndClaim records outcomes and claims the next nodes in one transaction, all or nothing', async () => {
      const coordinator = new Coordinator(store);
      await coordinator.submit('r1', compile({ kind: 'chain', steps: [sig('a'), sig('b')] }), clock.t);
      const [a] = await store.claim({ queues: ['default'], limit: 1, worker: 'W', leaseMs: 1000 });
      coordinator.observe([a!]);
      const { claimed } = await coordinator.record(
        [{ type: 'Complete', runId: 'r1', nodeId: '0', attempt: 1, leaseToken: a!.leaseToken, outcome: { ok: true, value: 1 }, at: clock.t }],
        { queues: ['default'], limit: 5, worker: 'W', leaseMs: 1000 },
      );
      expect(claimed.map((c) => [c.nodeId, c.args])).toEqual([['1', [1]]]);
      // A refused append claims nothing.
      const stale = { runId: 'r1', expectedVersion: 1, events: [{ type: 'NodesSkipped' as const, at: clock.t, nodeIds: [], reason: 'x' }] };
      await store.append([{ runId: 'r2', expectedVersion: 0, events: submitted(sig('c'), clock.t) }]);
      await expect(store.appendAndClaim([stale], { queues: ['default'], limit: 5, worker: 'W', leaseMs: 1000 })).rejects.toMatchObject({ code: 'CONCURRENCY' });
      expect((await store.claim({ queues: ['default'], limit: 5, worker: 'W', leaseMs: 1000 })).map((c) => c.runId)).toEqual(['r2']);
    });

    it('lists runs newest first, filtered by status, task, text and time, page by page', async () => {
      const coordinator = new Coordinator(store);
      for (let i = 0; i < 5; i++) {
        clock.t += 1000;
        await coordinator.submit(`run${i}`, compile(i % 2 ? sig('emails.send', [i]) : { kind: 'group', members: [sig('resize', [i]), sig('crop', [42])] }), clock.t);
      }
      const ids = async (f: Parameters<EventStore['listRuns']>[0]) => (await store.listRuns(f)).map((r) => r.runId);
      expect(await ids({})).toEqual(['run4', 'run3', 'run2', 'run1', 'run0']);
      expect(await ids({ task: 'emails.send' })).toEqual(['run3', 'run1']);
      expect(await ids({ task: 'emails' })).toEqual([]); // whole names only
      expect(await ids({ text: '"crop"' })).toEqual(['run4', 'run2', 'run0']);
      expect(await ids({ createdFrom: clock.t - 2000, createdTo: clock.t })).toEqual(['run3', 'run2']);
      const first = await store.listRuns({ limit: 2 });
      expect(first.map((r) => r.runId)).toEqual(['run4', 'run3']);
      expect(await ids({ limit: 2, after: first[1]! })).toEqual(['run2', 'run1']);
      await store.quarantine('run0', 'x');
      expect(await ids({ status: ['quarantined'] })).toEqual(['run0']);
      expect(await ids({ status: ['running'], limit: 1 })).toEqual(['run4']);
    });

    it('deletes runs whole: events, queue rows and run rows; other runs keep their positions', async () => {
      await store.append([{ runId: 'a', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      await store.append([{ runId: 'b', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      const before = (await store.readAll()).filter((e) => e.runId === 'b').map((e) => e.position);
      expect(await store.deleteRuns(['a', 'missing'])).toBe(1);
      expect(await store.getRun('a')).toBeUndefined();
      expect(await store.readStream('a')).toEqual([]);
      expect((await store.readAll()).map((e) => e.position)).toEqual(before);
      expect((await store.claim({ queues: ['default'], limit: 10, worker: 'w', leaseMs: 1000 })).map((c) => c.runId)).toEqual(['b']);
      // With onlyStatus, the status is checked as the run is deleted.
      expect(await store.deleteRuns(['b'], { onlyStatus: ['succeeded', 'failed'] })).toBe(0);
      expect(await store.getRun('b')).toMatchObject({ status: 'running' });
      await store.quarantine('b', 'x');
      expect(await store.deleteRuns(['b'], { onlyStatus: ['quarantined'] })).toBe(1);
      expect(await store.getRun('b')).toBeUndefined();
      // The id can be used again.
      await store.append([{ runId: 'a', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      expect(await store.getRun('a')).toMatchObject({ version: 2 });
    });

    it('a cancel takes the run out of the ready queue; a resume puts its frontier back', async () => {
      const coordinator = new Coordinator(store);
      await coordinator.submit('r1', compile({ kind: 'group', members: [sig('a'), sig('b')] }), clock.t);
      const [a] = await store.claim({ queues: ['default'], limit: 1, worker: 'W', leaseMs: 1000 });
      await coordinator.apply('r1', { type: 'Cancel', at: clock.t, reason: 'test' });
      const cancelled = await store.getRun('r1');
      expect(cancelled).toMatchObject({ status: 'cancelled', finishedVersion: cancelled!.version });
      expect(await store.claim({ queues: ['default'], limit: 10, worker: 'W', leaseMs: 1000 })).toEqual([]);
      // The running node's late completion is fenced, not recorded as an outcome.
      await coordinator.record([{ type: 'Complete', runId: 'r1', nodeId: a!.nodeId, attempt: 1, leaseToken: a!.leaseToken, outcome: { ok: true, value: 1 }, at: clock.t }]);
      expect((await store.readStream('r1')).slice(-1)[0]!.event.type).toBe('NodeCompletionFenced');
      await coordinator.apply('r1', { type: 'Resume', at: clock.t });
      const resumed = await store.getRun('r1');
      expect(resumed?.status).toBe('running');
      expect(resumed?.finishedVersion).toBeUndefined();
      const again = await store.claim({ queues: ['default'], limit: 10, worker: 'W', leaseMs: 1000 });
      expect(again.map((c) => [c.nodeId, c.attempt]).sort()).toEqual([['0.0', 1], ['0.1', 1]]);
    });

    it('a failFast abort takes the stopped nodes out of the ready queue; a resume puts them back', async () => {
      const coordinator = new Coordinator(store);
      const header = { kind: 'group' as const, members: [sig('a'), sig('b'), sig('c')] };
      await coordinator.submit('r1', compile({ kind: 'chord', header, body: sig('d'), onMemberFailure: 'failFast' }), clock.t);
      const [a, b] = await store.claim({ queues: ['default'], limit: 2, worker: 'W', leaseMs: 1000 });
      await coordinator.record([{ type: 'Complete', runId: 'r1', nodeId: a!.nodeId, attempt: 1, leaseToken: a!.leaseToken, outcome: { ok: false, error: { name: 'Error', message: 'no' } }, at: clock.t }]);
      expect((await store.readStream('r1')).slice(-3).map((s) => s.event)).toMatchObject([
        { type: 'NodeFailed', nodeId: '0.header.0' },
        { type: 'NodesAborted', nodeIds: ['0.header.1', '0.header.2', '0.body'] },
        { type: 'WorkflowFailed', nodeId: '0.header.0' },
      ]);
      expect(await store.getRun('r1')).toMatchObject({ status: 'failed' });
      // Neither the ready member nor the running one (its lease) can be claimed again.
      clock.t += 5000;
      expect(await store.claim({ queues: ['default'], limit: 10, worker: 'W', leaseMs: 1000 })).toEqual([]);
      expect(await store.extend([b!], 1000)).toEqual([false]);
      await coordinator.record([{ type: 'Complete', runId: 'r1', nodeId: b!.nodeId, attempt: 1, leaseToken: b!.leaseToken, outcome: { ok: true, value: 1 }, at: clock.t }]);
      expect((await store.readStream('r1')).slice(-1)[0]!.event).toMatchObject({ type: 'NodeCompletionFenced', reason: 'node is cancelled' });
      await coordinator.apply('r1', { type: 'Resume', at: clock.t });
      const again = await store.claim({ queues: ['default'], limit: 10, worker: 'W', leaseMs: 1000 });
      expect(again.map((c) => [c.nodeId, c.attempt]).sort()).toEqual([['0.header.0', 1], ['0.header.1', 1], ['0.header.2', 1]]);
    });

    it('wakes local listeners when nodes become ready', async () => {
      let woken = 0;
      const off = store.onReady(() => woken++);
      await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      off();
      await store.append([{ runId: 'r2', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      expect(woken).toBe(1);
    });

    it('rate limits: grants up to count within a period, refuses with the right wait, grants again after it (a sliding window)', async () => {
      const limit = { count: 3, periodMs: 1000 };
      const t0 = clock.t;
      for (let i = 0; i < 3; i++) {
        expect(await store.takeToken('send', limit)).toBe(0);
        clock.t += 100;
      }
      // Grants at t0, t0+100, t0+200: the next permit is free when the first is a period old.
      expect(await store.takeToken('send', limit)).toBe(700);
      clock.t = t0 + 999;
      expect(await store.takeToken('send', limit)).toBe(1);
      clock.t = t0 + 1000;
      expect(await store.takeToken('send', limit)).toBe(0);
      expect(await store.takeToken('send', limit)).toBe(100);
      clock.t = t0 + 1100;
      expect(await store.takeToken('send', limit)).toBe(0);
      expect(await store.takeToken('send', limit)).toBe(100);
      // A burst of the whole count at once, after a quiet period.
      clock.t += 5000;
      for (let i = 0; i < 3; i++) expect(await store.takeToken('send', limit)).toBe(0);
      expect(await store.takeToken('send', limit)).toBe(1000);
    });

    it('rate limits: no window of the period ever holds more than count grants; a refusal\'s wait is exact', async () => {
      const limit = { count: 4, periodMs: 1000 };
      const grants: number[] = [];
      let seed = 7;
      const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % 400;
      for (let i = 0; i < 60; i++) {
        clock.t += next();
        const wait = await store.takeToken('k', limit);
        if (wait === 0) {
          grants.push(clock.t);
          continue;
        }
        expect(wait).toBeGreaterThan(0);
        expect(wait).toBeLessThanOrEqual(limit.periodMs);
        clock.t += wait - 1;
        expect(await store.takeToken('k', limit)).toBe(1);
        clock.t += 1;
        expect(await store.takeToken('k', limit)).toBe(0);
        grants.push(clock.t);
      }
      for (let i = 0; i + limit.count < grants.length; i++) expect(grants[i + limit.count]! - grants[i]!).toBeGreaterThanOrEqual(limit.periodMs);
    });

    it('rate limits: concurrent takers never get more than count permits', async () => {
      const limit = { count: 7, periodMs: 60_000 };
      const waits = await Promise.all(Array.from({ length: 30 }, () => store.takeToken('busy', limit)));
      expect(waits.filter((w) => w === 0)).toHaveLength(7);
      expect(waits.filter((w) => w === 60_000)).toHaveLength(23);
    });

    it('rate limits: past 1,000 a period, grants coalesce into slots of period/1000 (the limit holds, the wait rounds up to the slot)', async () => {
      const limit = { count: 1001, periodMs: 10_000 };
      clock.t = 1_700_000_000_000; // a multiple of the 10 ms slot
      const first = await Promise.all(Array.from({ length: 1000 }, () => store.takeToken('bulk', limit)));
      expect(first.every((w) => w === 0)).toBe(true);
      clock.t += 5; // the same slot: counted with the first 1,000, as if granted 5 ms later
      expect(await store.takeToken('bulk', limit)).toBe(0);
      expect(await store.takeToken('bulk', limit)).toBe(10_000);
      clock.t += 9_999;
      expect(await store.takeToken('bulk', limit)).toBe(1);
      clock.t += 1;
      expect(await store.takeToken('bulk', limit)).toBe(0);
    });

    it('rate limits: an override set by setRateLimit wins over the caller\'s limit and applies to a key without one; null clears it', async () => {
      const limit = { count: 5, periodMs: 1000 };
      // Without a limit and without an override, nothing limits a key and nothing is taken.
      expect(await store.takeToken('mail', null)).toBe(NOT_LIMITED);
      await store.setRateLimit('send', { count: 1, periodMs: 2000 });
      await store.setRateLimit('mail', { count: 2, periodMs: 500 });
      expect(await store.takeToken('send', limit)).toBe(0);
      expect(await store.takeToken('send', limit)).toBe(2000);
      expect(await store.takeToken('mail', null)).toBe(0);
      expect(await store.takeToken('mail', null)).toBe(0);
      expect(await store.takeToken('mail', null)).toBe(500);
      // A new override replaces the old one, over the grants remembered.
      await store.setRateLimit('send', { count: 3, periodMs: 2000 });
      expect(await store.takeToken('send', limit)).toBe(0);
      expect(await store.takeToken('send', limit)).toBe(0);
      expect(await store.takeToken('send', limit)).toBe(2000);
      // Cleared: the caller's limit again (5 a second: two more), and no limit for the key without one.
      await store.setRateLimit('send', null);
      await store.setRateLimit('mail', null);
      expect(await store.takeToken('send', limit)).toBe(0);
      expect(await store.takeToken('send', limit)).toBe(0);
      expect(await store.takeToken('send', limit)).toBe(1000);
      expect(await store.takeToken('mail', null)).toBe(NOT_LIMITED);
      await store.setRateLimit('mail', null); // clearing twice is fine
      // The largest limit allowed (a week, a million) is stored, and limits a key without one of its own.
      await store.setRateLimit('big', { count: 1_000_000, periodMs: 7 * 86_400_000 });
      expect(await store.takeToken('big', null)).toBe(0);
    });

    it('rate limits: keys are independent; bad keys and limits are refused with VALIDATION', async () => {
      const limit = { count: 1, periodMs: 1000 };
      expect(await store.takeToken('a', limit)).toBe(0);
      expect(await store.takeToken('a', limit)).toBe(1000);
      expect(await store.takeToken('b', limit)).toBe(0);
      expect(await store.takeToken('a:b/c.d-e_f', limit)).toBe(0);
      await store.setRateLimit('a', { count: 10, periodMs: 1000 });
      expect(await store.takeToken('a', limit)).toBe(0);
      expect(await store.takeToken('b', limit)).toBe(1000);
      for (const bad of [{ count: 0, periodMs: 1000 }, { count: 1.5, periodMs: 1000 }, { count: 1, periodMs: 0 }, { count: -1, periodMs: 1000 }, { count: 1, periodMs: 1e12 }]) {
        await expect(store.takeToken('a', bad)).rejects.toMatchObject({ code: 'VALIDATION' });
        await expect(store.setRateLimit('a', bad)).rejects.toMatchObject({ code: 'VALIDATION' });
      }
      await expect(store.takeToken('', limit)).rejects.toMatchObject({ code: 'VALIDATION' });
      await expect(store.setRateLimit('x'.repeat(201), limit)).rejects.toMatchObject({ code: 'VALIDATION' });
      await expect(store.takeTurn!('a\u0000b', limit)).rejects.toMatchObject({ code: 'VALIDATION' });
      await expect(store.takeTurn!('a', { count: 0, periodMs: 1000 })).rejects.toMatchObject({ code: 'VALIDATION' });
    });

    it('rate-limit turns: refused takers are booked count a turn, a period and a twentieth apart, up to the horizon, for every caller', async () => {
      const limit = { count: 2, periodMs: 1000 };
      const t0 = clock.t;
      expect(await store.takeTurn!('turn', limit)).toBe(0);
      expect(await store.takeTurn!('turn', limit)).toBe(0);
      const waits: number[] = [];
      for (let i = 0; i < 6; i++) waits.push(await store.takeTurn!('turn', limit));
      // The first two at the next free permit, the next two 1000 + 50 ms later, and so on.
      expect(waits).toEqual([1000, 1000, 2050, 2050, 3100, 3100]);
      // takeToken tells the next free permit and books nothing.
      expect(await store.takeToken('turn', limit)).toBe(1000);
      // A turn is a time, not a permit: the first two come back and are granted; a third is booked after the turns given.
      clock.t = t0 + 1000;
      expect(await store.takeTurn!('turn', limit)).toBe(0);
      expect(await store.takeTurn!('turn', limit)).toBe(0);
      expect(await store.takeTurn!('turn', limit)).toBe(4150 - 1000);
      // Turns reach a minute ahead at most (2/s: turns 1,050 ms apart); beyond it, callers are told to ask
      // again a minute later, and nothing is booked for them.
      const far: number[] = [];
      for (let w = 0; w !== 60_000 && far.length < 200; ) far.push((w = await store.takeTurn!('turn', limit)));
      expect(far.at(-1)).toBe(60_000);
      expect(far.at(-2)).toBe(57 * 1050); // the last turn within the minute: 59,850 ms ahead
      expect(far.filter((w) => w === 57 * 1050)).toHaveLength(2);
      expect(await store.takeTurn!('turn', limit)).toBe(60_000);
      clock.t = t0 + 1950; // the grants of t0 + 1000 still fill the window, and the minute reaches one turn further
      expect(await store.takeTurn!('turn', limit)).toBe(1000 + 58 * 1050 - 1950);
      // Turns that have all passed are forgotten: a new refusal starts again at the next free permit.
      clock.t += 200_000;
      expect(await store.takeTurn!('turn', limit)).toBe(0);
      expect(await store.takeTurn!('turn', limit)).toBe(0);
      expect(await store.takeTurn!('turn', limit)).toBe(1000);
      // Turns follow the limit in force: under an override of 3 a second, three a turn.
      await store.setRateLimit('turn3', { count: 3, periodMs: 1000 });
      const three: number[] = [];
      for (let i = 0; i < 7; i++) three.push(await store.takeTurn!('turn3', limit));
      expect(three).toEqual([0, 0, 0, 1000, 1000, 1000, 2050]);
      await store.setRateLimit('turn3', null);
      expect(await store.takeTurn!('turn3', null)).toBe(NOT_LIMITED);
      // Concurrent callers each get a place of their own: 7 permits, 7 places in each turn within the
      // horizon (four periods of this slow limit: turns at 60, 123 and 186 s), and the rest told 240 s.
      const slow = { count: 7, periodMs: 60_000 };
      const crowd = await Promise.all(Array.from({ length: 30 }, () => store.takeTurn!('crowd', slow)));
      const places = new Map<number, number>();
      for (const w of crowd) places.set(w, (places.get(w) ?? 0) + 1);
      expect([...places].sort((a, b) => a[0] - b[0])).toEqual([[0, 7], [60_000, 7], [123_000, 7], [186_000, 7], [240_000, 2]]);
    });
  });
}

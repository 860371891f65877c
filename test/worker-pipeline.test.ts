// A worker on a pipelined store (two calls on their way) whose calls run, fail and answer in orders a
// test sets: a wake-up behind a failed claim, leases of nodes claimed behind a slow or failed call, and
// store errors at shutdown. Each case failed before the fix it names (found by a review).
import { expect, it, vi } from 'vitest';
import { compile } from '../src/canvas/compile.ts';
import type { CanvasData } from '../src/canvas/types.ts';
import { MemoryStore } from '../src/eventstore/memory.ts';
import type { EventStore } from '../src/eventstore/store.ts';
import { Coordinator } from '../src/workers/coordinator.ts';
import { taskContext } from '../src/workers/context.ts';
import { Worker } from '../src/workers/worker.ts';
import { scheduled, tick, type SCall } from './support/scheduled-store.ts';

const sig = (i: number): CanvasData => ({ kind: 'signature', task: 't', args: [i], immutable: true, options: {} });
const group = (n: number): CanvasData => ({ kind: 'group', members: Array.from({ length: n }, (_, i) => sig(i)) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The memory store, whose next `failures.n` appends fail (a store blip); `pipelined` as asked. */
function flaky(memory: MemoryStore, pipelined = false) {
  const failures = { n: 0 };
  const fail = () => { if (failures.n > 0) { failures.n--; throw new Error('store blip'); } };
  const store = new Proxy(memory, {
    get(target, key) {
      if (key === 'pipelined') return pipelined;
      if (key === 'append') return async (...a: Parameters<EventStore['append']>) => { fail(); return target.append(...a); };
      if (key === 'appendAndClaim') return async (...a: Parameters<EventStore['appendAndClaim']>) => { fail(); return target.appendAndClaim(...a); };
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as EventStore;
  return { store, failures };
}
const types = (log: { event: { type: string } }[]) => log.map((e) => e.event.type);

it('a claim that failed after a wake-up is claimed again (pipelined store, pollMs 60 s)', async () => {
  const memory = new MemoryStore();
  const s = scheduled(memory);
  const gates = new Map<string, () => void>();
  const started: string[] = [];
  const t = () => {
    const { runId, nodeId } = taskContext();
    started.push(`${runId}/${nodeId}`);
    if (runId !== 'R0') return 'done';
    return new Promise((res) => gates.set(nodeId, () => res('done')));
  };
  const submitter = new Coordinator(memory);
  await submitter.submit('R0', compile(group(3)), Date.now());
  const worker = new Worker({ store: s.store, coordinator: new Coordinator(s.store), tasks: new Map([['t', { fn: t as never, maxLeaseExpiries: 3 }]]) }, { concurrency: 3, pollMs: 60_000, onError: () => undefined });
  const next = async (what: string): Promise<SCall> => {
    for (let i = 0; i < 200; i++) {
      const c = s.calls.find((x) => !x.ran);
      if (c) return c;
      await tick();
    }
    throw new Error(`no call: ${what}; calls: ${s.calls.map(s.label).join(' ; ')}`);
  };
  const go = async (c: SCall, fail = false) => { s.run(c, fail ? new Error('store blip') : undefined); await s.reply(c); for (let i = 0; i < 5; i++) await tick(); };
  worker.start();
  try {
    await go(await next('first claim')); // claims R0's 3 nodes (full: backlog)
    expect(started).toEqual(['R0/0.0', 'R0/0.1', 'R0/0.2']);
    gates.get('0.0')!();
    const a = await next('A: record 0.0 + claim'); // A: R0 0.0's outcome and a claim of 1
    expect(s.label(a)).toContain('|claim1');
    s.run(a); // at the store: nothing else is ready yet
    await submitter.submit('L', compile(sig(7)), Date.now()); // wake-up: L's node is ready
    await tick();
    gates.get('0.1')!(); // B: 0.1's outcome and a claim, queued behind A's step in the coordinator
    await s.reply(a); for (let i = 0; i < 5; i++) await tick();
    const b = await next('B: record 0.1 + claim');
    expect(s.label(b)).toContain('|claim');
    gates.get('0.2')!(); // C: 0.2's outcome, no claim (the last claim came back short)
    await tick(); await tick();
    s.run(b, new Error('store blip')); await s.reply(b); // B fails: 0.1 is pending again
    // The worker backs off (10 ms) with C still on its way, then sends D: 0.1's outcome again, no claim.
    await new Promise((r) => setTimeout(r, 100));
    // Every call from now on runs at once.
    s.mode.manual = false;
    for (const c of s.calls) if (!c.ran) await go(c);
    // L's node is ready: the worker must claim it, long before pollMs.
    for (let i = 0; i < 50 && !started.includes('L/0'); i++) await new Promise((r) => setTimeout(r, 10));
    expect({ started: started.includes('L/0'), status: (await memory.getRun('L'))?.status, calls: s.calls.map(s.label) }).toMatchObject({ started: true, status: 'succeeded' });
  } finally {
    s.mode.manual = false;
    for (const c of s.calls) { if (!c.ran) s.run(c); if (!c.replied) await s.reply(c); }
    await worker.stop();
  }
}, 15_000);

it.each([true, false])('(another worker claims: %s) a node claimed by the second call on its way keeps its lease while the first is out', async (w2: boolean) => {
  const memory = new MemoryStore();
  const s = scheduled(memory);
  const runs: string[] = [];
  let live = 0; let maxLive = 0;
  const t = async () => {
    const { runId, nodeId } = taskContext();
    runs.push(`${runId}/${nodeId}`);
    if (runId !== 'N') return 1;
    live++; maxLive = Math.max(maxLive, live);
    await sleep(200);
    live--;
    return 1;
  };
  const submitter = new Coordinator(memory);
  const coordinator = new Coordinator(s.store);
  s.mode.manual = false;
  await coordinator.submit('R0', compile(group(2)), Date.now()); // cached by the worker's coordinator (as app.submit does)
  s.mode.manual = true;
  const worker = new Worker({ store: s.store, coordinator, tasks: new Map([['t', { fn: t as never, maxLeaseExpiries: 3 }]]) }, { concurrency: 2, leaseMs: 1000, pollMs: 60_000, onError: () => undefined });
  const next = async (): Promise<SCall> => {
    for (let i = 0; i < 200; i++) { const c = s.calls.find((x) => !x.ran); if (c) return c; await tick(); }
    throw new Error(`no call: ${s.calls.map(s.label).join(' ; ')}`);
  };
  worker.start();
  try {
    const c0 = await next(); s.run(c0); await s.reply(c0); // R0's 2 nodes (a full claim): they run and end at once
    await submitter.submit('N', compile(sig(9)), Date.now());
    for (let i = 0; i < 20; i++) await tick();
    const [first, second] = s.calls.filter((c) => !c.ran); // two calls on their way, both with a claim
    expect([first, second].map((c) => c && s.label(c))).toEqual([expect.stringContaining('|claim1'), expect.stringContaining('|claim1')]);
    s.run(second!); s.run(first!); // at the store, the second one first: it claims N
    await s.reply(second!); // back; the first is slow to answer
    for (let i = 0; i < 20; i++) await tick();
    expect((await memory.readStream('N')).map((e) => e.event.type)).toContain('NodeStarted');
    await sleep(2300); // more than twice the lease; the worker's heartbeat runs every 333 ms meanwhile
    const other = w2 ? await memory.claim({ queues: ['default'], limit: 5, worker: 'W2', leaseMs: 60_000 }) : [];
    s.mode.manual = false;
    await s.reply(first!);
    await sleep(100);
    expect({ takenByW2: other.map((n) => `${n.runId}/${n.nodeId}`), ranHere: runs.filter((r) => r.startsWith('N/')), atOnceHere: maxLive }).toEqual({ takenByW2: [], ranHere: ['N/0'], atOnceHere: 1 });
  } finally {
    s.mode.manual = false;
    for (const c of s.calls) { if (!c.ran) s.run(c); if (!c.replied) await s.reply(c); }
    await worker.stop();
  }
}, 10_000);

it('a node claimed behind a failed call is not run twice at once by this worker', async () => {
  const memory = new MemoryStore();
  const { store, failures } = flaky(memory, true);
  const submitter = new Coordinator(memory);
  await submitter.submit('R0', compile(group(2)), Date.now());
  await submitter.submit('N', compile(sig(9)), Date.now());
  let live = 0, maxLive = 0;
  const runs: string[] = [];
  const t = async () => {
    const { runId, nodeId } = taskContext();
    runs.push(`${runId}/${nodeId}`);
    if (runId !== 'N') { failures.n = 7; return 1; } // the store fails the next 7 calls (R0's outcomes and claims): 1.3 s of backoff
    live++; maxLive = Math.max(maxLive, live);
    await sleep(300);
    live--;
    return 1;
  };
  const worker = new Worker({ store, coordinator: new Coordinator(store), tasks: new Map([['t', { fn: t as never, maxLeaseExpiries: 3 }]]) }, { concurrency: 2, leaseMs: 300, pollMs: 50, onError: () => undefined });
  worker.start();
  for (let i = 0; i < 800 && !(runs.includes('N/0') && live === 0 && (await memory.getRun('N'))?.status === 'succeeded'); i++) await sleep(10);
  await worker.stop();
  const log = (await memory.readStream('N')).map((e) => e.event.type + ('worker' in e.event ? ` ${String(e.event.worker).slice(-6)}` : ''));
  expect({ runsOfN: runs.filter((r) => r === 'N/0').length, atOnce: maxLive, log }).toMatchObject({ runsOfN: 1, atOnce: 1 });
}, 15_000);



it.each([false, true])('pipelined %s: one failed store call at shutdown; the running node is still released', async (pipelined) => {
  const memory = new MemoryStore();
  const { store, failures } = flaky(memory, pipelined);
  await new Coordinator(memory).submit('R', compile(sig(1)), Date.now());
  let started = false;
  const worker = new Worker({ store, coordinator: new Coordinator(store), tasks: new Map([['t', { fn: (() => { started = true; return new Promise(() => undefined); }) as never, maxLeaseExpiries: 3 }]]) }, { concurrency: 1, shutdownGraceMs: 30, pollMs: 20, onError: () => undefined });
  worker.start();
  for (let i = 0; i < 100 && !started; i++) await new Promise((r) => setTimeout(r, 5));
  expect(started).toBe(true);
  failures.n = 1; // the release's store call fails once
  await worker.stop();
  expect(types(await memory.readStream('R'))).toContain('NodeReleased');
});

it('a completion whose store calls fail twice at shutdown is recorded', async () => {
  const memory = new MemoryStore();
  const { store, failures } = flaky(memory);
  await new Coordinator(memory).submit('R', compile(sig(1)), Date.now());
  let finish!: () => void;
  let started = false;
  const worker = new Worker({ store, coordinator: new Coordinator(store), tasks: new Map([['t', { fn: (() => { started = true; return new Promise((r) => { finish = () => r(5); }); }) as never, maxLeaseExpiries: 3 }]]) }, { concurrency: 1, shutdownGraceMs: 2000, pollMs: 20, onError: () => undefined });
  worker.start();
  for (let i = 0; i < 100 && !started; i++) await new Promise((r) => setTimeout(r, 5));
  failures.n = 2;
  const stopped = worker.stop();
  await new Promise((r) => setTimeout(r, 30));
  finish(); // finishes well within the grace period
  await stopped;
  expect(types(await memory.readStream('R'))).toContain('NodeSucceeded');
});

it('an onError that throws is reported on stderr and does not stop the worker: the outcome it failed to record goes again', async () => {
  const memory = new MemoryStore();
  const { store, failures } = flaky(memory);
  await new Coordinator(memory).submit('R', compile(sig(1)), Date.now());
  const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  const worker = new Worker({ store, coordinator: new Coordinator(store), tasks: new Map([['t', { fn: (() => { failures.n = 1; return 2; }) as never, maxLeaseExpiries: 3 }]]) }, { concurrency: 1, pollMs: 20, onError: () => { throw new Error('onError bug'); } });
  try {
    worker.start();
    for (let i = 0; i < 200 && (await memory.getRun('R'))?.status !== 'succeeded'; i++) await sleep(10);
    expect((await memory.getRun('R'))?.status).toBe('succeeded');
    expect(errors).toHaveBeenCalledWith(expect.stringContaining("onError threw: Error: onError bug"));
  } finally {
    await worker.stop();
    errors.mockRestore();
  }
});

it('stop() ends the backoff after store errors at once (not after up to 5 s)', async () => {
  vi.useFakeTimers();
  try {
    const memory = new MemoryStore();
    const down = new Proxy(memory, {
      get(target, key) {
        if (key === 'claim') return async () => { throw new Error('store down'); };
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as EventStore;
    let errors = 0;
    const worker = new Worker({ store: down, coordinator: new Coordinator(down), tasks: new Map() }, { concurrency: 1, pollMs: 20, onError: () => { errors++; } });
    worker.start();
    await vi.advanceTimersByTimeAsync(20_000); // failed claims: the backoff has grown to 5 s
    expect(errors).toBeGreaterThan(5);
    let stopped = false;
    const stopping = worker.stop().then(() => { stopped = true; });
    await vi.advanceTimersByTimeAsync(50);
    expect(stopped).toBe(true);
    await stopping;
  } finally {
    vi.useRealTimers();
  }
});

it.each([
  { concurrency: 8, costlyCalls: false, onTheirWay: 2 },
  { concurrency: 8, costlyCalls: true, onTheirWay: 2 }, // two whole batches of 4
  { concurrency: 7, costlyCalls: true, onTheirWay: 1 }, // a second call would halve the batches: not on Postgres
])('concurrency $concurrency, batches of 4, costly calls $costlyCalls: $onTheirWay store calls on their way at most', async ({ concurrency, costlyCalls, onTheirWay }) => {
  const memory = new MemoryStore();
  const s = scheduled(memory, { costlyCalls });
  const coordinator = new Coordinator(s.store);
  s.mode.manual = false;
  for (let i = 0; i < 20; i++) await coordinator.submit(`R${i}`, compile(sig(i)), Date.now()); // cached, one node each: their records may go beside a claim
  s.mode.manual = true;
  const worker = new Worker({ store: s.store, coordinator, tasks: new Map([['t', { fn: (() => 1) as never, maxLeaseExpiries: 3 }]]) }, { concurrency, batchSize: 4, pollMs: 60_000 });
  worker.start();
  const waiting = () => s.calls.filter((c) => !c.ran);
  try {
    for (let i = 0; i < 200 && waiting().length === 0; i++) await tick();
    const [first] = waiting();
    s.run(first!);
    await s.reply(first!); // 4 nodes, a full batch: they run and end at once; the worker records them and claims more
    let most = 0;
    for (let i = 0; i < 50; i++) {
      await tick();
      most = Math.max(most, waiting().length);
    }
    expect(most).toBe(onTheirWay);
  } finally {
    s.mode.manual = false;
    for (const c of s.calls) { if (!c.ran) s.run(c); if (!c.replied) await s.reply(c); }
    await worker.stop();
  }
});

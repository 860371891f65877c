// Seeded schedules of a store's calls under one worker (run at the store in any order, answered in any
// order, some failing before they run; two on their way on a pipelined store): no node runs twice at
// once, never more than `concurrency` tasks, every run ends, every node runs once (a failed call never
// ran); and stopped at any point, the worker leaves no node running in the log. Written by a review of
// the worker loop (its focused cases are in worker-pipeline.test.ts).
import { describe, expect, it } from 'vitest';
import { compile } from '../src/canvas/compile.ts';
import type { CanvasData } from '../src/canvas/types.ts';
import { foldStored, initialState } from '../src/engine/state.ts';
import { MemoryStore } from '../src/eventstore/memory.ts';
import { Coordinator } from '../src/workers/coordinator.ts';
import { taskContext } from '../src/workers/context.ts';
import { Worker } from '../src/workers/worker.ts';
import { imm, rng, scheduled } from './support/scheduled-store.ts';

const sig = (i: number): CanvasData => ({ kind: 'signature', task: 't', args: [i], immutable: true, options: {} });
const group = (n: number, base = 0): CanvasData => ({ kind: 'group', members: Array.from({ length: n }, (_, i) => sig(base + i)) });
const chain = (...steps: CanvasData[]): CanvasData => ({ kind: 'chain', steps });

async function fuzz(seed: number, o: { concurrency: number; batchSize?: number; failP: number; runs: number; pipelined?: boolean; pollMs?: number; lateRuns?: number; stopAt?: number }) {
  const r = rng(seed);
  const memory = new MemoryStore();
  const s = scheduled(memory, { pipelined: o.pipelined ?? true });
  const coordinator = new Coordinator(s.store);
  const live = new Set<string>();
  const executions = new Map<string, number>();
  const violations: string[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const task = (i: number) => {
    const ctx = taskContext();
    const key = `${ctx.runId}/${ctx.nodeId}`;
    if (live.has(key)) violations.push(`twice at once: ${key}`);
    executions.set(key, (executions.get(key) ?? 0) + 1);
    if (r() < 0.4) return i; // synchronous
    if (o.stopAt !== undefined && r() < 0.15) return new Promise(() => undefined); // never ends: released at stop
    live.add(key);
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    const n = Math.floor(r() * 6);
    return (async () => {
      for (let k = 0; k < n; k++) await imm();
      live.delete(key);
      concurrent--;
      return i;
    })();
  };
  const errors: unknown[] = [];
  const worker = new Worker({ store: s.store, coordinator, tasks: new Map([['t', { fn: task as never, maxLeaseExpiries: 3 }]]) }, { concurrency: o.concurrency, batchSize: o.batchSize ?? o.concurrency, pollMs: o.pollMs ?? 30, leaseMs: 600_000, shutdownGraceMs: 40, onError: (e) => errors.push(e) });
  const submitter = new Coordinator(memory);
  const runIds: string[] = [];
  for (let k = 0; k < o.runs; k++) {
    const runId = `r${k}`;
    const shape = Math.floor(r() * 3);
    const canvas = shape === 0 ? group(1 + Math.floor(r() * 5)) : shape === 1 ? chain(sig(1), group(1 + Math.floor(r() * 3)), sig(2)) : chain(sig(1), sig(2), sig(3));
    await submitter.submit(runId, compile(canvas), Date.now());
    runIds.push(runId);
  }
  worker.start();
  const done = async () => {
    for (const id of runIds) if ((await memory.getRun(id))?.status !== 'succeeded') return false;
    return true;
  };
  const deadline = Date.now() + 8000;
  let steps = 0;
  let late = o.lateRuns ?? 0;
  let stopped = false;
  let stopping: Promise<void> | undefined;
  while (Date.now() < deadline) {
    await imm();
    steps++;
    if (o.stopAt !== undefined && steps === o.stopAt) { stopping = worker.stop().then(() => { stopped = true; }); }
    if (stopped) break;
    if (late > 0 && r() < 0.05) {
      const runId = `late${late--}`;
      await submitter.submit(runId, compile(r() < 0.5 ? group(1 + Math.floor(r() * 3)) : chain(sig(1), sig(2))), Date.now());
      runIds.push(runId);
    }
    const unran = s.calls.filter((c) => !c.ran);
    const unreplied = s.calls.filter((c) => c.ran && !c.replied);
    if (unran.length === 0 && unreplied.length === 0) {
      if (late === 0 && o.stopAt === undefined && await done()) break;
      await new Promise((res) => setTimeout(res, 1));
      continue;
    }
    if (unran.length > 0 && (unreplied.length === 0 || r() < 0.5)) {
      const c = unran[Math.floor(r() * unran.length)]!;
      s.run(c, r() < o.failP ? new Error(`injected failure of call #${c.id}`) : undefined);
    } else {
      const c = unreplied[Math.floor(r() * unreplied.length)]!;
      await s.reply(c);
    }
  }
  const finished = await done();
  s.mode.manual = false;
  for (const c of s.calls) { if (!c.ran) s.run(c); }
  for (const c of s.calls) { if (!c.replied) await s.reply(c); }
  stopping ??= worker.stop().then(() => { stopped = true; });
  // keep serving calls (at once) while it stops
  await Promise.race([stopping, new Promise((res) => setTimeout(res, 5000))]);
  const stopHung = !stopped;
  if (o.stopAt !== undefined) {
    const leftRunning: string[] = [];
    for (const id of runIds) {
      const st = foldStored(initialState(id), await memory.readStream(id));
      for (const [nodeId, n] of st.nodes) if (n.status === 'running') leftRunning.push(`${id}/${nodeId}`);
    }
    const unexpected = errors.filter((e) => !(e instanceof Error && e.message.startsWith('injected')));
    return { seed, stopHung, leftRunning, violations, maxConcurrent, unexpected: unexpected.map(String) };
  }
  const statuses: string[] = [];
  for (const id of runIds) {
    const log = await memory.readStream(id);
    const st = foldStored(initialState(id), log);
    if (st.status !== 'succeeded') statuses.push(`${id}:${st.status}:${log.map((e) => e.event.type + ('nodeId' in e.event ? ' ' + e.event.nodeId : '')).join(',')}`);
  }
  const multi = [...executions].filter(([, n]) => n !== 1).map(([k, n]) => `${k}x${n}`);
  const unexpected = errors.filter((e) => !(e instanceof Error && e.message.startsWith('injected')));
  return { seed, finished, statuses, violations, maxConcurrent, multi, unexpected: unexpected.map(String), calls: s.calls.length };
}

describe('a worker under seeded schedules of its store calls', () => {
  for (const [pipelined, concurrency, failP] of [[true, 3, 0.1], [true, 1, 0.2], [true, 5, 0.05], [false, 3, 0.1]] as const) {
    it(`${pipelined ? 'two calls' : 'one call'} on their way, concurrency ${concurrency}, ${failP * 100}% of calls failing: 40 seeds`, async () => {
      for (let seed = 1; seed <= 40; seed++) {
        const res = await fuzz(seed, { concurrency, failP, runs: 6, pipelined, pollMs: 30, lateRuns: 2 });
        expect({ ...res, calls: 0 }).toEqual({ seed, finished: true, statuses: [], violations: [], maxConcurrent: res.maxConcurrent <= concurrency ? res.maxConcurrent : -1, multi: [], unexpected: [], calls: 0 });
      }
    }, 60_000);
  }

  it('stopped at any point of the schedule: no node left running, no hang (40 seeds, two calls on their way)', async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed * 7919);
      const res = await fuzz(seed, { concurrency: 3, failP: 0.1, runs: 8, pipelined: true, pollMs: 30, lateRuns: 3, stopAt: 5 + Math.floor(r() * 80) });
      expect(res).toEqual({ seed, stopHung: false, leftRunning: [], violations: [], maxConcurrent: res.maxConcurrent <= 3 ? res.maxConcurrent : -1, unexpected: [] });
    }
  }, 120_000);
});

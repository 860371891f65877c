// Kill storm: 4 real `lovage worker` processes run a chord of 5,000 members while, every second, one
// of them chosen at random is killed with SIGKILL and a new one is started — until the run is done,
// or for at most MAX_KILLS kills / STORM_MS. Leases are short (1 s) so the killed workers' nodes
// expire and are taken by others inside the test. Only the recorded history is asserted, never timings.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { foldStored, initialState } from '../src/engine/state.ts';
import { chord, group } from '../src/index.ts';
import { checkContiguous, chordNodes, countByNode, explainRun, FaultHarness, ofType } from './support/fault-harness.ts';
import { storeCases } from './support/fault-stores.ts';

const MEMBERS = 5000;
const WORKERS = 4;
const FLAGS = ['-c', '8', '--lease-ms', '1000'];
const MAX_KILLS = 10;
const STORM_MS = 20_000;
const RUN_MS = 60_000;

/** A small seeded PRNG (mulberry32): a failing storm can be replayed with LOVAGE_FAULT_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const row of storeCases) {
  describe(`kill storm (${row.name})`, () => {
    let h: FaultHarness;
    beforeEach(() => {
      h = new FaultHarness();
    });
    afterEach(() => h.dispose());

    it('kill -9 a random worker every second: every member recorded once, the body once, the right result', async (ctx) => {
      const { store, tasks, workers } = await h.open(ctx, row);
      const seed = Number(process.env['LOVAGE_FAULT_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
      const random = prng(seed);

      const members = Array.from({ length: MEMBERS }, (_, i) => tasks.slowTick.s(i));
      const run = await chord(group(members), tasks.total.s()).applyAsync({ runId: `storm-${row.name}` });
      const t0 = Date.now();
      await Promise.all(Array.from({ length: WORKERS }, (_, i) => workers.start(`storm-${i}`, FLAGS)));
      const startedMs = Date.now() - t0;

      // The storm: at most one kill a second, each replaced at once by a new worker (not awaited:
      // a worker still starting is never chosen). The victim is one that holds a lease now, by the
      // run's log, when any does: on a quick machine the run's tail leaves some workers idle, and a
      // kill of an idle one would prove nothing.
      const killed: string[] = [];
      const stormEnd = Date.now() + STORM_MS;
      let next = WORKERS;
      const finished = async () => (await store.getRun(run.id))?.status !== 'running';
      while (killed.length < MAX_KILLS && Date.now() < stormEnd && !(await finished())) {
        await sleep(1000);
        const live = workers.procs.filter((p) => p.alive() && p.started());
        if (live.length === 0) continue;
        const holding = new Set([...foldStored(initialState(run.id), await store.readStream(run.id)).nodes.values()].filter((n) => n.status === 'running').map((n) => n.worker));
        const busy = live.filter((p) => holding.has(p.name));
        const pool = busy.length > 0 ? busy : live;
        const victim = pool[Math.floor(random() * pool.length)]!;
        await workers.kill(victim);
        killed.push(victim.name);
        void workers.start(`storm-${next++}`, FLAGS, false);
      }

      const stormMs = Date.now() - t0;
      await workers.waitFor(finished, `run ${run.id} to finish (seed ${seed}, killed ${killed.join(', ')})`, RUN_MS, () => explainRun(store, run.id));
      const runMs = Date.now() - t0;
      const result = await run.get({ timeoutMs: 1000 });
      const log = await store.readStream(run.id);
      const events = log.map((s) => s.event);
      const expired = ofType(events, 'NodeLeaseExpired');
      const killedSet = new Set(killed);
      const tally = (xs: readonly { worker: string }[]) => JSON.stringify(Object.fromEntries([...new Set(xs.map((x) => x.worker))].map((w) => [w, xs.filter((x) => x.worker === w).length])));
      console.log(`kill storm (${row.name}, seed ${seed}): ${killed.length} kills (${killed.join(', ')}), ${events.length} events, ` +
        `${expired.length} leases expired (${expired.filter((e) => killedSet.has(e.worker)).length} of killed workers), ` +
        `${ofType(events, 'NodeCompletionFenced').length} completions fenced; workers up after ${startedMs} ms, storm over after ${stormMs} ms, run done after ${runMs} ms\n` +
        `  NodeStarted by worker ${tally(ofType(events, 'NodeStarted'))}; NodeLeaseExpired by worker ${tally(expired)}`);
      expect(result).toEqual({ count: MEMBERS, sum: (MEMBERS * (MEMBERS - 1)) / 2, inOrder: true });
      expect(checkContiguous(log)).toBeUndefined();

      // Every member's outcome recorded exactly once; none failed.
      const { members: memberIds, body } = chordNodes(events);
      expect(memberIds).toHaveLength(MEMBERS);
      const succeeded = countByNode(events, 'NodeSucceeded');
      expect(memberIds.filter((id) => succeeded.get(id) !== 1)).toEqual([]);
      expect(ofType(events, 'NodeFailed')).toEqual([]);
      expect(succeeded.size).toBe(MEMBERS + 1);

      // The body became ready once, after the last member, and succeeded once.
      expect(countByNode(events, 'NodeReady').get(body)).toBe(1);
      expect(succeeded.get(body)).toBe(1);
      const bodyReadyAt = events.findIndex((e) => e.type === 'NodeReady' && e.nodeId === body);
      const lastMemberAt = events.findLastIndex((e) => e.type === 'NodeSucceeded' && e.nodeId !== body);
      expect(bodyReadyAt).toBeGreaterThan(lastMemberAt);
      expect(types(events, 'WorkflowSucceeded')).toBe(1);
      expect(types(events, 'WorkflowFailed')).toBe(0);
      // The run ends with its result; only late, fenced completions may follow the end.
      const end = events.findIndex((e) => e.type === 'WorkflowSucceeded');
      expect(events[end]).toMatchObject({ type: 'WorkflowSucceeded', result });
      expect(events.slice(end + 1).filter((e) => e.type !== 'NodeCompletionFenced')).toEqual([]);

      // The storm hit something: at least one killed worker held leases that then expired, and each
      // such node was started again (attempt + 1) and recorded once (checked above).
      expect(killed.length).toBeGreaterThan(0);
      const hit = expired.filter((e) => killedSet.has(e.worker));
      expect(hit.length).toBeGreaterThan(0);
      const restarted = new Set(ofType(events, 'NodeStarted').filter((e) => e.attempt > 1).map((e) => `${e.nodeId}#${e.attempt}`));
      expect(hit.filter((e) => !restarted.has(`${e.nodeId}#${e.attempt + 1}`))).toEqual([]);
    }, 120_000);
  });
}

function types(events: readonly { type: string }[], type: string): number {
  return events.filter((e) => e.type === type).length;
}

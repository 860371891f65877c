// Racing completions: a chord whose members finish at the same instant in 4 worker processes on one
// store. No lost update (every member recorded once, the result has every member in header order),
// no double body (its NodeReady and its NodeSucceeded once each).
//
// How the test proves the race happened, rather than hoping for it:
// 1. A barrier. Each member (fault.meet) takes a ticket and waits until its wave of WIDTH tickets is
//    full, then returns at once. The workers run with concurrency 1, so a wave can only fill when
//    WIDTH members run at the same moment in WIDTH different processes — and then all WIDTH finish
//    together and report to the same run at once. The history confirms it per wave: WIDTH NodeStarted
//    by WIDTH distinct workers, all before the wave's first NodeSucceeded, and WIDTH distinct pids in
//    the members' results.
// 2. The store's refusals. The workers' app (test/fixtures/fault-app.ts, LOVAGE_FAULT_DIR) writes one
//    line for every append the store refused with CONCURRENCY: a completion decided on a version of
//    the run that another process had already moved past. At least one refusal means two processes
//    really did race to append to the run, and the loser caught up and decided again — while the
//    history still shows each outcome once and the body once.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chord, group } from '../src/index.ts';
import type { Met } from './fixtures/fault-tasks.ts';
import { checkContiguous, chordNodes, countByNode, explainRun, FaultHarness, ofType } from './support/fault-harness.ts';
import { storeCases } from './support/fault-stores.ts';

const WIDTH = 4;
const WAVES = 10;
const MEMBERS = WIDTH * WAVES;

for (const row of storeCases) {
  describe(`racing completions (${row.name})`, () => {
    let h: FaultHarness;
    beforeEach(() => {
      h = new FaultHarness();
    });
    afterEach(() => h.dispose());

    it(`${WIDTH} processes complete chord members at the same instant: no lost update, no double body, and the race is proven`, async (ctx) => {
      const { store, tasks, workers } = await h.open(ctx, row, { LOVAGE_FAULT_DIR: h.dir });
      const members = Array.from({ length: MEMBERS }, (_, i) => tasks.meet.s(h.dir, i, WIDTH));
      const run = await chord(group(members), tasks.gather.s()).applyAsync({ runId: `race-${row.name}` });
      await Promise.all(Array.from({ length: WIDTH }, (_, i) => workers.start(`racer-${i}`, ['-c', '1'])));

      await workers.waitFor(async () => (await store.getRun(run.id))?.status !== 'running', `run ${run.id} to finish`, 60_000, () => explainRun(store, run.id));
      const result = (await run.get({ timeoutMs: 1000 })) as Met[];
      const log = await store.readStream(run.id);
      const events = log.map((s) => s.event);
      const conflicts = existsSync(join(h.dir, 'conflicts')) ? readFileSync(join(h.dir, 'conflicts'), 'utf8').trim().split('\n') : [];
      console.log(`racing completions (${row.name}): ${events.length} events, ${conflicts.length} appends refused with CONCURRENCY (from ${new Set(conflicts).size} processes)`);

      // No lost update: every member recorded once, the result holds all of them in header order.
      expect(result.map((m) => m.i)).toEqual(Array.from({ length: MEMBERS }, (_, i) => i));
      expect(checkContiguous(log)).toBeUndefined();
      const { members: memberIds, body } = chordNodes(events);
      const succeeded = countByNode(events, 'NodeSucceeded');
      expect(memberIds.filter((id) => succeeded.get(id) !== 1)).toEqual([]);
      expect(succeeded.size).toBe(MEMBERS + 1);
      expect(ofType(events, 'NodeFailed')).toEqual([]);
      expect(ofType(events, 'NodeCompletionFenced')).toEqual([]);
      expect(ofType(events, 'NodeLeaseExpired')).toEqual([]);

      // No double body: ready once (after the last member), run once, one end of the run.
      expect(countByNode(events, 'NodeReady').get(body)).toBe(1);
      expect(countByNode(events, 'NodeStarted').get(body)).toBe(1);
      expect(succeeded.get(body)).toBe(1);
      expect(events.findIndex((e) => e.type === 'NodeReady' && e.nodeId === body)).toBeGreaterThan(events.findLastIndex((e) => e.type === 'NodeSucceeded' && e.nodeId !== body));
      expect(ofType(events, 'WorkflowSucceeded')).toHaveLength(1);
      // The run ends with its result; only late, fenced completions may follow the end.
      const end = events.findIndex((e) => e.type === 'WorkflowSucceeded');
      expect(events[end]).toMatchObject({ type: 'WorkflowSucceeded', result });
      expect(events.slice(end + 1).filter((e) => e.type !== 'NodeCompletionFenced')).toEqual([]);

      // Proof 1: every wave ran at once in WIDTH processes.
      const started = ofType(events, 'NodeStarted');
      for (let wave = 0; wave < WAVES; wave++) {
        const ids = new Set(result.filter((m) => m.wave === wave).map((m) => memberIds[m.i]!));
        expect(ids.size, `wave ${wave}`).toBe(WIDTH);
        expect(new Set(result.filter((m) => m.wave === wave).map((m) => m.pid)).size, `pids of wave ${wave}`).toBe(WIDTH);
        expect(new Set(started.filter((e) => ids.has(e.nodeId)).map((e) => e.worker)).size, `workers of wave ${wave}`).toBe(WIDTH);
        const lastStart = events.findLastIndex((e) => e.type === 'NodeStarted' && ids.has(e.nodeId));
        const firstDone = events.findIndex((e) => e.type === 'NodeSucceeded' && ids.has(e.nodeId));
        expect(lastStart, `wave ${wave}: all started before the first finished`).toBeLessThan(firstDone);
      }
      // Proof 2: the store refused racing appends, and the losers decided again.
      expect(conflicts.length).toBeGreaterThan(0);
    }, 90_000);
  });
}

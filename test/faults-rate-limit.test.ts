// The global rate limit holds across worker processes: 3 real `lovage worker` processes share one
// store and a task limited to 20 a second; 100 members of a group. In every window of one second
// (by when the task ran: all processes are on this machine's clock; less a slack, see SLACK) at most 20 members run, the work
// is spread over the processes, every wait is in the log as NodeDeferred, and the processes share the
// store's turns (about one hand-back a refused node).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { explainRun, FaultHarness, history, ofType } from './support/fault-harness.ts';
import { storeCases } from './support/fault-stores.ts';

const LIMIT = 20;
const PERIOD = 1000;
const MEMBERS = 100;
/**
 * The tolerance, in time: permits come in bursts (up to 20 within a few ms, once a second), and a task
 * runs a moment after its permit is granted — a moment that varies (a worker's event loop may be busy
 * with a synchronous SQLite call; on a loaded 2-core CI machine one task of a burst once ran over 100 ms
 * after its permit, and a window of 900 ms held 21). So windows of a second minus this slack are
 * counted: a limit that did not hold across processes (20 a second in each of 3) would put about 45 in one.
 */
const SLACK = 250;

for (const row of storeCases) {
  describe(`global rate limit (${row.name})`, () => {
    let h: FaultHarness;
    beforeEach(() => {
      h = new FaultHarness();
    });
    afterEach(() => h.dispose());

    it(`3 worker processes start at most ${LIMIT} a second between them`, async (ctx) => {
      const { store, tasks, workers } = await h.open(ctx, row);
      // Two slots a process and 150 ms a task: no process can take the whole group, so all three share
      // the limit. (With eight slots and instant tasks, the first process to claim could take every
      // member, be refused a permit and hand them back for later, before the others' first poll.)
      await Promise.all([0, 1, 2].map((i) => workers.start(`rate-${i}`, ['-c', '2'])));
      const run = await tasks.limited.map(Array.from({ length: MEMBERS }, (_, i) => i)).applyAsync({ runId: `rate-${row.name}` });
      await workers.waitFor(async () => (await store.getRun(run.id))?.status !== 'running', 'the rate-limited run to end', 60_000, () => explainRun(store, run.id));
      const results = (await run.get({ timeoutMs: 1000 })) as { i: number; pid: number; t: number }[];
      expect(results.map((r) => r.i)).toEqual(Array.from({ length: MEMBERS }, (_, i) => i));
      const events = await history(store, run.id);
      const ran = results.map((r) => r.t).sort((a, b) => a - b);
      let worst = 0;
      for (let i = 0, j = 0; i < ran.length; i++) {
        while (ran[i]! - ran[j]! >= PERIOD - SLACK) j++;
        worst = Math.max(worst, i - j + 1);
      }
      expect(worst).toBeLessThanOrEqual(LIMIT);
      expect(ran.at(-1)! - ran[0]!).toBeGreaterThanOrEqual(((MEMBERS / LIMIT) - 1) * PERIOD * 0.95);
      expect(new Set(results.map((r) => r.pid)).size).toBeGreaterThan(1);
      expect(ofType(events, 'NodeDeferred').length).toBeGreaterThan(0);
      expect(ofType(events, 'NodeDeferred').every((e) => /rate limit/.test(e.reason))).toBe(true);
      // The store's turns are shared by the three processes: about one hand-back a node over the first 20
      // (80-98 measured alone; 179 once on Redis with the whole suite and another test run beside it on two
      // cores: a node claimed late misses its turn; 85-150 when each process planned its own turns,
      // 261-395 with no turns at all, on a quiet machine).
      expect(ofType(events, 'NodeDeferred').length).toBeLessThanOrEqual(2.5 * (MEMBERS - LIMIT));
      console.log(`rate limit (${row.name}): worst window of ${PERIOD - SLACK} ms: ${worst} starts (limit ${LIMIT}); ${ofType(events, 'NodeDeferred').length} deferrals; ${ran.at(-1)! - ran[0]!} ms for ${MEMBERS}`);
    });
  });
}

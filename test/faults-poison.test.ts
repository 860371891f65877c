// The poison task: it kills its worker process every time it runs. Its lease runs out, another
// worker takes it, and it kills that one too. With `maxLeaseExpiries: 2` it must run exactly 3
// times and then be recorded as failed with WorkerLostError — no endless requeue, even though its
// retry policy (max 5) would allow more: a lost lease is not a failure the task reported.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { explainRun, FaultHarness, history, ofType } from './support/fault-harness.ts';
import { storeCases } from './support/fault-stores.ts';

const FLAGS = ['-c', '1', '--lease-ms', '600'];

for (const row of storeCases) {
  describe(`poison task (${row.name})`, () => {
    let h: FaultHarness;
    beforeEach(() => {
      h = new FaultHarness();
    });
    afterEach(() => h.dispose());

    it('a task that kills its worker every time ends failed (WorkerLostError) after maxLeaseExpiries + 1 runs', async (ctx) => {
      const { store, tasks, workers } = await h.open(ctx, row);
      const run = await tasks.poison.applyAsync([h.dir], { runId: `poison-${row.name}` });
      const explain = () => explainRun(store, run.id);
      // Keep one worker alive: start another whenever the last one died.
      let k = 0;
      await workers.waitFor(async () => {
        if (!workers.procs.some((p) => p.alive())) await workers.start(`poison-${k++}`, FLAGS, false);
        return (await store.getRun(run.id))?.status !== 'running';
      }, 'the poison run to end', 60_000, explain);

      const attempts = readFileSync(join(h.dir, 'poison'), 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[0]));
      expect(attempts).toEqual([1, 2, 3]);
      const events = await history(store, run.id);
      expect(ofType(events, 'NodeLeaseExpired').map((e) => e.attempt)).toEqual([1, 2, 3]);
      expect(ofType(events, 'NodeStarted').map((e) => e.attempt)).toEqual([1, 2, 3, 4]);
      expect(ofType(events, 'NodeRetryScheduled')).toEqual([]);
      expect(ofType(events, 'NodeFailed')).toMatchObject([{ attempt: 4, error: { name: 'WorkerLostError' } }]);
      expect(events.at(-1)).toMatchObject({ type: 'WorkflowFailed', error: { name: 'WorkerLostError' } });
      expect(existsSync(join(h.dir, 'poison'))).toBe(true);
    });
  });
}

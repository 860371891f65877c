// The zombie worker: a worker process is frozen (SIGSTOP) while it runs a task, past its lease;
// another worker takes the node and finishes the run; then the first is thawed (SIGCONT), finishes
// its task and reports. Its late completion must be fenced by its lease token — recorded as
// NodeCompletionFenced, never as a second outcome. Only the recorded history is asserted.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countByNode, explainRun, FaultHarness, history, ofType } from './support/fault-harness.ts';
import { storeCases } from './support/fault-stores.ts';

const FLAGS = ['-c', '1', '--lease-ms', '1000'];

for (const row of storeCases) {
  describe(`zombie worker (${row.name})`, () => {
    let h: FaultHarness;
    beforeEach(() => {
      h = new FaultHarness();
    });
    afterEach(() => h.dispose());

    it('a worker paused past its lease is fenced: NodeCompletionFenced with its token, one outcome, the second worker\'s result', async (ctx) => {
      const { store, tasks, workers } = await h.open(ctx, row);
      const a = await workers.start('zombie-A', FLAGS);
      // Attempt 1 runs 4 s and ignores the abort signal, so it finishes even after losing its lease.
      const run = await tasks.stall.applyAsync([h.dir, 4000], { runId: `zombie-${row.name}` });
      await workers.waitFor(() => existsSync(join(h.dir, 'started-1')), 'attempt 1 to start in worker A');
      a.child.kill('SIGSTOP');

      // B takes the node once A's lease has expired (on the store's clock) and finishes the run
      // while A is still frozen.
      const b = await workers.start('zombie-B', FLAGS);
      const explain = () => explainRun(store, run.id);
      await workers.waitFor(async () => (await store.getRun(run.id))?.status !== 'running', 'worker B to finish the run', 45_000, explain);
      const result = await run.get({ timeoutMs: 1000 });
      expect(result).toEqual({ attempt: 2, pid: b.child.pid });
      expect(a.alive()).toBe(true);
      expect(readFileSync(join(h.dir, 'started-1'), 'utf8')).toBe(String(a.child.pid));
      expect(readFileSync(join(h.dir, 'started-2'), 'utf8')).toBe(String(b.child.pid));

      // Thaw A: its task finishes, its completion reaches the store late and is fenced.
      a.child.kill('SIGCONT');
      await workers.waitFor(async () => (await history(store, run.id)).some((e) => e.type === 'NodeCompletionFenced'), 'the late completion of worker A to be recorded', 30_000, explain);

      const events = await history(store, run.id);
      expect(events.map((e) => e.type)).toEqual([
        'WorkflowSubmitted', 'NodeReady',
        'NodeStarted', 'NodeLeaseExpired', 'NodeStarted', 'NodeSucceeded', 'WorkflowSucceeded',
        'NodeCompletionFenced',
      ]);
      const [startedA, startedB] = ofType(events, 'NodeStarted');
      const nodeId = startedA!.nodeId;
      expect(startedA).toMatchObject({ nodeId, attempt: 1, worker: 'zombie-A' });
      expect(startedB).toMatchObject({ nodeId, attempt: 2, worker: 'zombie-B' });
      expect(startedB!.leaseToken).not.toBe(startedA!.leaseToken);
      expect(ofType(events, 'NodeLeaseExpired')).toMatchObject([{ nodeId, attempt: 1, worker: 'zombie-A' }]);

      // The late completion: A's attempt, A's lease token, a success — kept for the record only.
      expect(ofType(events, 'NodeCompletionFenced')).toMatchObject([{ nodeId, attempt: 1, leaseToken: startedA!.leaseToken, outcome: 'succeeded' }]);
      // Exactly one outcome, B's; the run's result is B's.
      expect(countByNode(events, 'NodeSucceeded')).toEqual(new Map([[nodeId, 1]]));
      expect(ofType(events, 'NodeSucceeded')).toMatchObject([{ nodeId, attempt: 2, result: { attempt: 2, pid: b.child.pid } }]);
      expect(ofType(events, 'WorkflowSucceeded')).toMatchObject([{ result: { attempt: 2, pid: b.child.pid } }]);
      expect(await run.status()).toBe('succeeded');
      expect(await run.get({ timeoutMs: 1000 })).toEqual({ attempt: 2, pid: b.child.pid });

      // The zombie survived its fencing as a working worker: it stops cleanly on SIGTERM.
      a.child.kill('SIGTERM');
      expect(await a.exited).toEqual({ code: 0, signal: null });
    }, 90_000);
  });
}

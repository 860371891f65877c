// The server goes down in the middle of a run: a private Postgres stopped in immediate mode (no
// shutdown checkpoint; WAL replay on start) or a private Redis killed with SIGKILL (AOF fsynced on
// every write; replayed on start), down for a while, then started again on the same port and data.
// The worker processes must survive the outage (they back off and retry), reconnect, and finish the
// run; nothing recorded before the crash may be lost, nothing may be recorded twice.
// Each test starts its OWN server (test/support/private-servers.ts): the shared servers on
// 5432/6379 are never stopped, restarted or reconfigured.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chord, group, type StoredEvent } from '../src/index.ts';
import { checkContiguous, chordNodes, countByNode, explainRun, FaultHarness, ofType } from './support/fault-harness.ts';
import { postgresBin, redisServerBin, startDurableRedis, startPrivatePostgres, stopAllPrivateServers, type PrivateServer } from './support/private-servers.ts';
import { selected } from './support/fault-stores.ts';
import { servicesRequired } from './support/services.ts';

const MEMBERS = 1500;
const WORKERS = 3;
const FLAGS = ['-c', '4', '--lease-ms', '2000'];
const DOWN_MS = 2000;

const rows = selected([
  { name: 'postgres', installed: postgresBin(), start: startPrivatePostgres, store: (s: PrivateServer) => `${s.url}?schema=lovage_restart` },
  { name: 'redis', installed: redisServerBin, start: startDurableRedis, store: (s: PrivateServer) => `${s.url}?prefix=lovage-restart:` },
] as const);

const succeededIn = (log: readonly StoredEvent[]) => log.filter((s) => s.event.type === 'NodeSucceeded').length;

for (const row of rows) {
  describe(`${row.name} restarted mid-run`, () => {
    let h: FaultHarness;
    let server: PrivateServer | undefined;
    beforeEach(() => {
      h = new FaultHarness();
      server = undefined;
    });
    afterEach(async () => {
      try {
        await h.dispose();
      } finally {
        await server?.stop();
        await stopAllPrivateServers();
      }
    });

    it('workers reconnect with backoff, the run completes, nothing lost or doubled', async (ctx) => {
      if (!row.installed) {
        if (servicesRequired) throw new Error(`${row.name} server binaries are not installed; LOVAGE_REQUIRE_SERVICES=1 requires them`);
        ctx.skip(`${row.name} server binaries are not installed`);
      }
      server = await row.start();
      const { store, tasks, workers } = await h.open(ctx, { name: row.name, url: row.store(server) });
      const members = Array.from({ length: MEMBERS }, (_, i) => tasks.tick.s(i));
      const run = await chord(group(members), tasks.total.s()).applyAsync({ runId: `restart-${row.name}` });
      const t0 = Date.now();
      await Promise.all(Array.from({ length: WORKERS }, (_, i) => workers.start(`restart-${i}`, FLAGS)));

      // Wait for the run to be well under way (about 200 members done: 1 + MEMBERS NodeReady, then
      // NodeStarted + NodeSucceeded per member), then crash the server under it.
      await workers.waitFor(async () => ((await store.getRun(run.id))?.version ?? 0) > 1 + MEMBERS + 400, 'the run to get under way');
      const before = await store.readStream(run.id);
      expect(succeededIn(before), 'members done before the crash').toBeGreaterThan(0);
      expect(succeededIn(before), 'the run must still be running when the server crashes').toBeLessThan(MEMBERS);
      const crashAt = Date.now() - t0;
      await server.restart(DOWN_MS);
      const upAt = Date.now() - t0;

      // The test's own store reconnects too; until it does, a poll that fails is "not yet".
      const finished = async () => {
        try {
          return (await store.getRun(run.id))?.status !== 'running';
        } catch {
          return false;
        }
      };
      await workers.waitFor(finished, `run ${run.id} to finish after the restart`, 60_000, () => explainRun(store, run.id));
      const doneAt = Date.now() - t0;
      const result = await run.get({ timeoutMs: 5000 });
      const log = await store.readStream(run.id);
      const events = log.map((s) => s.event);
      console.log(`${row.name} restart: ${succeededIn(before)} of ${MEMBERS} members done before the crash; ${log.length} events; ` +
        `${ofType(events, 'NodeLeaseExpired').length} leases expired, ${ofType(events, 'NodeCompletionFenced').length} completions fenced; ` +
        `crashed after ${crashAt} ms, up again after ${upAt} ms, run done after ${doneAt} ms`);

      // The workers lived through it: they reported the outage and are still running.
      expect(workers.outputs()).toMatch(/lovage worker restart-\d+: /);
      expect(workers.procs.filter((p) => !p.alive()).map((p) => p.name)).toEqual([]);

      // Nothing lost: the log read before the crash is still its prefix, and the log has no gap.
      expect(log.slice(0, before.length)).toEqual(before);
      expect(log.length).toBeGreaterThan(before.length);
      expect(checkContiguous(log)).toBeUndefined();

      // Nothing doubled: each member recorded once, the body ready once and recorded once.
      expect(result).toEqual({ count: MEMBERS, sum: (MEMBERS * (MEMBERS - 1)) / 2, inOrder: true });
      const { members: memberIds, body } = chordNodes(events);
      const succeeded = countByNode(events, 'NodeSucceeded');
      expect(memberIds.filter((id) => succeeded.get(id) !== 1)).toEqual([]);
      expect(succeeded.size).toBe(MEMBERS + 1);
      expect(ofType(events, 'NodeFailed')).toEqual([]);
      expect(countByNode(events, 'NodeReady').get(body)).toBe(1);
      expect(succeeded.get(body)).toBe(1);
      expect(ofType(events, 'WorkflowSucceeded')).toHaveLength(1);
      // The run ends with its result; only late, fenced completions may follow the end.
      const end = events.findIndex((e) => e.type === 'WorkflowSucceeded');
      expect(events[end]).toMatchObject({ type: 'WorkflowSucceeded', result });
      expect(events.slice(end + 1).filter((e) => e.type !== 'NodeCompletionFenced')).toEqual([]);
    }, 120_000);
  });
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, LovageError, type App } from '../src/index.ts';
import type { SqliteStore } from '../src/eventstore/sqlite.ts';

describe('a malformed log quarantines its run; other runs go on', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lovage-q-'));
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [what, data] of [
    ['unreadable JSON', '{"type": "NodeSucc'],
    ['an unknown event type', JSON.stringify({ type: 'NodeTeleported', at: 0, nodeId: '0' })],
    ['an event the lifecycle forbids', JSON.stringify({ type: 'NodeSucceeded', at: 0, nodeId: '0', attempt: 1, result: 1 })],
  ] as const) {
    it(`with ${what}`, async () => {
      const errors: unknown[] = [];
      app = createApp({ store: `sqlite:${join(dir, `${what.replace(/\W/g, '')}.db`)}` });
      const sleepy = app.task('sleepy', async (n: number) => n);
      const bad = await sleepy.delay(1);
      const good = await sleepy.delay(2);
      const store = (await app.store()) as SqliteStore;
      // Corrupt the first run's log behind the engine's back, after its NodeReady.
      store.db.prepare('INSERT INTO events (run_key, version, type, at, data) SELECT run_key, 3, ?, 0, ? FROM runs WHERE run_id = ?').run('X', data, bad.id);
      app.worker({ concurrency: 2, onError: (e) => errors.push(e) });
      expect(await good.get({ timeoutMs: 10_000 })).toBe(2);
      const refused = await bad.get({ timeoutMs: 10_000 }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'CORRUPT_LOG' });
      expect((refused as Error).message).toContain(`run ${bad.id} is quarantined: run ${bad.id} event 3`);
      expect(await bad.status()).toBe('quarantined');
      // Out of the ready queue: nothing claims it again.
      expect(await store.claim({ queues: ['default'], limit: 10, worker: 'x', leaseMs: 1 })).toEqual([]);
      const quarantine = errors.find((e): e is LovageError => e instanceof LovageError && e.code === 'CORRUPT_LOG');
      expect(quarantine?.message).toContain(`run ${bad.id} is quarantined: run ${bad.id} event 3`);
    });
  }
});

describe('a log whose DAG makes deciding throw quarantines its run; the worker goes on with the others', () => {
  it.each([
    ['a result expression that is not one ({})', { result: {} }],
    ['nodes that are not a list', { nodes: { 0: 'a' } }],
  ])('%s: the run is quarantined, not retried for good', async (_what, damage) => {
    const app = createApp({ store: 'memory:' });
    try {
      const errors: unknown[] = [];
      const a = app.task('a', (x: number) => x + 1);
      const store = await app.store();
      // Appended behind the engine's back (an import checks DAGs).
      const dag = { nodes: [{ id: '0', task: 'a', args: [1], immutable: false, input: null, queue: 'default', priority: 0 }], result: { ref: '0' }, ...damage };
      await store.append([{ runId: 'crafted', expectedVersion: 0, events: [
        { type: 'WorkflowSubmitted', at: 1, dag } as never,
        { type: 'NodeReady', at: 1, nodeId: '0', task: 'a', args: [1], queue: 'default', priority: 0 },
      ] }]);
      app.worker({ pollMs: 5, onError: (e) => errors.push(e) });
      expect(await (await a.s(41).applyAsync()).get({ timeoutMs: 5000 })).toBe(42);
      const crafted = app.run('crafted');
      await expect(crafted.get({ timeoutMs: 5000 })).rejects.toMatchObject({ code: 'CORRUPT_LOG' });
      expect(await crafted.status()).toBe('quarantined');
      expect(errors.filter((e) => !(e instanceof LovageError && e.code === 'CORRUPT_LOG'))).toEqual([]);
    } finally {
      await app.close();
    }
  });
});

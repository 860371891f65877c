// Which submitted runs an app keeps in its coordinator's cache: a run it submits is cached only while
// the app runs a worker. A process that only submits (a web server) never sees its runs finish, so it
// would keep every one (about 2 KB a node, up to the cache's million nodes).
// The cached DAG holds the run's own copy of the arguments, never the caller's objects.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/eventstore/memory.ts';
import type { EventStore } from '../src/eventstore/store.ts';
import { chain, createApp } from '../src/index.ts';
import { Coordinator } from '../src/workers/coordinator.ts';
import { compile } from '../src/canvas/compile.ts';

/** The store, with the run ids its readStream was called for. */
function countingReads(store: EventStore): { store: EventStore; reads: string[] } {
  const reads: string[] = [];
  const readStream = store.readStream.bind(store);
  store.readStream = (runId, from) => (reads.push(runId), readStream(runId, from));
  return { store, reads };
}

/** Waits until every run succeeded, by the runs projection (a run handle's get() would read the log). */
async function succeeded(store: EventStore, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    for (let i = 0; (await store.getRun(id))?.status !== 'succeeded'; i++) {
      if (i > 5000) throw new Error(`run ${id} did not succeed`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }
}

const dag = compile({ kind: 'signature', task: 't', args: [], immutable: false, options: {} });

describe('the submit cache', () => {
  it('a coordinator caches what it submits unless told not to', async () => {
    let keep = false;
    const coordinator = new Coordinator(new MemoryStore(), { cacheSubmits: () => keep });
    await coordinator.submit('a', dag, 1);
    expect(coordinator.cachedRuns).toBe(0);
    keep = true;
    await coordinator.submit('b', dag, 1);
    expect(coordinator.cachedRuns).toBe(1);
    expect(new Coordinator(new MemoryStore()).cachedRuns).toBe(0);
  });

  it('an app without a worker keeps none of its runs; once it runs one, its submits are cached and never read', async () => {
    const { store, reads } = countingReads(new MemoryStore());
    const app = createApp({ store });
    const add = app.task('add', (a: number, b: number) => a + b);
    try {
      const before = await Promise.all([1, 2, 3].map((n) => add.delay(n, n)));
      app.worker({ concurrency: 4 });
      await succeeded(store, before.map((r) => r.id));
      // Submitted with no worker: not cached, so the worker read each run before recording its outcome.
      expect(reads.filter((id) => before.some((r) => r.id === id)).sort()).toEqual(before.map((r) => r.id).sort());

      const after = await Promise.all([4, 5].map((n) => add.delay(n, n)));
      await succeeded(store, after.map((r) => r.id));
      expect(reads.filter((id) => after.some((r) => r.id === id))).toEqual([]);
      expect(await Promise.all([...before, ...after].map((r) => r.get()))).toEqual([2, 4, 6, 8, 10]);
    } finally {
      await app.close();
    }
  });
});

describe('the cached DAG is the run\'s own: the log is the source of truth', () => {
  it('compile copies arguments: objects are not the caller\'s, -0 is 0 as on every serializing store', () => {
    const arg = { n: [1] };
    const args = [arg, -0];
    const { nodes } = compile({ kind: 'signature', task: 't', args, immutable: false, options: {} });
    expect(nodes[0]!.args).toEqual([{ n: [1] }, 0]);
    expect(Object.is(nodes[0]!.args[1], 0)).toBe(true);
    expect(nodes[0]!.args).not.toBe(args);
    expect(nodes[0]!.args[0]).not.toBe(arg);
    const flat = [1, 'x'];
    expect(compile({ kind: 'signature', task: 't', args: flat, immutable: false, options: {} }).nodes[0]!.args).not.toBe(flat);
  });

  for (const store of ['sqlite::memory:', 'memory:']) {
    it(`changing an argument after submit changes neither what a later step receives nor the log (${store})`, async () => {
      const app = createApp({ store });
      try {
        const echo = app.task('echo', (...xs: unknown[]) => xs);
        app.worker({ pollMs: 5 });
        const arg = { n: 1 };
        const raw = [arg];
        const run = await chain(echo.s(0).set({ countdown: 100 }), echo.s(arg) as never).applyAsync();
        const step = (args: unknown[], options = {}) => ({ kind: 'signature', task: 'echo', args, immutable: false, options }) as const;
        const rawRun = await app.submit({ kind: 'chain', steps: [step([0], { countdown: 100 }), step(raw)] });
        arg.n = 2; // after the submits returned, while the first steps wait
        raw.push({ n: 3 });
        expect(await run.get({ timeoutMs: 3000 })).toEqual([[0], { n: 1 }]);
        expect(await rawRun.get({ timeoutMs: 3000 })).toEqual([[0], { n: 1 }]);
        expect((await app.runs.verify(run.id)).differences).toEqual([]);
        expect((await app.runs.verify(rawRun.id)).differences).toEqual([]);
      } finally {
        await app.close();
      }
    });
  }
});

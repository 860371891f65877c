// Hooks (docs/tasks.md, Hooks): when each fires, in which process, and what it may change (nothing).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, group, type App } from '../src/index.ts';

for (const store of ['memory:', 'sqlite::memory:']) {
  describe(`hooks on ${store}`, () => {
    let app: App;
    afterEach(() => app.close());

    it('runFinished fires once, in the submitting process, for a run that ends at its submit (an empty group)', async () => {
      app = createApp({ store });
      const finished: string[] = [];
      app.on('runFinished', ({ runId }) => void finished.push(runId));
      app.worker({ concurrency: 1, pollMs: 10 });
      const run = await app.submit(group([]));
      expect(finished).toEqual([run.id]); // fired by the submit itself
      expect(await run.get({ timeoutMs: 5000 })).toEqual([]);
      expect((await app.runs.history(run.id)).map((e) => e.event.type)).toEqual(['WorkflowSubmitted', 'WorkflowSucceeded']);
      await sleep(100);
      expect(finished).toEqual([run.id]);
    });

    it('runFinished fires for a run that ends at its submit in a process with no worker too', async () => {
      app = createApp({ store });
      const finished: string[] = [];
      app.on('runFinished', ({ runId }) => void finished.push(runId));
      const run = await app.submit(group([]));
      expect(finished).toEqual([run.id]);
    });
  });
}

for (const store of ['memory:', 'sqlite::memory:']) {
  describe(`hook payloads on ${store}`, () => {
    let app: App;
    afterEach(() => app.close());

    it("a hook that writes to its payload changes neither the task's args nor the recorded result or error", async () => {
      app = createApp({ store });
      let seen = '';
      const echo = app.task('echo', (o: { x: string }) => ((seen = o.x), { got: o.x }));
      const boom = app.task('boom', (o: { x: string }) => { throw new Error(`boom ${o.x}`); });
      app.on('taskPrerun', (p) => { (p.args[0] as { x: string }).x = 'changed by taskPrerun'; });
      app.on('taskPostrun', (p) => {
        if (p.result) (p.result as { got: string }).got = 'changed by taskPostrun';
        (p.args[0] as { x: string }).x = 'changed by taskPostrun';
        if (p.error) (p.error as { message: string }).message = 'changed by taskPostrun';
      });
      app.on('taskFailure', (p) => { (p.error as { message: string }).message = 'changed by taskFailure'; });
      app.worker({ concurrency: 1, pollMs: 10 });
      const run = await echo.delay({ x: 'original' });
      const result = await run.get({ timeoutMs: 5000 });
      const failed = await boom.delay({ x: 'original' });
      await expect(failed.get({ timeoutMs: 5000 })).rejects.toThrow(/boom original/);
      const log = JSON.stringify([...await app.runs.history(run.id), ...await app.runs.history(failed.id)].map((e) => e.event));
      expect({ seen, result, changed: log.match(/changed by \w+/g) }).toEqual({ seen: 'original', result: { got: 'original' }, changed: null });
    });
  });
}

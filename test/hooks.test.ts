// Hooks (docs/tasks.md, Hooks): when each fires, in which process, and what it may change (nothing).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, group, taskContext, type App } from '../src/index.ts';

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

for (const store of ['memory:', 'sqlite::memory:']) {
  describe(`hooks of an attempt whose outcome is fenced, on ${store}`, () => {
    let app: App;
    afterEach(() => app.close());

    // The attempt gives up after its run was cancelled: its failure is fenced (NodeCompletionFenced),
    // never retried nor recorded as the node's failure, so no hook says it was.
    for (const retry of [true, false]) {
      it(`${retry ? 'taskRetry' : 'taskFailure'} and taskPostrun do not fire; taskPostrun fires for recorded attempts only`, async () => {
        app = createApp({ store });
        let started = false;
        const flaky = app.task('flaky', async () => {
          started = true;
          const { signal } = taskContext();
          await new Promise((r) => signal.addEventListener('abort', r));
          throw new Error('gave up after the abort');
        }, retry ? { retry: { max: 3, delay: 10, jitter: false } } : {});
        const ok = app.task('ok', () => 'fine');
        const said: string[] = [];
        app.on('taskRetry', () => void said.push('retry'));
        app.on('taskFailure', () => void said.push('failure'));
        app.on('taskPostrun', (p) => void said.push(`postrun ${p.task} ${p.state}`));
        app.worker({ concurrency: 1, pollMs: 10 });
        const run = await flaky.delay();
        while (!started) await sleep(5);
        await app.runs.cancel(run.id, 'stop');
        await expect(run.get({ timeoutMs: 5000 })).rejects.toMatchObject({ code: 'CANCELLED' });
        expect(await (await ok.delay()).get({ timeoutMs: 5000 })).toBe('fine');
        await sleep(100);
        const types = (await app.runs.history(run.id)).map((e) => e.event.type);
        expect(types).toContain('NodeCompletionFenced');
        expect(types).not.toContain('NodeRetryScheduled');
        expect(said).toEqual(['postrun ok succeeded']);
      });
    }
  });
}

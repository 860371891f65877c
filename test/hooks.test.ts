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

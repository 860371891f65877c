// Importing exported runs (app.runs.import): what moves between stores, and the edited or damaged
// exports that are refused, naming the line, before anything is written.
import { createHash } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { chain, createApp, type App } from '../src/index.ts';
import { everyStore } from './support/every-store.ts';

const { stores, dir, cleanup } = await everyStore('runimport');
afterAll(cleanup);
const apps: App[] = [];
afterEach(async () => { for (const a of apps.splice(0)) await a.close(); });
const open = (store: string) => { const app = createApp({ store }); apps.push(app); return app; };
const sqlite = (name: string) => `sqlite:${dir}/${name}-${Math.random().toString(36).slice(2)}.db`;

for (const [name, url] of stores) {
  describe(`export/import of a resumed run on ${name}`, () => {
    it('an untouched export of a run that was resumed imports (two NodeReady for one node)', async () => {
      const app = open(url());
      let fail = true;
      const a = app.task('a', (x: number) => x + 1);
      const b = app.task('b', (x: number) => { if (fail) throw new Error('not yet'); return x * 10; });
      app.worker();
      const run = await chain(a.s(1), b.s()).applyAsync();
      await expect(run.get({ timeoutMs: 5000 })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      fail = false;
      expect(await (await app.runs.resume(run.id)).get({ timeoutMs: 5000 })).toBe(20);
      const text = await app.runs.export(run.id);
      const copy = await app.runs.import(text, { runId: 'copy' });
      expect((await app.inspect(copy)).status).toBe('succeeded');
      expect(await app.runs.export(copy)).toBe(text.replace(`"runId":"${run.id}"`, '"runId":"copy"'));
    });
  });
}

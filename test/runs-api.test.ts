// The runs API's refusals and hooks: what prune may delete, what inspect's `at` may be, and the end
// of a run part of which was cancelled.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { chord, createApp, type App } from '../src/index.ts';
import { everyStore } from './support/every-store.ts';

const { dir, cleanup } = await everyStore('runsapi');
afterAll(cleanup);
const apps: App[] = [];
afterEach(async () => { for (const a of apps.splice(0)) await a.close(); });
const open = (store: string) => { const app = createApp({ store }); apps.push(app); return app; };
const sqlite = (name: string) => `sqlite:${dir}/${name}-${Math.random().toString(36).slice(2)}.db`;

describe('prune', () => {
  it('never deletes running runs, whatever status is passed; unknown statuses are refused too', async () => {
    const app = open(sqlite('prune'));
    app.task('t', (x: number) => x);
    const running = await app.submit({ kind: 'signature', task: 't', args: [1], immutable: false, options: { queue: 'nobody' } });
    await new Promise((r) => setTimeout(r, 5));
    const pruned = await app.runs.prune({ olderThan: 0, status: ['running'] }).catch((e: Error) => e);
    expect(pruned).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/status "running".*finished runs only; allowed are succeeded, failed, cancelled, quarantined/) });
    expect(await running.status()).toBe('running');
    const unknown = await app.runs.prune({ olderThan: 0, status: ['done' as 'failed'] }).catch((e: Error) => e);
    expect(unknown).toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('status "done"') });
    expect(await app.runs.prune({ olderThan: 0, status: ['succeeded', 'quarantined'] })).toBe(0);
  });
});

describe('inspect { at }', () => {
  it('refuses a version past the end and a string that is not an ISO time', async () => {
    const app = open('memory:');
    const a = app.task('a', (x: number) => x + 1);
    app.worker();
    const run = await a.delay(1);
    await run.get({ timeoutMs: 5000 });
    const n = (await app.runs.history(run.id)).length;
    expect((await app.inspect(run.id, { at: n })).version).toBe(n);
    await expect(app.inspect(run.id, { at: n + 1 })).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining(`allowed are an event version 0..${n}`) });
    for (const at of ['3', '2026', 'Nov 22 2026', '2026-11-22junk']) {
      await expect(app.inspect(run.id, { at })).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining(`at ${JSON.stringify(at)} is invalid`) });
    }
    await expect(app.inspect(run.id, { at: new Date(Number.NaN) })).rejects.toMatchObject({ code: 'VALIDATION' });
    expect((await app.inspect(run.id, { at: '2000-01-01' })).version).toBe(0);
    expect((await app.inspect(run.id, { at: new Date(Date.now() + 60_000).toISOString() })).version).toBe(n);
  });
});

describe('cancel of part of a run', () => {
  it('runFinished fires when the run then ends cancelled on a completion', async () => {
    const app = open('memory:');
    const finished: string[] = [];
    app.on('runFinished', ({ runId }) => { finished.push(runId); });
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const started: number[] = [];
    const m = app.task('m', async (i: number) => { started.push(i); await gate; return i; });
    const sum = app.task('sum', (xs: number[]) => xs.reduce((p, q) => p + q, 0));
    app.worker({ concurrency: 4 });
    const run = await chord([m.s(0), m.s(1)], sum.s()).applyAsync();
    while (started.length < 2) await new Promise((r) => setTimeout(r, 5));
    await app.runs.cancel(run.id, 'drop member 0', { nodes: ['0.header.0'] });
    expect(await run.status()).toBe('running'); // member 1 still runs
    release();
    await expect(run.get({ timeoutMs: 5000 })).rejects.toMatchObject({ code: 'CANCELLED' });
    await new Promise((r) => setTimeout(r, 100));
    expect(finished).toEqual([run.id]);
  });
});

describe('prune of a run with a node in flight', () => {
  for (const store of ['memory:', 'sqlite']) {
    it(`the node's late outcome is dropped, not reported as a quarantine (${store})`, async () => {
      const app = open(store === 'sqlite' ? sqlite('inflight') : store);
      const errors: unknown[] = [];
      let release!: () => void;
      const gate = new Promise<void>((r) => { release = r; });
      let started = false;
      const slow = app.task('slow', async () => { started = true; await gate; return 1; });
      app.worker({ onError: (e) => errors.push(e), pollMs: 10 });
      const run = await slow.delay();
      while (!started) await new Promise((r) => setTimeout(r, 5));
      await app.runs.cancel(run.id, 'not needed'); // the task runs on; its outcome will be fenced
      expect(await app.runs.prune({ olderThan: 0, status: ['cancelled'] })).toBe(1);
      release();
      await new Promise((r) => setTimeout(r, 200));
      expect({ errors, run: await (await app.store()).getRun(run.id) }).toEqual({ errors: [], run: undefined });
    });
  }
});

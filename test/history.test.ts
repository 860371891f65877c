// Issue "the history as a product": resume, cancel, replay, verify, export/import, prune — on every store.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderRunTree } from '../src/cli/render-tree.ts';
import { decide, decideStart, type Command } from '../src/engine/decide.ts';
import type { WorkflowEvent } from '../src/engine/events.ts';
import type { RunState } from '../src/engine/state.ts';
import { chain, chord, createApp, group, LovageError, taskContext, verifyRun, type App } from '../src/index.ts';
import { everyStore } from './support/every-store.ts';

const { stores, dir, cleanup } = await everyStore('history');
let n = 0;
afterAll(cleanup);

for (const [name, url] of stores) {
  describe(`history on ${name}`, () => {
    let app: App;
    let ledger: string[];
    let flag: string;
    beforeEach(() => {
      ledger = [];
      flag = join(dir, `flag-${n++}`);
      app = createApp({ store: url() });
    });
    afterEach(() => app.close());

    const setup = () => {
      const a = app.task('a', (x: number) => (ledger.push('a'), x + 1));
      const b = app.task('b', (x: number) => {
        ledger.push('b');
        if (existsSync(flag)) throw new Error('b is not ready yet');
        return x * 10;
      });
      const c = app.task('c', (x: number) => (ledger.push('c'), x - 1));
      const member = app.task('member', (i: number) => {
        ledger.push(`m${i}`);
        if (existsSync(`${flag}-${i}`)) throw new Error(`member ${i} failed`);
        return i;
      });
      const sum = app.task('sum', (xs: number[]) => (ledger.push('sum'), xs.reduce((p, q) => p + q, 0)));
      const slow = app.task('slow', async (ms: number) => (ledger.push('slow'), await new Promise((r) => setTimeout(r, ms)), ms));
      return { a, b, c, member, sum, slow };
    };

    it('resume after a failure: a is not executed again, b and c run, the result is right', async () => {
      const { a, b, c } = setup();
      app.worker({ concurrency: 2 });
      writeFileSync(flag, '');
      const run = await chain(a.s(1), b.s(), c.s()).applyAsync();
      await expect(run.get({ timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'TASK_FAILED', details: { nodeId: '1', task: 'b' } });
      expect(ledger).toEqual(['a', 'b']);
      rmSync(flag);
      const resumed = await app.runs.resume(run.id);
      expect(await resumed.get({ timeoutMs: 10_000 })).toBe(19); // (1 + 1) * 10 - 1
      expect(ledger).toEqual(['a', 'b', 'b', 'c']);
      const history = await app.runs.history(run.id);
      const resumedEvent = history.find((e) => e.event.type === 'WorkflowResumed')!.event;
      expect(resumedEvent).toMatchObject({ type: 'WorkflowResumed', reset: ['1', '2'], nodes: [], args: {} });
      expect(history.filter((e) => e.event.type === 'NodeSucceeded' && e.event.nodeId === '0')).toHaveLength(1);
      expect((await app.runs.verify(run.id)).differences).toEqual([]);
    });

    it('a chord of 10 with 2 failed members: resume runs exactly those 2 and the body', async () => {
      const { member, sum } = setup();
      app.worker({ concurrency: 4 });
      writeFileSync(`${flag}-3`, '');
      writeFileSync(`${flag}-7`, '');
      const run = await chord(Array.from({ length: 10 }, (_, i) => member.s(i)), sum.s()).applyAsync();
      await expect(run.get({ timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(ledger.filter((l) => l === 'sum')).toEqual([]);
      expect(ledger).toHaveLength(10); // the other members still finished
      rmSync(`${flag}-3`);
      rmSync(`${flag}-7`);
      ledger.length = 0;
      expect(await (await app.runs.resume(run.id)).get({ timeoutMs: 10_000 })).toBe(45);
      expect(ledger.sort()).toEqual(['m3', 'm7', 'sum']);
    });

    it('resume can run a succeeded node again with new arguments; refuses runs that are running or succeeded', async () => {
      const { a, b, c } = setup();
      app.worker({ concurrency: 2 });
      writeFileSync(flag, '');
      const run = await chain(a.s(1), b.s(), c.s()).applyAsync();
      await expect(run.get({ timeoutMs: 10_000 })).rejects.toBeInstanceOf(LovageError);
      rmSync(flag);
      await expect(app.runs.resume(run.id, { args: { '0': [5] } })).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('"0" keeps its result (add it with --node)') });
      expect(await (await app.runs.resume(run.id, { nodes: ['0'], args: { '0': [5] } })).get({ timeoutMs: 10_000 })).toBe(59);
      await expect(app.runs.resume(run.id)).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('it succeeded; there is nothing to resume') });
      await expect(app.runs.resume('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(app.runs.retry(run.id, 'x.y')).rejects.toMatchObject({ code: 'VALIDATION' });
    });

    it('cancel stops a run: pending nodes never run, the running task is fenced; resume finishes it', async () => {
      const { slow, c } = setup();
      app.worker({ concurrency: 1 });
      const run = await chain(slow.s(300), c.s()).applyAsync();
      while (!ledger.includes('slow')) await new Promise((r) => setTimeout(r, 5));
      await app.runs.cancel(run.id, 'no longer needed');
      await expect(run.get({ timeoutMs: 5000 })).rejects.toMatchObject({ code: 'CANCELLED', message: expect.stringContaining('no longer needed') });
      await expect(app.runs.cancel(run.id)).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('only a running run can be cancelled') });
      await new Promise((r) => setTimeout(r, 500));
      const types = (await app.runs.history(run.id)).map((e) => e.event.type);
      expect(types).toContain('NodeCompletionFenced');
      expect(ledger).toEqual(['slow']);
      expect(await (await app.runs.resume(run.id)).get({ timeoutMs: 5000 })).toBe(299);
    });

    it('replay at every version is consistent with the final state', async () => {
      const { member, sum } = setup();
      app.worker({ concurrency: 3 });
      writeFileSync(`${flag}-1`, '');
      const run = await chord([member.s(0), member.s(1), member.s(2)], sum.s()).applyAsync();
      await run.get({ timeoutMs: 10_000 }).catch(() => undefined);
      rmSync(`${flag}-1`);
      await (await app.runs.resume(run.id)).get({ timeoutMs: 10_000 });
      const total = (await app.runs.history(run.id)).length;
      const final = await app.inspect(run.id);
      const order = ['pending', 'ready', 'running', 'succeeded'];
      for (let v = 0; v <= total; v++) {
        const then = await app.inspect(run.id, { at: v });
        expect(then.version).toBe(v);
        for (const [id, node] of then.nodes) {
          // Every node that has succeeded by then has the result it ends with, unless a resume reset it later.
          if (node.status === 'succeeded' && final.nodes.get(id)!.attempt === node.attempt) expect(node.result).toEqual(final.nodes.get(id)!.result);
          if (node.status !== 'failed' && node.status !== 'skipped') expect(order).toContain(node.status);
        }
      }
      const at = (await app.runs.history(run.id))[1]!.event.at;
      expect((await app.inspect(run.id, { at: new Date(at).toISOString() })).version).toBeGreaterThanOrEqual(2);
      await expect(app.inspect(run.id, { at: 'yesterday' })).rejects.toMatchObject({ code: 'VALIDATION' });
    });

    it('export → import → show round-trips byte for byte; damaged files are refused with the line', async () => {
      const { a, b, c } = setup();
      app.worker();
      const run = await chain(a.s(1), group(b.s(), c.s())).applyAsync();
      await run.get({ timeoutMs: 10_000 });
      const text = await app.runs.export(run.id);
      const copy = await app.runs.import(text, { runId: `${run.id}-copy` });
      expect(await app.runs.export(copy)).toBe(text.replace(`"runId":"${run.id}"`, `"runId":"${copy}"`));
      const show = (s: RunState) => renderRunTree(s).replace(s.runId, 'ID');
      expect(show(await app.inspect(copy))).toBe(show(await app.inspect(run.id)));
      expect((await app.runs.verify(copy)).differences).toEqual([]);
      await expect(app.runs.import(text)).rejects.toMatchObject({ code: 'CONCURRENCY', message: expect.stringContaining('--as') });
      const lines = text.trimEnd().split('\n');
      const refuse = async (damaged: string, line: number, why: string) => {
        const e = await app.runs.import(damaged, { runId: 'damaged' }).catch((x: unknown) => x);
        expect(e).toMatchObject({ code: 'VALIDATION', message: expect.stringContaining(`export line ${line}: ${why}`) });
        expect(await (await app.store()).getRun('damaged')).toBeUndefined();
      };
      await refuse(lines.slice(0, 4).join('\n'), 5, 'the file ends after 3 of');
      await refuse([...lines.slice(0, 3), lines[3]!.slice(0, 20), ...lines.slice(4)].join('\n'), 4, 'not valid JSON');
      await refuse([...lines.slice(0, 3), lines[3]!.replace(/"at":\d+/, '"at":1'), ...lines.slice(4)].join('\n'), lines.length, 'checksum mismatch');
      await refuse(text.replace('"formatVersion":1', '"formatVersion":9'), 1, 'format version 9 is not supported');
    });

    it('verify catches a deliberately changed decision rule', async () => {
      const { a, member, sum } = setup();
      app.worker({ concurrency: 3 });
      const run = await chain(a.s(1), chord([member.si(0), member.si(1)], sum.s())).applyAsync();
      await run.get({ timeoutMs: 10_000 });
      const events = (await app.runs.history(run.id)).map((e) => e.event);
      expect(verifyRun(run.id, events).differences).toEqual([]);
      // The changed rule: a chord body now receives its header results in reverse.
      const changed = (state: RunState, command: Command): WorkflowEvent[] =>
        decide(state, command).map((e) => (e.type === 'NodeReady' && e.nodeId.endsWith('.body') ? { ...e, args: [[...(e.args[0] as number[])].reverse()] } : e));
      const report = verifyRun(run.id, events, { decide: changed, decideStart });
      expect(report.differences).toHaveLength(1);
      expect(report.differences[0]).toMatchObject({ cause: expect.stringMatching(/^Complete 1\.header\.\d$/) });
    });

    it('an idempotency key: a second submit returns the same run and writes nothing', async () => {
      const { a, c } = setup();
      const first = await a.applyAsync([1], { idempotencyKey: 'order-42' });
      const store = await app.store();
      const before = await store.readAll(0, 10_000);
      const again = await a.applyAsync([1], { idempotencyKey: 'order-42' });
      const other = await app.submit(c.s(5), { idempotencyKey: 'order-42' }); // another canvas, same key
      const raced = await Promise.all([1, 2, 3].map((i) => a.applyAsync([i], { idempotencyKey: 'order-43' })));
      expect(again.id).toBe(first.id);
      expect(other.id).toBe(first.id);
      expect(new Set(raced.map((r) => r.id)).size).toBe(1);
      expect((await store.readAll(0, 10_000)).length).toBe(before.length + 2); // order-43's submit only
      app.worker();
      expect(await again.get({ timeoutMs: 10_000 })).toBe(2);
      expect(ledger).toEqual(expect.arrayContaining(['a']));
      const key = app.task('key', () => taskContext().idempotencyKey);
      const keyed = await key.delay();
      expect(await keyed.get({ timeoutMs: 10_000 })).toBe(`${keyed.id}/0`);
      await expect(app.submit(c.s(1), { idempotencyKey: '', runId: 'x' })).rejects.toMatchObject({ code: 'VALIDATION' });
      await expect(app.submit(c.s(1), { idempotencyKey: '' })).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('strings of 1-200 characters') });
    });

    it('prune deletes finished runs older than the cut, and nothing else', async () => {
      const { a } = setup();
      app.worker();
      const done = await a.delay(1);
      await done.get({ timeoutMs: 5000 });
      const running = await app.submit({ kind: 'signature', task: 'slow', args: [60_000], immutable: false, options: { queue: 'nobody' } });
      expect(await app.runs.prune({ olderThan: '1h' })).toBe(0);
      await new Promise((r) => setTimeout(r, 20));
      expect(await app.runs.prune({ olderThan: '10ms' })).toBe(1);
      expect(await (await app.store()).getRun(done.id)).toBeUndefined();
      expect(await running.status()).toBe('running');
      await expect(app.runs.prune({ olderThan: 'a week' })).rejects.toMatchObject({ code: 'VALIDATION' });
    });
  });
}

describe('resultExpires', () => {
  it('the workers of an app delete succeeded runs after resultExpires, and nothing else', async () => {
    const app = createApp({ store: 'memory:', resultExpires: 40 });
    const ok = app.task('ok', () => 1);
    const bad = app.task('bad', () => { throw new Error('no'); });
    app.worker();
    const good = await ok.delay();
    const failed = await bad.delay();
    await good.get({ timeoutMs: 5000 });
    await failed.get({ timeoutMs: 5000 }).catch(() => undefined);
    const store = await app.store();
    for (let i = 0; i < 200 && (await store.getRun(good.id)); i++) await new Promise((r) => setTimeout(r, 10));
    expect(await store.getRun(good.id)).toBeUndefined();
    expect(await store.readStream(good.id)).toEqual([]);
    expect(await failed.status()).toBe('failed');
    await app.close();
    expect(() => createApp({ resultExpires: 'soon' })).toThrow(/resultExpires "soon" is invalid/);
  });
});

describe('prune pages', () => {
  it('deletes every matching run across pages of 500', async () => {
    const app = createApp({ store: 'memory:' });
    const ok = app.task('ok', (i: number) => i);
    const handles = await Promise.all(Array.from({ length: 1100 }, (_, i) => ok.delay(i)));
    app.worker({ concurrency: 100 });
    await Promise.all(handles.map((h) => h.get({ timeoutMs: 20_000 })));
    await new Promise((r) => setTimeout(r, 5));
    expect(await app.runs.prune({ olderThan: 1 })).toBe(1100);
    expect(await app.runs.list({ limit: 10 })).toEqual([]);
    await app.close();
  });
});

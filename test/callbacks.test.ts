// Callbacks (link / linkError) and chord failure modes (waitAll / failFast / collect), end to end on
// every store reachable: memory and SQLite always, Postgres and Redis when they answer.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderRunTree } from '../src/cli/render-tree.ts';
import type { WorkflowEvent } from '../src/engine/events.ts';
import { chain, chord, createApp, group, LovageError, type App, type AppOptions, type LinkErrorInfo, type MemberOutcome } from '../src/index.ts';
import { everyStore } from './support/every-store.ts';

const { stores, cleanup } = await everyStore('callbacks');
afterAll(cleanup);

for (const [name, url] of stores) {
  describe(`callbacks and chord modes on ${name}`, () => {
    let app: App;
    let ledger: unknown[][];
    let failing: boolean;
    beforeEach(() => {
      ledger = [];
      failing = true;
      app = createApp({ store: url() });
    });
    afterEach(() => app.close());

    const setup = (concurrency = 4) => {
      const add = app.task('add', (a: number, b: number) => a + b);
      const xsum = app.task('xsum', (xs: number[]) => xs.reduce((p, q) => p + q, 0));
      const note = app.task('note', (value: unknown, label: string) => (ledger.push([label, value]), `${label}:${JSON.stringify(value)}`));
      const alert = app.task('alert', (info: LinkErrorInfo, label: string) => (ledger.push([label, info]), info.nodeId));
      const mark = app.task('mark', (label: string) => (ledger.push([label]), label));
      const boom = app.task('boom', (message: string) => {
        ledger.push(['boom', message]);
        throw new Error(message);
      });
      const flaky = app.task('flaky', (label: string) => {
        ledger.push([label]);
        if (failing) throw new Error(`${label} is not ready`);
        return label;
      });
      const slow = app.task('slow', async (ms: number) => (await new Promise((r) => setTimeout(r, ms)), ledger.push(['slow', ms]), ms));
      const outcomes = app.task('outcomes', (xs: MemberOutcome<unknown>[]) => xs);
      const gather = app.task('gather', (xs: string[]) => xs);
      app.worker({ concurrency, pollMs: 5 });
      return { add, xsum, note, alert, mark, boom, flaky, slow, outcomes, gather };
    };
    const history = async (runId: string): Promise<WorkflowEvent[]> => (await app.runs.history(runId)).map((s) => s.event);
    const failure = async (p: Promise<unknown>): Promise<LovageError> => {
      const e = await p.then(() => undefined, (err: unknown) => err);
      expect(e).toBeInstanceOf(LovageError);
      return e as LovageError;
    };
    const labels = () => ledger.map((entry) => entry[0]);

    it('link: the callback gets the result prepended; the run keeps the canvas result', async () => {
      const { add, xsum, note, mark } = setup();
      const one = await add.s(1, 2).link(note.s('sig')).applyAsync();
      expect(await one.get({ timeoutMs: 10_000 })).toBe(3);
      const state = await app.runs.inspect(one.id);
      expect(state.nodes.get('0.link.0')).toMatchObject({ status: 'succeeded', args: [3, 'sig'], result: 'sig:3' });
      // A chain's callback follows its last step; a group's and a chord's get the whole result.
      expect(await (await chain(add.s(1, 2), add.s(10)).link(note.s('chain')).applyAsync()).get({ timeoutMs: 10_000 })).toBe(13);
      expect(await (await group(add.s(1, 1), add.s(2, 2)).link(note.s('group')).applyAsync()).get({ timeoutMs: 10_000 })).toEqual([2, 4]);
      expect(await (await chord([add.s(1, 1), add.s(2, 2)], xsum.s()).link(note.s('chord')).applyAsync()).get({ timeoutMs: 10_000 })).toBe(6);
      // As an applyAsync option; an immutable callback ignores the result.
      expect(await (await add.applyAsync([2, 3], { link: [note.s('option'), mark.si('done')] })).get({ timeoutMs: 10_000 })).toBe(5);
      await expect.poll(() => ledger.length, { timeout: 5000 }).toBe(6);
      expect(ledger).toEqual(expect.arrayContaining([['sig', 3], ['chain', 13], ['group', [2, 4]], ['chord', 6], ['option', 5], ['done']]));
      // A callback sits under its node in `runs show`.
      expect(renderRunTree(state)).toMatch(/0 +add[\s\S]*link[\s\S]*0\.link\.0 +note/);
    });

    it('linkError: the errback gets { runId, nodeId, task, error }; the run still fails with the original error', async () => {
      const { add, alert, note, boom } = setup();
      const run = await chain(add.s(1, 2), boom.si('no luck')).linkError(alert.s('chain')).link(note.s('never')).applyAsync();
      const e = await failure(run.get({ timeoutMs: 10_000 }));
      expect(e.code).toBe('TASK_FAILED');
      expect(e.details).toMatchObject({ nodeId: '1', task: 'boom', error: { name: 'Error', message: 'no luck' } });
      expect(ledger).toContainEqual(['chain', { runId: run.id, nodeId: '1', task: 'boom', error: { name: 'Error', message: 'no luck' } }]);
      expect(labels()).not.toContain('never');
      const events = await history(run.id);
      const errback = events.findIndex((ev) => ev.type === 'NodeSucceeded' && ev.nodeId === 'linkError.0');
      expect(errback).toBeGreaterThan(-1);
      // The run ends once the errback has run; the link that cannot run is skipped.
      expect(events.at(-1)).toMatchObject({ type: 'WorkflowFailed', nodeId: '1' });
      expect(events.findIndex((ev) => ev.type === 'WorkflowFailed')).toBeGreaterThan(errback);
      expect(events).toContainEqual(expect.objectContaining({ type: 'NodesSkipped', nodeIds: ['link.0'] }));
      expect(await run.status()).toBe('failed');
      // On a success the errback is skipped, never left waiting.
      const ok = await add.s(1, 1).linkError(alert.s('never')).applyAsync();
      expect(await ok.get({ timeoutMs: 10_000 })).toBe(2);
      expect((await app.runs.inspect(ok.id)).nodes.get('0.linkError.0')?.status).toBe('skipped');
    });

    it('a group errback runs once, for the first failure, even when two members fail', async () => {
      const { alert, boom, mark } = setup();
      const run = await group(boom.si('a'), mark.si('m'), boom.si('b')).linkError(alert.s('group')).applyAsync();
      await failure(run.get({ timeoutMs: 10_000 }));
      expect(ledger.filter((entry) => entry[0] === 'group')).toHaveLength(1);
      expect(labels()).toContain('m');
    });

    it('a failing callback is recorded, and changes neither the result nor the status', async () => {
      const { add, boom } = setup();
      const run = await add.s(1, 2).link(boom.si('callback broke')).applyAsync();
      expect(await run.get({ timeoutMs: 10_000 })).toBe(3);
      expect(await run.status()).toBe('succeeded');
      const state = await app.runs.inspect(run.id);
      expect(state.nodes.get('0.link.0')).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'callback broke' } });
    });

    it('failFast: the first failing member ends the run; members not yet started never run', async () => {
      const { mark, boom, outcomes } = setup(1);
      const members = [boom.si('first'), mark.si('m1'), mark.si('m2')] as const;
      const run = await chord(members, outcomes.si([]), { onMemberFailure: 'failFast' }).applyAsync();
      const e = await failure(run.get({ timeoutMs: 10_000 }));
      expect(e.details).toMatchObject({ nodeId: '0.header.0', task: 'boom' });
      const events = await history(run.id);
      expect(events).toContainEqual(expect.objectContaining({ type: 'NodesAborted', nodeIds: ['0.header.1', '0.header.2', '0.body'] }));
      const state = await app.runs.inspect(run.id);
      expect(['0.header.1', '0.header.2', '0.body'].map((id) => state.nodes.get(id)?.status)).toEqual(['skipped', 'skipped', 'skipped']);
      // One worker, one task at a time: with waitAll the same members would have run after the failure.
      await new Promise((r) => setTimeout(r, 100));
      expect(labels()).toEqual(['boom']);
      const waited = await chord(members, outcomes.si([])).applyAsync();
      await failure(waited.get({ timeoutMs: 10_000 }));
      expect(labels()).toEqual(['boom', 'boom', 'm1', 'm2']);
    });

    it('failFast: a member still running is cancelled, its late outcome fenced', async () => {
      const { slow, boom, outcomes } = setup(2);
      const run = await chord([slow.s(300), boom.si('fast')], outcomes.si([]), { onMemberFailure: 'failFast' }).applyAsync();
      await failure(run.get({ timeoutMs: 10_000 }));
      await expect.poll(async () => (await history(run.id)).some((ev) => ev.type === 'NodeCompletionFenced'), { timeout: 5000 }).toBe(true);
      const events = await history(run.id);
      expect(events).toContainEqual(expect.objectContaining({ type: 'NodesAborted', nodeIds: ['0.header.0', '0.body'] }));
      expect(events.at(-1)).toMatchObject({ type: 'NodeCompletionFenced', nodeId: '0.header.0', outcome: 'succeeded', reason: 'node is cancelled' });
      expect((await app.runs.inspect(run.id)).nodes.get('0.header.0')?.status).toBe('cancelled');
    });

    it('failFast: resume runs the skipped members again and finishes', async () => {
      const { flaky, mark, gather } = setup(1);
      const run = await chord([flaky.si('f'), mark.si('m1'), mark.si('m2')], gather.s(), { onMemberFailure: 'failFast' }).applyAsync();
      await failure(run.get({ timeoutMs: 10_000 }));
      expect(labels()).toEqual(['f']);
      failing = false;
      const resumed = await app.runs.resume(run.id);
      expect(await resumed.get({ timeoutMs: 10_000 })).toEqual(['f', 'm1', 'm2']);
      expect(labels()).toEqual(['f', 'f', 'm1', 'm2']);
      const events = await history(run.id);
      expect(events).toContainEqual(expect.objectContaining({ type: 'WorkflowResumed', reset: ['0.header.0', '0.header.1', '0.header.2', '0.body'] }));
      expect(await app.runs.verify(run.id)).toMatchObject({ differences: [] });
    });

    it('failFast inside a collect member stops only that member; the body gets its failure, the run succeeds', async () => {
      const { mark, boom, outcomes, gather } = setup(1);
      const inner = chord([boom.si('inner'), mark.si('sibling')], gather.s(), { onMemberFailure: 'failFast' });
      const run = await chord([inner, mark.si('other')], outcomes.s(), { onMemberFailure: 'collect' }).applyAsync();
      expect(await run.get({ timeoutMs: 10_000 })).toEqual([{ ok: false, error: { name: 'Error', message: 'inner' } }, { ok: true, value: 'other' }]);
      expect(labels()).not.toContain('sibling');
      expect(labels()).toContain('other');
      const events = await history(run.id);
      expect(events).toContainEqual(expect.objectContaining({ type: 'NodesAborted', nodeIds: ['0.header.0.header.1', '0.header.0.body'] }));
    });

    it('collect: the body gets { ok, value } or { ok: false, error } per member, in header order; the run goes on', async () => {
      const { add, boom, outcomes } = setup();
      const run = await chain(
        chord([add.s(1, 1), boom.si('member broke'), chain(boom.si('early'), add.s(1)), add.s(2, 2)], outcomes.s(), { onMemberFailure: 'collect' }),
        outcomes.si([]),
      ).applyAsync();
      expect(await run.get({ timeoutMs: 10_000 })).toEqual([]);
      const state = await app.runs.inspect(run.id);
      expect(state.nodes.get('0.body')?.result).toEqual([
        { ok: true, value: 2 },
        { ok: false, error: { name: 'Error', message: 'member broke' } },
        { ok: false, error: { name: 'Error', message: 'early' } },
        { ok: true, value: 4 },
      ]);
      // What cannot run in a failed member is skipped before the body starts.
      expect(state.nodes.get('0.header.2.1')?.status).toBe('skipped');
      expect(await run.status()).toBe('succeeded');
      expect(await app.runs.verify(run.id)).toMatchObject({ differences: [] });
    });
  });
}

describe('callbacks and chord modes: compile (memory)', () => {
  const apps: App[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  const setup = (limits: AppOptions['limits'] = {}) => {
    const app = createApp({ store: 'memory:', limits });
    apps.push(app);
    const add = app.task('add', (a: number, b: number) => a + b);
    const xsum = app.task('xsum', (xs: number[]) => xs.reduce((p, q) => p + q, 0));
    const note = app.task('note', (value: unknown, label: string) => `${label}:${JSON.stringify(value)}`);
    return { app, add, xsum, note };
  };
  /** Expects `f` to be refused with `code` and every fragment, and nothing written. */
  const refused = async (app: App, f: () => unknown, code: string, ...fragments: string[]) => {
    const e = await Promise.resolve().then(f).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(LovageError);
    expect((e as LovageError).code).toBe(code);
    for (const fragment of fragments) expect((e as LovageError).message).toContain(fragment);
    expect(await (await app.store()).readAll()).toEqual([]);
  };
  const sig = (task: string, extra: Record<string, unknown> = {}) => ({ kind: 'signature', task, args: [1, 2], immutable: false, options: {}, ...extra }) as never;

  it('callbacks are nodes named by their place; a chain with callbacks keeps its place in a chain', async () => {
    const { app, add, note } = setup();
    const linked = chain(add.s(1), add.s(3)).link(note.s('a'));
    expect(Object.keys(linked)).toEqual(['kind', 'steps', 'links']);
    expect(JSON.parse(JSON.stringify(linked))).toEqual({ kind: 'chain', steps: [expect.any(Object), expect.any(Object)], links: [expect.objectContaining({ task: 'note' })] });
    const run = await chain(add.s(0, 1), linked).linkError(note.s('e')).applyAsync();
    const state = await app.runs.inspect(run.id);
    expect(state.index?.dag.nodes.map((n) => n.id)).toEqual(['0', '1.0', '1.1', '1.link.0', 'linkError.0']);
    expect(state.index?.dag.scopes).toEqual([
      { id: '1.link.0', kind: 'link' },
      { id: 'linkError.0', kind: 'linkError', on: ['0', '1.0', '1.1'] },
    ]);
  });

  it('an unknown onMemberFailure is refused, by chord() and at compile, naming the path', async () => {
    const { app, add, xsum } = setup();
    await refused(app, () => chord([add.s(1, 1)], xsum.s(), { onMemberFailure: 'later' as never }), 'VALIDATION', 'onMemberFailure "later" is invalid', '"waitAll"', '"failFast"', '"collect"');
    await refused(app, () => chord([add.s(1, 1)], xsum.s(), { mode: 'collect' } as never), 'VALIDATION', 'chord options', 'onMemberFailure');
    const header = { kind: 'group', members: [sig('add')] };
    await refused(app, () => app.submit({ kind: 'chain', steps: [sig('add'), { kind: 'chord', header, body: sig('xsum'), onMemberFailure: 'sometimes' }] } as never), 'VALIDATION', 'canvas at 1:', 'onMemberFailure "sometimes" is invalid');
  });

  it('a callback that is not a canvas is refused, by link() and at compile, naming the path', async () => {
    const { app, add } = setup();
    await refused(app, () => add.s(1, 2).link(5 as never), 'VALIDATION', 'the callback of signature.link() is not a canvas', 'allowed are signatures');
    await refused(app, () => add.s(1, 2).applyAsync({ linkError: { kind: 'nope' } as never }), 'VALIDATION', 'applyAsync option linkError is not a canvas');
    await refused(app, () => app.submit(sig('add', { links: [5] })), 'VALIDATION', 'canvas at 0.link.0:', 'expected a canvas, got number');
    await refused(app, () => app.submit(sig('add', { linkErrors: sig('add') })), 'VALIDATION', 'canvas at 0:', 'linkErrors must be an array of canvases');
    await refused(app, () => app.submit({ kind: 'group', members: [sig('add', { links: [sig('nope')] })] } as never), 'VALIDATION', 'canvas at 0.0.link.0:', 'unknown task "nope"');
  });

  it('callbacks nest within maxDepth, and count against maxNodes', async () => {
    const { app, add, note } = setup({ maxDepth: 3, maxNodes: 3 });
    await refused(app, () => add.s(1, 2).link(note.s('a').link(note.s('b').link(note.s('c')))).applyAsync(), 'LIMIT', 'canvas at 0.link.0.link.0.link.0:', 'nesting is deeper than maxDepth = 3');
    await refused(app, () => add.s(1, 2).link(note.s('a')).linkError(note.s('b')).link(note.s('c')).applyAsync(), 'LIMIT', 'canvas at 0.linkError.0:', 'more than maxNodes = 3 nodes (callbacks count)');
    await add.s(1, 2).link(note.s('a').link(note.s('b'))).applyAsync();
  });
});

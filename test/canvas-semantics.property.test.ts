import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/canvas/compile.ts';
import type { CanvasData } from '../src/canvas/types.ts';
import { createApp, LovageError, type App } from '../src/index.ts';
import { fold, initialState } from '../src/engine/state.ts';
import type { WorkflowEvent } from '../src/engine/events.ts';
import { canvasArb, reference } from './support/canvas-arb.ts';

/** Runs random canvases end to end on a store and checks them against the reference evaluator. */
function semantics(storeUrl: string, numRuns: number) {
  let app: App;
  beforeAll(() => {
    app = createApp({ store: storeUrl });
    app.task('echo', (...args: unknown[]) => args);
    app.task('boom', () => { throw new TypeError('boom'); });
    app.worker({ concurrency: 8, pollMs: 5 });
  });
  afterAll(() => app.close());

  const execute = async (canvas: CanvasData) => {
    const run = await app.submit(canvas);
    let outcome: { ok: true; value: unknown } | { ok: false; error: LovageError };
    try {
      outcome = { ok: true, value: await run.get({ timeoutMs: 20_000 }) };
    } catch (e) {
      if (!(e instanceof LovageError) || e.code !== 'TASK_FAILED') throw e;
      outcome = { ok: false, error: e };
    }
    const events = (await (await app.store()).readStream(run.id)).map((s) => s.event);
    return { run, outcome, events };
  };

  it('results equal the reference evaluator (no failures)', async () => {
    await fc.assert(
      fc.asyncProperty(canvasArb(false), async (canvas) => {
        const { outcome, events } = await execute(canvas);
        const ref = reference(canvas);
        expect(ref.ok).toBe(true);
        expect(outcome).toEqual({ ok: true, value: ref.ok ? ref.value : undefined });
        expect(events.filter((e) => e.type === 'NodeSucceeded').length).toBe(ref.executed);
      }),
      { numRuns },
    );
  });

  it('failures: the run fails exactly when the reference does; every node ends in exactly one terminal outcome', async () => {
    await fc.assert(
      fc.asyncProperty(canvasArb(true), async (canvas) => {
        const { outcome, events } = await execute(canvas);
        const ref = reference(canvas);
        expect(outcome.ok).toBe(ref.ok);
        if (!outcome.ok) {
          expect(outcome.error.details['task']).toBe('boom');
          expect(outcome.error.message).toContain(`node ${String(outcome.error.details['nodeId'])} (task boom)`);
        }
        const terminal = new Map<string, number>();
        const bump = (id: string) => terminal.set(id, (terminal.get(id) ?? 0) + 1);
        for (const e of events) {
          if (e.type === 'NodeSucceeded' || e.type === 'NodeFailed') bump(e.nodeId);
          if (e.type === 'NodesSkipped') e.nodeIds.forEach(bump);
        }
        const dag = compile(canvas);
        expect(dag.nodes.map((n) => terminal.get(n.id) ?? 0)).toEqual(dag.nodes.map(() => 1));
        const booms = events.filter((e) => e.type === 'NodeFailed').length;
        expect(booms).toBe(ref.ok ? 0 : ref.executedBooms);
        // Exactly the nodes the reference runs ran: nothing after a failure, even what reads no value.
        expect(events.filter((e) => e.type === 'NodeSucceeded').length).toBe(ref.executed);
        const last = events.filter((e) => e.type === 'WorkflowSucceeded' || e.type === 'WorkflowFailed');
        expect(last).toHaveLength(1);
      }),
      { numRuns },
    );
  });

  it('folding any prefix of a recorded log and then the rest equals folding all of it', async () => {
    await fc.assert(
      fc.asyncProperty(canvasArb(true), fc.nat(), async (canvas, cut) => {
        const { run, events } = await execute(canvas);
        const k = cut % (events.length + 1);
        const whole = fold(initialState(run.id), events);
        const prefix = fold(initialState(run.id), events.slice(0, k));
        const snapshot = JSON.stringify([...prefix.nodes], null, 0) + JSON.stringify({ ...prefix, nodes: 0, index: 0 });
        const resumed = fold(prefix, events.slice(k));
        expect(resumed).toEqual(whole);
        // fold is pure: the prefix state it started from is unchanged
        expect(JSON.stringify([...prefix.nodes], null, 0) + JSON.stringify({ ...prefix, nodes: 0, index: 0 })).toBe(snapshot);
        expect(whole.status === 'succeeded' || whole.status === 'failed').toBe(true);
        expect(whole.active).toBe(0);
      }),
      { numRuns: Math.ceil(numRuns / 2) },
    );
  });
}

describe('canvas semantics on the memory store', () => semantics('memory:', 150));
describe('canvas semantics on SQLite', () => semantics('sqlite::memory:', 40));

describe('compile', () => {
  it('is deterministic and works on plain data: same canvas, same DAG byte for byte; ids unique', () => {
    fc.assert(
      fc.property(canvasArb(true), (canvas) => {
        const a = JSON.stringify(compile(canvas));
        expect(JSON.stringify(compile(JSON.parse(JSON.stringify(canvas)) as CanvasData))).toBe(a);
        const ids = compile(canvas).nodes.map((n) => n.id);
        expect(new Set(ids).size).toBe(ids.length);
      }),
      { numRuns: 300 },
    );
  });

  it('names each node by its place', () => {
    const s = (args: number[]): CanvasData => ({ kind: 'signature', task: 'echo', args, immutable: false, options: {} });
    const dag = compile({ kind: 'chain', steps: [s([1]), { kind: 'chord', header: { kind: 'group', members: [s([2]), { kind: 'chain', steps: [s([3]), s([4])] }] }, body: s([5]) }] });
    expect(dag.nodes.map((n) => n.id)).toEqual(['0', '1.header.0', '1.header.1.0', '1.header.1.1', '1.body']);
    expect(dag.result).toEqual({ ref: '1.body' });
  });
});

describe('decide', () => {
  it('a chord body becomes ready exactly once, in the batch of its last header member', async () => {
    const events: WorkflowEvent[] = [];
    const app = createApp({ store: 'memory:' });
    app.task('echo', (...args: unknown[]) => args);
    app.worker({ concurrency: 3 });
    const s = (n: number): CanvasData => ({ kind: 'signature', task: 'echo', args: [n], immutable: false, options: {} });
    const run = await app.submit({ kind: 'chord', header: { kind: 'group', members: [s(1), s(2), s(3)] }, body: s(4) });
    expect(await run.get({ timeoutMs: 5000 })).toEqual([[[1], [2], [3]], 4]);
    events.push(...(await (await app.store()).readStream(run.id)).map((e) => e.event));
    const bodyReady = events.findIndex((e) => e.type === 'NodeReady' && e.nodeId === '0.body');
    expect(events.filter((e) => e.type === 'NodeReady' && e.nodeId === '0.body')).toHaveLength(1);
    const lastHeader = events.findLastIndex((e) => e.type === 'NodeSucceeded' && e.nodeId.startsWith('0.header.'));
    expect(bodyReady).toBe(lastHeader + 1);
    await app.close();
  });
});

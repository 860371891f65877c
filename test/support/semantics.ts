// The end-to-end canvas semantics properties, run against any store: random canvases vs the
// reference evaluator, exactly-one terminal outcome per node, fold of a prefix then the rest.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseExport } from '../../src/app/run-export.ts';
import { compile } from '../../src/canvas/compile.ts';
import type { CanvasData } from '../../src/canvas/types.ts';
import { fold, initialState } from '../../src/engine/state.ts';
import { applyUndoable, beginUndo, rollback } from '../../src/engine/undo.ts';
import { verifyRun } from '../../src/engine/verify.ts';
import type { EventStore } from '../../src/eventstore/store.ts';
import { createApp, LovageError, type App } from '../../src/index.ts';
import { canvasArb, reference } from './canvas-arb.ts';

/** Runs random canvases end to end on a store and checks them against the reference evaluator. */
export function semantics(store: string | (() => Promise<EventStore>), numRuns: number): void {
  let app: App;
  beforeAll(async () => {
    app = createApp({ store: typeof store === 'string' ? store : await store() });
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
        // Every callback that could not run (a linkError whose canvas succeeded) is skipped, never left pending.
        const dag = compile(canvas);
        const skipped = events.flatMap((e) => (e.type === 'NodesSkipped' ? e.nodeIds : []));
        expect(ref.executed + skipped.length).toBe(dag.nodes.length);
      }),
      { numRuns },
    );
  });

  it('failures: the run fails exactly when the reference does; every node ends in exactly one terminal outcome', async () => {
    await fc.assert(
      fc.asyncProperty(canvasArb(true), async (canvas) => {
        const { run, outcome, events } = await execute(canvas);
        const ref = reference(canvas);
        expect(outcome.ok).toBe(ref.ok);
        if (!outcome.ok) {
          expect(outcome.error.details['task']).toBe('boom');
          expect(outcome.error.message).toContain(`node ${String(outcome.error.details['nodeId'])} (task boom)`);
        } else {
          // Failures inside callbacks and collect members do not change the result.
          expect(outcome.value).toEqual(ref.ok ? ref.value : undefined);
        }
        const terminal = new Map<string, number>();
        const bump = (id: string) => terminal.set(id, (terminal.get(id) ?? 0) + 1);
        for (const e of events) {
          if (e.type === 'NodeSucceeded' || e.type === 'NodeFailed') bump(e.nodeId);
          if (e.type === 'NodesSkipped' || e.type === 'NodesAborted') e.nodeIds.forEach(bump);
        }
        const dag = compile(canvas);
        expect(dag.nodes.map((n) => terminal.get(n.id) ?? 0)).toEqual(dag.nodes.map(() => 1));
        const booms = events.filter((e) => e.type === 'NodeFailed').length;
        const succeeded = events.filter((e) => e.type === 'NodeSucceeded').length;
        if (ref.exact) {
          expect(booms).toBe(ref.booms);
          // Exactly the nodes the reference runs ran: nothing after a failure, even what reads no value.
          expect(succeeded).toBe(ref.executed);
        } else {
          // A failFast chord stopped its scope: at most what waitAll runs, and never a node after the abort.
          expect(booms).toBeGreaterThanOrEqual(1);
          expect(booms).toBeLessThanOrEqual(ref.booms);
          expect(succeeded).toBeLessThanOrEqual(ref.executed);
          events.forEach((abort, i) => {
            if (abort.type !== 'NodesAborted') return;
            const stopped = new Set(abort.nodeIds);
            expect(events.slice(i).some((e) => (e.type === 'NodeStarted' || e.type === 'NodeReady') && stopped.has(e.nodeId))).toBe(false);
          });
        }
        const last = events.filter((e) => e.type === 'WorkflowSucceeded' || e.type === 'WorkflowFailed');
        expect(last).toHaveLength(1);
        // The current rules, re-run over the recorded inputs, make the recorded decisions.
        expect(verifyRun(run.id, events)).toMatchObject({ differences: [], steps: expect.any(Number) });
        // Every recorded log moves between stores: its export reads back, as it was, through every import check.
        expect(parseExport(await app.runs.export(run.id)).events).toEqual(events);
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
        // An optimistic in-place change of the rest, taken back, leaves exactly the prefix state
        // (from the submit on: a submit is never undone).
        const from = Math.max(k, 1);
        const before = fold(initialState(run.id), events.slice(0, from));
        const scratch = fold(before, []);
        const undo = beginUndo(scratch);
        for (const e of events.slice(from)) applyUndoable(undo, e);
        expect(scratch).toEqual(whole);
        rollback(undo);
        expect(scratch).toEqual(before);
        // fold is pure: the prefix state it started from is unchanged
        expect(JSON.stringify([...prefix.nodes], null, 0) + JSON.stringify({ ...prefix, nodes: 0, index: 0 })).toBe(snapshot);
        expect(whole.status === 'succeeded' || whole.status === 'failed').toBe(true);
        expect(whole.active).toBe(0);
      }),
      { numRuns: Math.ceil(numRuns / 2) },
    );
  });
}


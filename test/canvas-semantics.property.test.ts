import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/canvas/compile.ts';
import type { CanvasData } from '../src/canvas/types.ts';
import { chain, createApp, group } from '../src/index.ts';
import type { WorkflowEvent } from '../src/engine/events.ts';
import { canvasArb } from './support/canvas-arb.ts';
import { semantics } from './support/semantics.ts';

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

  it('nested collect chords compile to a DAG that grows with the canvas, not twice a level', async () => {
    const sig: CanvasData = { kind: 'signature', task: 'echo', args: [1], immutable: false, options: {} };
    const empty: CanvasData = { kind: 'group', members: [] };
    const collect = (members: CanvasData[], body: CanvasData) => ({ kind: 'chord', header: { kind: 'group', members }, body, onMemberFailure: 'collect' }) as CanvasData;
    const nested = (levels: number): CanvasData => {
      let canvas: CanvasData = sig;
      for (let i = 0; i < levels; i++) canvas = collect([canvas], collect([empty], empty));
      return canvas;
    };
    const size = (levels: number) => JSON.stringify(compile(nested(levels), { limits: { maxDepth: 64 } })).length;
    // An `after` used to carry its collect's member values: 12 levels were 2.4 MB, 17 were 101 MB (twice a
    // level). Now node ids, which name each node's place, make it grow a little faster than the levels.
    expect(size(24) / size(12)).toBeLessThan(5);
    const app = createApp({ store: 'memory:', limits: { maxDepth: 40 } });
    try {
      app.task('echo', (...args: unknown[]) => args);
      app.worker({ pollMs: 5 });
      const run = await app.submit(nested(17));
      expect(await run.get({ timeoutMs: 10_000 })).toEqual([]);
      expect((await app.runs.export(run.id)).length).toBeLessThan(100_000);
    } finally {
      await app.close();
    }
  });

  it('names each node by its place', () => {
    const s = (args: number[]): CanvasData => ({ kind: 'signature', task: 'echo', args, immutable: false, options: {} });
    const dag = compile({ kind: 'chain', steps: [s([1]), { kind: 'chord', header: { kind: 'group', members: [s([2]), { kind: 'chain', steps: [s([3]), s([4])] }] }, body: s([5]) }] });
    expect(dag.nodes.map((n) => n.id)).toEqual(['0', '1.header.0', '1.header.1.0', '1.header.1.1', '1.body']);
    expect(dag.result).toEqual({ ref: '1.body' });
  });
});

describe('documented differences from Celery (docs/celery-differences.md)', () => {
  it('a one-member group in a chain is not unrolled: the next step gets [2], where Celery passes 2', async () => {
    const app = createApp({ store: 'memory:' });
    try {
      const add = app.task('add', (x: number, y: number) => x + y);
      const echo = app.task('echo', (x: unknown) => x);
      app.worker({ pollMs: 5 });
      expect(await (await chain(group(add.s(1, 1)), echo.s()).applyAsync()).get({ timeoutMs: 3000 })).toEqual([2]);
      expect(await (await chain(add.s(1, 1), group(echo.s()), echo.s()).applyAsync()).get({ timeoutMs: 3000 })).toEqual([2]);
    } finally {
      await app.close();
    }
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

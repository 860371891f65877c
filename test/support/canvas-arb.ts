// Random canvases for property tests, and a reference evaluator written from DESIGN.md's rules.
import fc from 'fast-check';
import type { CanvasData } from '../../src/canvas/types.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** `echo` returns its arguments; `boom` throws. */
export const sig = (task: 'echo' | 'boom', args: Json[], immutable: boolean): CanvasData => ({ kind: 'signature', task, args, immutable, options: {} });

/** Canvases of depth ≤ 4 and width ≤ 4; `failures` mixes in `boom` signatures. */
export function canvasArb(failures: boolean): fc.Arbitrary<CanvasData> {
  const small = fc.integer({ min: 0, max: 99 });
  const leaf: fc.Arbitrary<CanvasData> = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.array(small, { maxLength: 2 }), fc.boolean()).map(([args, immutable]) => sig('echo', args, immutable)) },
    { weight: failures ? 1 : 0, arbitrary: fc.constant(sig('boom', [], false)) },
    { weight: 1, arbitrary: fc.array(small, { maxLength: 4 }).map((items): CanvasData => ({ kind: 'map', task: 'echo', argLists: items.map((i) => [i]), options: {} })) },
    { weight: 1, arbitrary: fc.tuple(fc.array(fc.array(small, { maxLength: 2 }), { maxLength: 4 }), fc.integer({ min: 1, max: 3 })).map(([argLists, size]): CanvasData => ({ kind: 'chunks', task: 'echo', argLists, size, options: {} })) },
  );
  const { canvas } = fc.letrec<{ canvas: CanvasData }>((tie) => ({
    canvas: fc.oneof(
      { maxDepth: 4, depthIdentifier: 'canvas' },
      leaf,
      fc.array(tie('canvas'), { minLength: 1, maxLength: 4 }).map((steps): CanvasData => ({ kind: 'chain', steps })),
      fc.array(tie('canvas'), { maxLength: 4 }).map((members): CanvasData => ({ kind: 'group', members })),
      fc.tuple(fc.array(tie('canvas'), { maxLength: 4 }), tie('canvas')).map(([members, body]): CanvasData => ({ kind: 'chord', header: { kind: 'group', members }, body })),
    ),
  }));
  return canvas;
}

const FAIL = Symbol('fail');
type Value = Json | typeof FAIL;
type Prev = { readonly value: Value } | null;

/**
 * The reference: what DESIGN.md says a canvas evaluates to. A parent's result is prepended unless
 * immutable; a group is an array in member order; a chord body gets the header array; map/starmap/
 * chunks ignore the parent; a failed step stops what depends on it; independent branches go on.
 */
export function reference(canvas: CanvasData): ({ ok: true; value: Json } | { ok: false; executedBooms: number }) & { executed: number } {
  let booms = 0;
  let executed = 0;
  const call = (task: string, args: Json[], prev: Prev, immutable: boolean): Value => {
    if (prev && prev.value === FAIL) return FAIL;
    const full = immutable || prev === null ? args : [prev.value as Json, ...args];
    if (task === 'boom') {
      booms++;
      return FAIL;
    }
    executed++;
    return full;
  };
  const all = (values: Value[]): Value => (values.includes(FAIL) ? FAIL : (values as Json[]));
  const evalC = (c: CanvasData, prev: Prev): Value => {
    // Nothing after a failure runs, whether or not it reads the failed value (an empty group does not).
    if (prev?.value === FAIL) return FAIL;
    switch (c.kind) {
      case 'signature':
        return call(c.task, c.args as Json[], prev, c.immutable);
      case 'chain': {
        let p = prev;
        for (const step of c.steps) p = { value: evalC(step, p) };
        return p!.value;
      }
      case 'group':
        return all(c.members.map((m) => evalC(m, prev)));
      case 'chord':
        return evalC(c.body, { value: all(c.header.members.map((m) => evalC(m, prev))) });
      case 'map':
        return all(c.argLists.map((args) => call(c.task, args as Json[], prev, true)));
      case 'chunks': {
        const out: Value[] = [];
        for (let i = 0; i < c.argLists.length; i += c.size) out.push(all(c.argLists.slice(i, i + c.size).map((args) => call(c.task, args as Json[], prev, true))));
        return all(out);
      }
    }
  };
  const value = evalC(canvas, null);
  return value === FAIL || booms > 0 ? { ok: false, executedBooms: booms, executed } : { ok: true, value, executed };
}

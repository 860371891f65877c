// Random canvases for property tests, and a reference evaluator written from DESIGN.md's rules.
import fc from 'fast-check';
import type { CanvasData } from '../../src/canvas/types.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** `echo` returns its arguments; `boom` throws. */
export const sig = (task: 'echo' | 'boom', args: Json[], immutable: boolean): CanvasData => ({ kind: 'signature', task, args, immutable, options: {} });

/** A callback canvas: a signature (mutable or not), `boom` with `failures`, or a chain of two. */
function callbackArb(failures: boolean): fc.Arbitrary<CanvasData> {
  const small = fc.integer({ min: 0, max: 99 });
  const echo = fc.tuple(fc.array(small, { maxLength: 1 }), fc.boolean()).map(([args, immutable]) => sig('echo', args, immutable));
  return fc.oneof(
    { weight: 4, arbitrary: echo },
    { weight: failures ? 1 : 0, arbitrary: fc.constant(sig('boom', [], false)) },
    { weight: 1, arbitrary: fc.tuple(echo, echo).map(([a, b]): CanvasData => ({ kind: 'chain', steps: [a, b] })) },
  );
}

/** Now and then a `link` and/or a `linkError` on a canvas. */
function withCallbacks(canvas: fc.Arbitrary<CanvasData>, failures: boolean): fc.Arbitrary<CanvasData> {
  const maybe = fc.oneof({ weight: 7, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: callbackArb(failures) });
  return fc.tuple(canvas, maybe, maybe).map(([c, link, linkError]): CanvasData => ({
    ...c,
    ...(link ? { links: [link] } : {}),
    ...(linkError ? { linkErrors: [linkError] } : {}),
  }));
}

/**
 * Canvases of depth ≤ 4 and width ≤ 4; `failures` mixes in `boom` signatures. Any part may carry a
 * `link` / `linkError` callback; chords come in every `onMemberFailure` mode.
 */
export function canvasArb(failures: boolean): fc.Arbitrary<CanvasData> {
  const small = fc.integer({ min: 0, max: 99 });
  const leaf: fc.Arbitrary<CanvasData> = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.array(small, { maxLength: 2 }), fc.boolean()).map(([args, immutable]) => sig('echo', args, immutable)) },
    { weight: failures ? 1 : 0, arbitrary: fc.constant(sig('boom', [], false)) },
    { weight: 1, arbitrary: fc.array(small, { maxLength: 4 }).map((items): CanvasData => ({ kind: 'map', task: 'echo', argLists: items.map((i) => [i]), options: {} })) },
    { weight: 1, arbitrary: fc.tuple(fc.array(fc.array(small, { maxLength: 2 }), { maxLength: 4 }), fc.integer({ min: 1, max: 3 })).map(([argLists, size]): CanvasData => ({ kind: 'chunks', task: 'echo', argLists, size, options: {} })) },
  );
  const mode = fc.constantFrom(undefined, 'waitAll', 'failFast', 'collect', 'failFast', 'collect');
  const { canvas } = fc.letrec<{ canvas: CanvasData }>((tie) => ({
    canvas: withCallbacks(fc.oneof(
      { maxDepth: 4, depthIdentifier: 'canvas' },
      leaf,
      fc.array(tie('canvas'), { minLength: 1, maxLength: 4 }).map((steps): CanvasData => ({ kind: 'chain', steps })),
      fc.array(tie('canvas'), { maxLength: 4 }).map((members): CanvasData => ({ kind: 'group', members })),
      fc.tuple(fc.array(tie('canvas'), { maxLength: 4 }), tie('canvas'), mode).map(([members, body, onMemberFailure]): CanvasData => ({
        kind: 'chord', header: { kind: 'group', members }, body, ...(onMemberFailure ? { onMemberFailure } : {}),
      })),
    ), failures),
  }));
  return canvas;
}

const FAIL = Symbol('fail');
type Value = Json | typeof FAIL;
type Prev = { readonly value: Value } | null;
/** The failures a scope holds (its own: not those of `collect` members or callbacks inside it). */
type Scope = { booms: number };

/** What the reference says of a run. */
export type Reference = ({ ok: true; value: Json } | { ok: false }) & {
  /** Nodes that succeed (NodeSucceeded), callbacks included. */
  executed: number;
  /** `boom` nodes that run and fail (NodeFailed), wherever they are. */
  booms: number;
  /**
   * False when a `failFast` chord's member fails: the counts are then upper bounds (what had not
   * finished by then is stopped, how much depends on timing). The outcome and value are exact.
   */
  exact: boolean;
};

/**
 * The reference: what DESIGN.md says a canvas evaluates to. A parent's result is prepended unless
 * immutable; a group is an array in member order; a chord body gets the header array; map/starmap/
 * chunks ignore the parent; a failed step stops what depends on it; independent branches go on.
 * Callbacks (docs/tasks.md, "Callbacks and chord failure modes"): a `link` runs after its canvas succeeds, with its value; a
 * `linkError` runs once if a node of its canvas's own scope fails; neither changes the run's outcome.
 * A `collect` chord's body always runs, with `{ ok, value | error }` per member; a member's failure
 * stays in it. A `failFast` chord has `waitAll`'s outcome; it only stops work sooner.
 */
export function reference(canvas: CanvasData): Reference {
  let booms = 0;
  let executed = 0;
  let exact = true;
  const call = (task: string, args: Json[], prev: Prev, immutable: boolean, scope: Scope): Value => {
    if (prev && prev.value === FAIL) return FAIL;
    const full = immutable || prev === null ? args : [prev.value as Json, ...args];
    if (task === 'boom') {
      booms++;
      scope.booms++;
      return FAIL;
    }
    executed++;
    return full;
  };
  const all = (values: Value[]): Value => (values.includes(FAIL) ? FAIL : (values as Json[]));
  const evalC = (c: CanvasData, prev: Prev, scope: Scope): Value => {
    // Nothing after a failure runs, whether or not it reads the failed value (an empty group does not).
    if (prev?.value === FAIL) return FAIL;
    const before = scope.booms;
    let value: Value;
    switch (c.kind) {
      case 'signature':
        value = call(c.task, c.args as Json[], prev, c.immutable, scope);
        break;
      case 'chain': {
        let p = prev;
        for (const step of c.steps) p = { value: evalC(step, p, scope) };
        value = p!.value;
        break;
      }
      case 'group':
        value = all(c.members.map((m) => evalC(m, prev, scope)));
        break;
      case 'chord': {
        if (c.onMemberFailure === 'collect') {
          const outcomes = c.header.members.map((m): Json => {
            const v = evalC(m, prev, { booms: 0 });
            return v === FAIL ? { ok: false, error: { name: 'TypeError', message: 'boom' } } : { ok: true, value: v };
          });
          value = evalC(c.body, { value: outcomes }, scope);
          break;
        }
        const header = all(c.header.members.map((m) => evalC(m, prev, scope)));
        if (c.onMemberFailure === 'failFast' && scope.booms > before) exact = false;
        value = evalC(c.body, { value: header }, scope);
        break;
      }
      case 'map':
        value = all(c.argLists.map((args) => call(c.task, args as Json[], prev, true, scope)));
        break;
      case 'chunks': {
        const out: Value[] = [];
        for (let i = 0; i < c.argLists.length; i += c.size) out.push(all(c.argLists.slice(i, i + c.size).map((args) => call(c.task, args as Json[], prev, true, scope))));
        value = all(out);
        break;
      }
    }
    // Callbacks have scopes of their own: their failures change nothing outside them.
    if (value !== FAIL) for (const cb of c.links ?? []) evalC(cb, { value }, { booms: 0 });
    if (scope.booms > before) for (const eb of c.linkErrors ?? []) evalC(eb, { value: { runId: '', nodeId: '', task: 'boom', error: { name: 'TypeError', message: 'boom' } } }, { booms: 0 });
    return value;
  };
  const root: Scope = { booms: 0 };
  const value = evalC(canvas, null, root);
  return value === FAIL || root.booms > 0 ? { ok: false, executed, booms, exact } : { ok: true, value, executed, booms, exact };
}

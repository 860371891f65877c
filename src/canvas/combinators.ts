import { LovageError } from '../errors.ts';
import { hasCallbacks } from './compile.ts';
import { assertCanvas, submittable, type Submittable } from './submit.ts';
import type { Accepting, AnyCanvas, Canvas, CanvasData, GroupData, InOf, MemberOutcome, OnMemberFailure, OutOf } from './types.ts';

/** Each member's input as a parameter type, so intersecting keeps `number & unknown` = `number` (a union of inputs would collapse to `unknown` first). */
type MemberInputs<C> = C extends unknown ? (x: InOf<C>) => void : never;
type Last<T extends readonly unknown[]> = T extends readonly [...unknown[], infer L] ? L : T[number];
type CheckSteps<T extends readonly unknown[], Prev, First extends boolean> = T extends readonly [infer H, ...infer R]
  ? [First extends true ? H : Accepting<H, Prev>, ...CheckSteps<R, OutOf<H>, false>]
  : T;
type GroupOut<T extends readonly unknown[]> = { -readonly [K in keyof T]: OutOf<T[K]> };
type GroupIn<T extends readonly unknown[]> = T extends readonly [] ? unknown : MemberInputs<T[number]> extends (x: infer I) => void ? I : never;

/** What a chord's body receives: the header results, or with `collect` one {@link MemberOutcome} each. */
type BodyInput<T extends readonly unknown[], M> = M extends 'collect' ? { -readonly [K in keyof T]: MemberOutcome<T[K]> } : T;

/** Options of {@link chord}. */
export interface ChordOptions<M extends OnMemberFailure = OnMemberFailure> {
  /** What a failed header member does: `waitAll` (default), `failFast` or `collect` (see {@link OnMemberFailure}). */
  readonly onMemberFailure?: M;
}

/**
 * Steps in sequence: each receives the previous step's result as its first argument (unless immutable).
 * Nested chains splice flat. A step that cannot accept the previous result is a type error.
 *
 * @example
 * const run = await chain(add.s(1, 2), mul.s(10)).applyAsync() // mul(3, 10) = 30
 */
export function chain<T extends readonly AnyCanvas[]>(
  ...steps: T & CheckSteps<T, never, true>
): Canvas<InOf<T[0]>, OutOf<Last<T>>> & Submittable<OutOf<Last<T>>> {
  if (steps.length === 0) throw new LovageError('VALIDATION', 'chain() needs at least one step');
  const flat: CanvasData[] = [];
  steps.forEach((step, i) => {
    assertCanvas(step, `chain step ${i}`);
    // A chain with callbacks keeps its place: they follow its last step.
    if (step.kind === 'chain' && !hasCallbacks(step)) flat.push(...step.steps);
    else flat.push(step);
  });
  return submittable({ kind: 'chain', steps: Object.freeze(flat) } as Canvas) as never;
}

/**
 * Members in parallel; the result is an array in member order, never completion order.
 * Accepts members as arguments or as one array.
 *
 * @example
 * const run = await group(add.s(1, 1), mul.s(2, 3)).applyAsync() // [2, 6]
 */
export function group<T extends readonly AnyCanvas[]>(...members: T): Canvas<GroupIn<T>, GroupOut<T>> & Submittable<GroupOut<T>>;
export function group<const T extends readonly AnyCanvas[]>(members: T): Canvas<GroupIn<T>, GroupOut<T>> & Submittable<GroupOut<T>>;
export function group(...args: unknown[]): AnyCanvas {
  const members = args.length === 1 && Array.isArray(args[0]) ? (args[0] as unknown[]) : args;
  members.forEach((m, i) => assertCanvas(m, `group member ${i}`));
  return submittable({ kind: 'group', members: Object.freeze([...members]) } as Canvas);
}

/**
 * A header group whose array of results (in header order) is handed to the body. What a failed
 * header member does is `options.onMemberFailure`: `waitAll` (default: the other members finish, the
 * body never runs, the run fails naming the member), `failFast` (the run fails at once; members not
 * started never run) or `collect` (the body always runs, with `{ ok: true, value }` or
 * `{ ok: false, error: { name, message } }` per member).
 *
 * @example
 * const run = await chord([add.s(1, 1), add.s(2, 2)], xsum.s()).applyAsync() // xsum([2, 4]) = 6
 * chord([fetch.s(a), fetch.s(b)], report.s(), { onMemberFailure: 'collect' }) // report([{ ok: true, value }, { ok: false, error }])
 */
export function chord<const H extends readonly AnyCanvas[], B extends AnyCanvas, M extends OnMemberFailure = 'waitAll'>(
  header: H | (Canvas<any, any> & GroupData),
  body: B & Accepting<B, H extends readonly AnyCanvas[] ? BodyInput<GroupOut<H>, M> : never>,
  options?: ChordOptions<M>,
): Canvas<GroupIn<H>, OutOf<B>> & Submittable<OutOf<B>>;
export function chord<G extends Canvas<never, readonly unknown[]>, B extends AnyCanvas, M extends OnMemberFailure = 'waitAll'>(
  header: G,
  body: B & Accepting<B, BodyInput<OutOf<G>, M>>,
  options?: ChordOptions<M>,
): Canvas<InOf<G>, OutOf<B>> & Submittable<OutOf<B>>;
export function chord(header: unknown, body: unknown, options?: ChordOptions): AnyCanvas {
  const headerGroup: GroupData = Array.isArray(header)
    ? (group(header as AnyCanvas[]) as unknown as GroupData)
    : (header as GroupData);
  assertCanvas(headerGroup, 'chord header');
  if (headerGroup.kind !== 'group') throw new LovageError('VALIDATION', `chord header must be a group or an array of canvases, got a ${headerGroup.kind}`);
  assertCanvas(body, 'chord body');
  if (options !== undefined && (typeof options !== 'object' || options === null || Object.keys(options).some((k) => k !== 'onMemberFailure'))) {
    throw new LovageError('VALIDATION', `chord options ${JSON.stringify(options)} are invalid; allowed is { onMemberFailure: "waitAll" | "failFast" | "collect" }`);
  }
  const mode = options?.onMemberFailure;
  if (mode !== undefined && mode !== 'waitAll' && mode !== 'failFast' && mode !== 'collect') {
    throw new LovageError('VALIDATION', `chord onMemberFailure ${JSON.stringify(mode)} is invalid; allowed are "waitAll" (the default), "failFast" and "collect"`);
  }
  return submittable({ kind: 'chord', header: headerGroup, body, ...(mode !== undefined ? { onMemberFailure: mode } : {}) } as Canvas);
}

import { LovageError } from '../errors.ts';
import { submittable, type Submittable } from './submit.ts';
import type { AnyCanvas, Canvas, CanvasData, GroupData, InOf, OutOf } from './types.ts';

/** Each member's input as a parameter type, so intersecting keeps `number & unknown` = `number` (a union of inputs would collapse to `unknown` first). */
type MemberInputs<C> = C extends unknown ? (x: InOf<C>) => void : never;
type Last<T extends readonly unknown[]> = T extends readonly [...unknown[], infer L] ? L : T[number];
/** `H` if it accepts `Prev`, else the canvas type that would: the error then points at the step. */
type Accepting<H, Prev> = [Prev] extends [InOf<H>] ? H : Canvas<Prev, OutOf<H>>;
type CheckSteps<T extends readonly unknown[], Prev, First extends boolean> = T extends readonly [infer H, ...infer R]
  ? [First extends true ? H : Accepting<H, Prev>, ...CheckSteps<R, OutOf<H>, false>]
  : T;
type GroupOut<T extends readonly unknown[]> = { -readonly [K in keyof T]: OutOf<T[K]> };
type GroupIn<T extends readonly unknown[]> = T extends readonly [] ? unknown : MemberInputs<T[number]> extends (x: infer I) => void ? I : never;

function assertCanvas(value: unknown, where: string): asserts value is CanvasData {
  const kind = (value as { kind?: unknown } | null)?.kind;
  if (typeof value !== 'object' || value === null || !['signature', 'chain', 'group', 'chord', 'map', 'chunks'].includes(kind as string)) {
    throw new LovageError('VALIDATION', `${where} is not a canvas (got ${typeof value === 'object' ? JSON.stringify(value)?.slice(0, 60) : typeof value}); allowed are signatures (task.s(...)), chain, group, chord, task.map/starmap/chunks`);
  }
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
    if (step.kind === 'chain') flat.push(...step.steps);
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
 * A header group whose array of results (in header order) is handed to the body.
 * A failed header member: the body never runs and the run fails naming the member.
 *
 * @example
 * const run = await chord([add.s(1, 1), add.s(2, 2)], xsum.s()).applyAsync() // xsum([2, 4]) = 6
 */
export function chord<const H extends readonly AnyCanvas[], B extends AnyCanvas>(
  header: H | (Canvas<any, any> & GroupData),
  body: B & Accepting<B, H extends readonly AnyCanvas[] ? GroupOut<H> : never>,
): Canvas<GroupIn<H>, OutOf<B>> & Submittable<OutOf<B>>;
export function chord<G extends Canvas<never, readonly unknown[]>, B extends AnyCanvas>(
  header: G,
  body: B & Accepting<B, OutOf<G>>,
): Canvas<InOf<G>, OutOf<B>> & Submittable<OutOf<B>>;
export function chord(header: unknown, body: unknown): AnyCanvas {
  const headerGroup: GroupData = Array.isArray(header)
    ? (group(header as AnyCanvas[]) as unknown as GroupData)
    : (header as GroupData);
  assertCanvas(headerGroup, 'chord header');
  if (headerGroup.kind !== 'group') throw new LovageError('VALIDATION', `chord header must be a group or an array of canvases, got a ${headerGroup.kind}`);
  assertCanvas(body, 'chord body');
  return submittable({ kind: 'chord', header: headerGroup, body } as Canvas);
}

import type { ExecutionOptions } from './options.ts';

/** Options a signature carries into its node: routing and {@link ExecutionOptions}. */
export interface SignatureOptions extends ExecutionOptions {
  /** The queue the node is routed to (default: the task's queue, else `default`). */
  readonly queue?: string;
  /** Higher runs first within a queue (default 0). */
  readonly priority?: number;
}

/**
 * Callbacks any canvas may carry (Celery's `link` and `link_error`), each a canvas of its own. They run
 * as nodes of the run, but their outcome never changes the run's result or status.
 */
export interface CallbackData {
  /** Run when the canvas succeeds, with its result prepended (unless immutable): what `.link(cb)` adds. */
  readonly links?: readonly CanvasData[];
  /** Run once when the canvas fails, with a {@link LinkErrorInfo} prepended (unless immutable): what `.linkError(eb)` adds. */
  readonly linkErrors?: readonly CanvasData[];
}

/** What a `linkError` callback receives (prepended to its own arguments): the first failure of its canvas. */
export interface LinkErrorInfo {
  readonly runId: string;
  readonly nodeId: string;
  readonly task: string;
  readonly error: { readonly name: string; readonly message: string };
}

/**
 * What a chord does when a header member fails. `waitAll` (the default): the other members finish,
 * the body never runs, the run fails naming the member. `failFast`: the first failure ends the run at
 * once; members not started never run. `collect`: the body always runs, with a {@link MemberOutcome}
 * per member.
 */
export type OnMemberFailure = 'waitAll' | 'failFast' | 'collect';

/** One header member's outcome, as a `collect` chord's body receives it. */
export type MemberOutcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: { readonly name: string; readonly message: string } };

/** A task call: name + bound arguments; `immutable` ignores the parent's result. Pure data. */
export interface SignatureData extends CallbackData {
  readonly kind: 'signature';
  readonly task: string;
  readonly args: readonly unknown[];
  readonly immutable: boolean;
  readonly options: SignatureOptions;
}
/** Steps in sequence, each receiving the previous step's result. */
export interface ChainData extends CallbackData {
  readonly kind: 'chain';
  readonly steps: readonly CanvasData[];
}
/** Members in parallel; the result is an array in member order. */
export interface GroupData extends CallbackData {
  readonly kind: 'group';
  readonly members: readonly CanvasData[];
}
/** A group whose array of results feeds one body. */
export interface ChordData extends CallbackData {
  readonly kind: 'chord';
  readonly header: GroupData;
  readonly body: CanvasData;
  /** Absent: `waitAll`. */
  readonly onMemberFailure?: OnMemberFailure;
}
/** One node per argument list, in parallel (`map` wraps each item as `[item]`). */
export interface MapData extends CallbackData {
  readonly kind: 'map';
  readonly task: string;
  readonly argLists: readonly (readonly unknown[])[];
  readonly options: SignatureOptions;
}
/** A group of starmaps over slices of `size` argument lists; the result is an array of arrays. */
export interface ChunksData extends CallbackData {
  readonly kind: 'chunks';
  readonly task: string;
  readonly argLists: readonly (readonly unknown[])[];
  readonly size: number;
  readonly options: SignatureOptions;
}

/** Any canvas, as plain data (what `compile` reads). */
export type CanvasData = SignatureData | ChainData | GroupData | ChordData | MapData | ChunksData;

declare const io: unique symbol;

/**
 * A canvas with its types: `In` is the value it expects from a parent step (`never`: it takes none,
 * `unknown`: it ignores it), `Out` the value it produces. The types live only in the type system.
 *
 * @example
 * const step: Canvas<number, number> = add.s(1) // add(a: number, b: number): number
 */
export type Canvas<In = any, Out = unknown> = CanvasData & {
  readonly [io]?: { readonly input: (value: In) => void; readonly output: Out };
};

/** Any canvas, whatever its types. */
export type AnyCanvas = CanvasData & { readonly [io]?: { readonly input: (value: never) => void; readonly output: unknown } };
/** The value a canvas expects from its parent. */
export type InOf<C> = C extends { readonly [io]?: { readonly input: (value: infer I) => void } } ? I : never;
/** The value a canvas produces. */
export type OutOf<C> = C extends { readonly [io]?: { readonly output: infer O } } ? O : never;
/** `C` if it accepts `Prev` (as a chain step, chord body or callback), else the canvas type that would: the error then points at it. */
export type Accepting<C, Prev> = [Prev] extends [InOf<C>] ? C : Canvas<Prev, OutOf<C>>;

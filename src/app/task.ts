import type { AnyCanvas, Canvas, CanvasData, SignatureOptions } from '../canvas/types.ts';
import { SUBMITTER, submittable, type ApplyOptions, type RunHandle, type Submittable, type Submitter } from '../canvas/submit.ts';

type Tail<A extends readonly unknown[]> = A extends readonly [unknown, ...infer R] ? R : [];
type First<A extends readonly unknown[]> = A extends readonly [infer F, ...unknown[]] ? F : never;

/** A signature: a task call, with the type it expects from a parent step and the type it returns. */
export type Signature<In, Out> = Canvas<In, Out> & Submittable<Out>;

/** Options of a task. */
export interface TaskOptions {
  /** Default queue of the task's nodes (default `default`). */
  readonly queue?: string;
  /** Default priority; higher runs first within a queue (default 0). */
  readonly priority?: number;
}

/**
 * A registered task. `add.s(1)` for `add(a: number, b: number)` is a signature expecting one more
 * number (the parent's result, prepended); `add.s(1, 2)` is complete; `add.si(1, 2)` ignores the parent.
 *
 * @example
 * const add = app.task('add', (a: number, b: number) => a + b)
 * const run = await add.delay(2, 3); await run.get() // 5
 */
export interface Task<A extends unknown[], R> {
  readonly name: string;
  /** A complete signature (all arguments): it takes no parent result. */
  s(...args: A): Signature<never, R>;
  /** A partial signature: the parent's result becomes the first argument. */
  s(...args: Tail<A>): Signature<First<A>, R>;
  /** An immutable signature: ignores the parent's result. */
  si(...args: A): Signature<unknown, R>;
  /** One node per item (`fn(item)`), in parallel, results in item order. */
  map(items: readonly First<A>[]): Canvas<unknown, R[]> & Submittable<R[]>;
  /** One node per argument list (`fn(...args)`), in parallel, results in order. */
  starmap(argLists: readonly A[]): Canvas<unknown, R[]> & Submittable<R[]>;
  /** Starmaps over slices of `size`: the result is an array of arrays. */
  chunks(argLists: readonly A[], size: number): Canvas<unknown, R[][]> & Submittable<R[][]>;
  /** Submits `fn(...args)` as a run of one node. */
  delay(...args: A): Promise<RunHandle<R>>;
  /** Submits `fn(...args)` with options (queue, priority, runId, idempotencyKey, transaction). */
  applyAsync(args: A, options?: ApplyOptions & SignatureOptions): Promise<RunHandle<R>>;
}

/** Makes the canvas-building face of a task; the function itself stays in the app's registry. */
export function makeTask<A extends unknown[], R>(name: string, submitter: Submitter): Task<A, R> {
  const bind = <C extends AnyCanvas>(data: CanvasData): C & Submittable<never> => {
    Object.defineProperty(data, SUBMITTER, { value: submitter, enumerable: false });
    return submittable(data as C) as C & Submittable<never>;
  };
  const sig = (args: readonly unknown[], immutable: boolean, options: SignatureOptions = {}) =>
    bind({ kind: 'signature', task: name, args: Object.freeze([...args]), immutable, options: Object.freeze({ ...options }) });
  const task: Task<A, R> = {
    name,
    s: ((...args: unknown[]) => sig(args, false)) as unknown as Task<A, R>['s'],
    si: (...args) => sig(args, true) as never,
    map: (items) => bind({ kind: 'map', task: name, argLists: items.map((i) => [i]), options: {} }) as never,
    starmap: (argLists) => bind({ kind: 'map', task: name, argLists: argLists.map((a) => [...a]), options: {} }) as never,
    chunks: (argLists, size) => bind({ kind: 'chunks', task: name, argLists: argLists.map((a) => [...a]), size, options: {} }) as never,
    delay: (...args) => sig(args, false).applyAsync() as Promise<RunHandle<R>>,
    applyAsync: (args, options = {}) => {
      const { runId, transaction, idempotencyKey, ...sigOptions } = options;
      const submit = { ...(runId !== undefined ? { runId } : {}), ...(transaction !== undefined ? { transaction } : {}), ...(idempotencyKey !== undefined ? { idempotencyKey } : {}) };
      return sig(args, false, sigOptions).applyAsync(submit) as Promise<RunHandle<R>>;
    },
  };
  return Object.freeze(task);
}

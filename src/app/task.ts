import type { ErrorMatcher, RetryOptions } from '../canvas/options.ts';
import { LovageError, preview } from '../errors.ts';
import type { RateLimit } from './rate-limit.ts';
import type { AnyCanvas, Canvas, CanvasData, SignatureOptions } from '../canvas/types.ts';
import { submittable, type ApplyOptions, type CallbackOptions, type RunHandle, type Submittable, type Submitter } from '../canvas/submit.ts';

type Tail<A extends readonly unknown[]> = A extends readonly [unknown, ...infer R] ? R : [];
type First<A extends readonly unknown[]> = A extends readonly [infer F, ...unknown[]] ? F : never;

/** A signature: a task call, with the type it expects from a parent step and the type it returns. */
export type Signature<In, Out> = Canvas<In, Out> & Submittable<Out>;

/** A task's signature: a {@link Signature} whose options can be set. */
export type TaskSignature<In, Out> = Signature<In, Out> & {
  /**
   * A copy with these options over the signature's own (queue, priority, retry, countdown, eta,
   * expires, softTimeLimit, timeLimit), like Celery's `sig.set(...)`.
   *
   * @example
   * chain(fetch.s(url).set({ retry: { max: 5 }, timeLimit: '30s' }), parse.s())
   */
  set(options: SignatureOptions): TaskSignature<In, Out>;
};

/** Options of a task. */
export interface TaskOptions {
  /** Default queue of the task's nodes (default `default`). */
  readonly queue?: string;
  /** Default priority; higher runs first within a queue (default 0). */
  readonly priority?: number;
  /** Retry policy when the task throws (default: no automatic retry; `ctx.retry()` still works). */
  readonly retry?: RetryOptions;
  /** Retry only these errors (classes by `instanceof`, strings by `error.name`); implies `retry: {}` when alone. */
  readonly autoretryFor?: readonly ErrorMatcher[];
  /** Never retry these errors. */
  readonly dontRetryFor?: readonly ErrorMatcher[];
  /** The AbortSignal fires after this long (ms or `10s`); see docs/tasks.md for what each pool enforces. */
  readonly softTimeLimit?: number | string;
  /** The attempt fails with TimeLimitExceeded after this long (ms or `1m`); the threads pool terminates the thread. */
  readonly timeLimit?: number | string;
  /** Lease expiries (a worker that died or stalled while running it) before the node fails with WorkerLostError (default 3). */
  readonly maxLeaseExpiries?: number;
  /**
   * At most this many starts per period across every worker on the store: `'10/s'`, `'100/m'`,
   * `'1000/h'`, `'5/2s'`. A node over the limit is handed back (`NodeDeferred`) until a permit frees
   * up. `app.setRateLimit(name, ...)` overrides it at run time for every worker.
   */
  readonly rateLimit?: string | RateLimit;
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
  s(...args: A): TaskSignature<never, R>;
  /** A partial signature: the parent's result becomes the first argument. */
  s(...args: Tail<A>): TaskSignature<First<A>, R>;
  /** An immutable signature: ignores the parent's result. */
  si(...args: A): TaskSignature<unknown, R>;
  /** One node per item (`fn(item)`), in parallel, results in item order. */
  map(items: readonly First<A>[]): Canvas<unknown, R[]> & Submittable<R[]>;
  /** One node per argument list (`fn(...args)`), in parallel, results in order. */
  starmap(argLists: readonly A[]): Canvas<unknown, R[]> & Submittable<R[]>;
  /** Starmaps over slices of `size`: the result is an array of arrays. */
  chunks(argLists: readonly A[], size: number): Canvas<unknown, R[][]> & Submittable<R[][]>;
  /** Submits `fn(...args)` as a run of one node. */
  delay(...args: A): Promise<RunHandle<R>>;
  /** Submits `fn(...args)` with options (queue, priority, runId, idempotencyKey, transaction, link, linkError). */
  applyAsync(args: A, options?: ApplyOptions & SignatureOptions & CallbackOptions<R>): Promise<RunHandle<R>>;
}

/** Makes the canvas-building face of a task; the function itself stays in the app's registry. */
export function makeTask<A extends unknown[], R>(name: string, submitter: Submitter): Task<A, R> {
  const bind = <C extends AnyCanvas>(data: CanvasData): C & Submittable<never> => submittable(data as C, submitter) as C & Submittable<never>;
  // `set`, `link` and `linkError` come with `submittable` (non-enumerable, like `applyAsync`).
  const sig = (args: readonly unknown[], immutable: boolean, options: SignatureOptions = {}): TaskSignature<never, never> => {
    const data = { kind: 'signature', task: name, args: Object.freeze([...args]), immutable, options: Object.freeze({ ...options }) } as const;
    return bind(data) as never;
  };
  const task: Task<A, R> = {
    name,
    s: ((...args: unknown[]) => sig(args, false)) as unknown as Task<A, R>['s'],
    si: (...args) => sig(args, true) as never,
    map: (items) => bind({ kind: 'map', task: name, argLists: dense(items, `task ${name}: map(items)`, 'map([1, 2, 3])').map((i) => [i]), options: {} }) as never,
    starmap: (argLists) => bind({ kind: 'map', task: name, argLists: argumentLists(argLists, `task ${name}: starmap(argLists)`, 'starmap([[1, 2], [3, 4]])'), options: {} }) as never,
    chunks: (argLists, size) => bind({ kind: 'chunks', task: name, argLists: argumentLists(argLists, `task ${name}: chunks(argLists, size)`, 'chunks([[1, 2], [3, 4]], 10)'), size, options: {} }) as never,
    delay: (...args) => sig(args, false).applyAsync() as Promise<RunHandle<R>>,
    applyAsync: (args, options = {}) => {
      dense(args, `task ${name}: applyAsync(args, options)`, 'applyAsync([1, 2], { countdown: 10 }), or applyAsync([]) for no arguments');
      const { runId, transaction, idempotencyKey, link, linkError, ...sigOptions } = options;
      const submit = {
        ...(runId !== undefined ? { runId } : {}), ...(transaction !== undefined ? { transaction } : {}), ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
        ...(link !== undefined ? { link } : {}), ...(linkError !== undefined ? { linkError } : {}),
      };
      return sig(args, false, sigOptions).applyAsync(submit) as Promise<RunHandle<R>>;
    },
  };
  return Object.freeze(task);
}

/**
 * `value` when it is an array without holes; else a VALIDATION error naming what was passed and the
 * index of the first hole (a hole would be kept as a missing member, stored as `null`).
 */
function dense<T>(value: readonly T[], what: string, example: string): readonly T[] {
  if (!Array.isArray(value)) throw new LovageError('VALIDATION', `${what}: expected an array, got ${describe(value)}; for example ${example}`);
  for (let i = 0; i < value.length; i++) {
    if (!(i in value)) throw new LovageError('VALIDATION', `${what}: index ${i} is a hole (a sparse array); holes are refused, give every item (null is allowed)`);
  }
  return value;
}

/** Copies of `lists`, each checked to be a dense array (one call's arguments). */
function argumentLists(lists: readonly (readonly unknown[])[], what: string, example: string): unknown[][] {
  return dense(lists, what, example).map((args, i) => [...dense(args, `${what}[${i}]`, example)]);
}

function describe(value: unknown): string {
  if (value === undefined || value === null) return String(value);
  return `${typeof value === 'object' ? 'an object' : `a ${typeof value}`} ${preview(value)}`;
}

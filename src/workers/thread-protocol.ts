// What the threads pool and its threads say to each other, and how a thrown value crosses between
// them. Everything here is plain data: messages go by structured clone.
import type { Json } from '../canvas/json.ts';
import { LovageError, type ErrorCode } from '../errors.ts';
import type { TaskContext } from './context.ts';
import { describeStack, describeThrown, MaxRetriesExceededError, NonRetryableError, RetryRequest, SoftTimeLimitExceeded, TaskExpiredError, TimeLimitExceeded, WorkerLostError, type TaskDefinition } from './execution.ts';

/**
 * The app's internals a pool thread needs, under a registry symbol (`Symbol.for`, so that it is the
 * same key whichever copy of Lovage the app module imported). Not part of the public API.
 */
export const APP_INTERNALS = Symbol.for('lovage.app.internals');

export interface AppInternals {
  /** A registered task's definition (its function and options). */
  task(name: string): TaskDefinition | undefined;
  /** Runs `fn` with `ctx` as what `taskContext()` returns (the app's own copy of the context storage). */
  runInContext<T>(ctx: TaskContext, fn: () => T): T;
}

/** The app's internals, or `undefined` for an object that is not an app of this version. */
export function appInternals(app: object): AppInternals | undefined {
  return (app as { [APP_INTERNALS]?: AppInternals })[APP_INTERNALS];
}

const POOL_THREAD = Symbol.for('lovage.pool.thread');

/** Set by a pool thread before it imports the app module: `app.worker()` is then inert. */
export function markPoolThread(): void {
  (globalThis as { [POOL_THREAD]?: boolean })[POOL_THREAD] = true;
}

/** Whether this code runs in a thread of a threads pool. */
export function inPoolThread(): boolean {
  return (globalThis as { [POOL_THREAD]?: boolean })[POOL_THREAD] === true;
}

/** What a task sees of its context, as data. */
export interface ContextData {
  readonly runId: string;
  readonly nodeId: string;
  readonly task: string;
  readonly attempt: number;
  readonly idempotencyKey: string;
}

/** A thrown value, as data. */
export type Thrown =
  | { readonly error: { readonly name: string; readonly message: string; readonly stack?: string; readonly code?: string; readonly cause?: Thrown } }
  | { readonly retry: { readonly countdownMs?: number; readonly error?: Thrown } }
  | { readonly value: Json };

export type ToThread =
  | { readonly type: 'run'; readonly id: number; readonly task: string; readonly args: readonly Json[]; readonly ctx: ContextData }
  | { readonly type: 'abort'; readonly id: number; readonly reason: Thrown }
  /** The answer to a task's `ctx.heartbeat()` (`seq` names the call): whether the lease is still held, or the store's error. */
  | { readonly type: 'heartbeat'; readonly seq: number; readonly held: boolean }
  | { readonly type: 'heartbeat'; readonly seq: number; readonly error: Thrown };

export type FromThread =
  | { readonly type: 'ready' }
  /**
   * An error no code caught: the thread ends after sending this. `owner`: the pool's id of the task whose
   * code threw it (its call, timers and promises), with its `task` name; absent when no task's is known.
   */
  | { readonly type: 'uncaught'; readonly error: Thrown; readonly owner?: number; readonly task?: string }
  /** A task's `ctx.heartbeat()`: the worker extends the task's lease, as in the async pool, and answers. */
  | { readonly type: 'heartbeat'; readonly id: number; readonly seq: number }
  | { readonly type: 'loadFailed'; readonly error: Thrown }
  | { readonly type: 'done'; readonly id: number; readonly ok: true; readonly value: Json }
  | { readonly type: 'done'; readonly id: number; readonly ok: false; readonly thrown: Thrown };

/**
 * A thrown value as data: an error's name, message, stack (and a LovageError's code), a retry request,
 * or a value. Never throws, whatever was thrown (a getter that throws, a revoked proxy).
 */
export function encodeThrown(e: unknown, depth = 0): Thrown {
  try {
    return encode(e, depth);
  } catch {
    return { value: 'a value was thrown that cannot be described (reading it threw)' };
  }
}

function encode(e: unknown, depth: number): Thrown {
  if (e instanceof RetryRequest || (e instanceof Error && e.name === 'Retry' && 'countdownMs' in e && 'error' in e)) {
    const r = e as RetryRequest;
    return { retry: { ...(r.countdownMs !== undefined ? { countdownMs: r.countdownMs } : {}), ...(r.error !== undefined ? { error: encodeThrown(r.error, depth + 1) } : {}) } };
  }
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const stack = describeStack(e);
    // Strings only: a Symbol name, say, cannot cross to the worker (postMessage would throw).
    return {
      error: {
        name: describeThrown(e.name, 'Error'),
        message: describeThrown(e.message, ''),
        ...(stack !== undefined ? { stack } : {}),
        ...(typeof code === 'string' ? { code } : {}),
        ...(e.cause !== undefined && depth < 3 ? { cause: encodeThrown(e.cause, depth + 1) } : {}),
      },
    };
  }
  try {
    const json = JSON.stringify(e);
    return { value: json === undefined ? describeThrown(e, 'undefined') : (JSON.parse(json) as Json) };
  } catch {
    return { value: describeThrown(e, 'undefined') };
  }
}

const known: Record<string, new (message: string) => Error> = {
  SoftTimeLimitExceeded,
  TimeLimitExceeded,
  NonRetryableError,
  TaskExpired: TaskExpiredError,
  WorkerLostError,
  MaxRetriesExceededError,
};

/**
 * A thrown value back from data. Lovage's own errors come back as their classes; any other error
 * as an `Error` with the original name, message and stack (its class does not cross a thread).
 */
export function reviveThrown(t: Thrown): unknown {
  if ('retry' in t) return new RetryRequest(t.retry.countdownMs, t.retry.error === undefined ? undefined : reviveThrown(t.retry.error));
  if ('value' in t) return t.value;
  const { name, message, stack, code, cause } = t.error;
  const Known = Object.hasOwn(known, name) ? known[name] : undefined;
  let e: Error;
  if (Known) e = new Known(message);
  else if (name === 'LovageError' && code !== undefined) e = new LovageError(code as ErrorCode, message);
  else {
    e = new Error(message, cause === undefined ? undefined : { cause: reviveThrown(cause) });
    e.name = name;
    if (code !== undefined) (e as Error & { code?: string }).code = code;
  }
  if (Known && cause !== undefined) e.cause = reviveThrown(cause);
  if (stack !== undefined) e.stack = stack;
  else delete e.stack;
  return e;
}

import type { ExecOptions, RetryPolicy } from '../canvas/dag.ts';
import { defaultRetry, retryDelay, type ErrorMatcher } from '../canvas/options.ts';
import type { TaskErrorInfo } from '../engine/events.ts';
import type { RateLimit } from '../eventstore/rate/window.ts';
import { MAX_TIMER_MS } from '../eventstore/store.ts';

/**
 * Thrown by a task, never retried, whatever its retry policy says.
 *
 * @example
 * if (!user) throw new NonRetryableError(`no user ${id}`)
 */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError';
}

/** The error an attempt fails with when it outlives its soft time limit without finishing. */
export class SoftTimeLimitExceeded extends Error {
  override name = 'SoftTimeLimitExceeded';
}

/** The error an attempt fails with when it reaches its hard time limit. */
export class TimeLimitExceeded extends Error {
  override name = 'TimeLimitExceeded';
}

/** Recorded for a node claimed after its `expires` time: it is not run (nor retried). */
export class TaskExpiredError extends NonRetryableError {
  override name = 'TaskExpired';
}

/** Recorded for a node whose lease ran out more than `maxLeaseExpiries` times (a task that kills its worker); never retried. */
export class WorkerLostError extends NonRetryableError {
  override name = 'WorkerLostError';
}

/** Thrown by `ctx.retry()` (and what it throws once retries are used up: the cause, or this). */
export class RetryRequest extends Error {
  override name = 'Retry';
  constructor(readonly countdownMs: number | undefined, readonly error: unknown) {
    super(error instanceof Error ? error.message : 'retry requested by the task');
  }
}

/** Raised into the log when `ctx.retry()` is called with no retries left and no error to fail with. */
export class MaxRetriesExceededError extends Error {
  override name = 'MaxRetriesExceededError';
}

/** What a worker knows of a registered task besides its function. */
export interface TaskDefinition {
  readonly fn: (...args: never[]) => unknown;
  /** The task's retry policy fields (defaults fill the rest); absent: only `ctx.retry()` retries. */
  readonly retry?: Partial<RetryPolicy>;
  /** The task's own `autoretryFor` / `dontRetryFor`, classes kept for `instanceof`. */
  readonly autoretryFor?: readonly ErrorMatcher[];
  readonly dontRetryFor?: readonly ErrorMatcher[];
  readonly softTimeLimitMs?: number;
  readonly timeLimitMs?: number;
  /** Lease expiries (a dead or stalled worker) tolerated before the node fails with WorkerLostError. */
  readonly maxLeaseExpiries: number;
  /** The task's global rate limit in code (a run-time override in the store wins). */
  readonly rateLimit?: RateLimit;
}

/** The time limits in force for a node: its call's over its task's. */
export function limitsFor(def: TaskDefinition | undefined, options: ExecOptions | undefined): { soft?: number; hard?: number } {
  const soft = options?.softTimeLimitMs ?? def?.softTimeLimitMs;
  const hard = options?.timeLimitMs ?? def?.timeLimitMs;
  return { ...(soft !== undefined ? { soft } : {}), ...(hard !== undefined ? { hard } : {}) };
}

/**
 * `setTimeout` for any delay: past Node's longest timer (2^31-1 ms, ~24.8 days; a time limit may be
 * 366 days) a timer fires after 1 ms, so the wait is taken in steps. Every step's timer is pushed
 * onto `timers`; clearing them all cancels it.
 */
export function timerAfter(ms: number, fn: () => void, timers: NodeJS.Timeout[]): void {
  const step = Math.min(ms, MAX_TIMER_MS);
  timers.push(setTimeout(() => (ms > step ? timerAfter(ms - step, fn, timers) : fn()), step));
}

function matches(list: readonly (ErrorMatcher)[] | undefined, error: unknown): boolean {
  if (!list) return false;
  const name = error instanceof Error ? error.name : undefined;
  return list.some((m) => (typeof m === 'string' ? m === name : error instanceof m));
}

/**
 * What a failed attempt becomes: a retry at `retryAt` (store clock) or a failure. Pure but for
 * `random` (the jitter). `attempt` is the attempt that failed (1-based): there are at most
 * `max` retries, so at most `max + 1` attempts, lost ones included.
 */
export function planFailure(
  def: TaskDefinition | undefined,
  options: ExecOptions | undefined,
  attempt: number,
  thrown: unknown,
  now: number,
  random: () => number = Math.random,
): { readonly error: unknown; readonly retryAt?: number } {
  const configured = def?.retry !== undefined || options?.retry !== undefined;
  const policy: RetryPolicy = { ...defaultRetry, ...def?.retry, ...options?.retry };
  if (thrown instanceof RetryRequest) {
    // ctx.retry(): asked for explicitly, so it retries without a configured policy too (Celery's default of 3).
    const cause = thrown.error;
    if (attempt > policy.max) return { error: cause ?? new MaxRetriesExceededError(`task asked for a retry after ${attempt} attempts; max is ${policy.max}`) };
    return { error: cause ?? thrown, retryAt: now + (thrown.countdownMs ?? retryDelay(policy, attempt, random)) };
  }
  if (!configured || attempt > policy.max) return { error: thrown };
  if (thrown instanceof NonRetryableError || (thrown instanceof Error && thrown.name === 'NonRetryableError')) return { error: thrown };
  if (matches(def?.dontRetryFor, thrown) || matches(policy.dontRetryFor, thrown)) return { error: thrown };
  const auto = options?.retry?.autoretryFor ?? def?.autoretryFor ?? policy.autoretryFor;
  if (auto && !matches(auto, thrown)) return { error: thrown };
  return { error: thrown, retryAt: now + retryDelay(policy, attempt, random) };
}

/**
 * A thrown value as recorded in the log: always strings, never throws. A thrown value may be anything
 * (an error whose message is a BigInt, a Symbol name, a cyclic or null-prototype object, a getter that
 * throws); its record must still serialize, or the run could never end.
 */
export function errorInfo(e: unknown): TaskErrorInfo {
  try {
    if (e instanceof Error) {
      const stack = describeStack(e);
      return { name: describeThrown(e.name, 'Error'), message: describeThrown(e.message, ''), ...(stack !== undefined ? { stack } : {}) };
    }
    return { name: 'NonError', message: `a non-Error value was thrown: ${typeof e === 'string' ? JSON.stringify(e) : describeThrown(e, 'undefined')}` };
  } catch {
    return { name: 'NonError', message: 'a value was thrown that cannot be described (reading it threw)' };
  }
}

/**
 * A part of a thrown value as text, never throwing: a string as is, JSON where it can be made, else
 * `String()` or the object's tag. `absent` stands for `undefined`.
 */
export function describeThrown(value: unknown, absent: string): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return absent;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'symbol') return String(value);
  if (typeof value === 'function') {
    const name = safe(() => value.name);
    return `[function ${typeof name === 'string' && name !== '' ? name : 'anonymous'}]`;
  }
  return safe(() => JSON.stringify(value)) ?? safe(() => String(value)) ?? safe(() => Object.prototype.toString.call(value)) ?? '[object]';
}

/** An error's stack when it is a string; `undefined` when absent or reading it throws (V8 formats it on first read from the name: a Symbol name throws). */
export function describeStack(e: Error): string | undefined {
  const stack = safe(() => e.stack);
  return typeof stack === 'string' ? stack : undefined;
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

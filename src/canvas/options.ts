import { parseDuration } from '../app/duration.ts';
import { LovageError, preview } from '../errors.ts';
import type { NodeOptions, RetryPolicy } from './dag.ts';

/** An error class or an error's `name`, for `autoretryFor` / `dontRetryFor`. */
export type ErrorMatcher = string | (abstract new (...args: never[]) => Error);

/**
 * How a task retries when it throws. Every field is optional; with `retry` set, the defaults are
 * `{ max: 3, backoff: 'exponential', delay: '1s', factor: 2, maxDelay: '10m', jitter: true }`.
 * Durations are ms or strings such as `500ms`, `5s`, `2m`.
 */
export interface RetryOptions {
  /** Most retries after the first execution (0-1000). Attempts lost to a dead worker count too. */
  readonly max?: number;
  readonly backoff?: 'fixed' | 'exponential';
  /** The first retry's delay. */
  readonly delay?: number | string;
  /** Growth per retry for `exponential` (1-100). */
  readonly factor?: number;
  /** The longest delay. */
  readonly maxDelay?: number | string;
  /** A uniform random delay from 0 to the computed one ("full jitter"). */
  readonly jitter?: boolean;
  /** Retry only these errors (classes match by `instanceof`, strings by `error.name`); others fail at once. */
  readonly autoretryFor?: readonly ErrorMatcher[];
  /** Never retry these errors. */
  readonly dontRetryFor?: readonly ErrorMatcher[];
}

/** Per-call execution options, on a signature (`add.s(1).set({...})`) or `applyAsync(args, {...})`. */
export interface ExecutionOptions {
  /** Retries (see {@link RetryOptions}); overrides the task's policy field by field. */
  readonly retry?: RetryOptions;
  /** Run no sooner than this long after the node's inputs are ready (ms or `30s`). */
  readonly countdown?: number | string;
  /** Run no sooner than this time (epoch ms, a Date or an ISO string). */
  readonly eta?: number | Date | string;
  /** Not run if it has not started by then: a duration after it became ready, or a Date / ISO time. */
  readonly expires?: number | string | Date;
  /**
   * What an expired node does (with `expires`): `'fail'` (default) records it failed with `TaskExpired`
   * (the run fails, as any failure); `'skip'` records it succeeded with result `null` and `expired: true`,
   * never run, and the run goes on.
   */
  readonly onExpire?: 'fail' | 'skip';
  /** The task's AbortSignal fires after this long; if it has not finished by then it fails (ms or `10s`). */
  readonly softTimeLimit?: number | string;
  /** After this long the attempt fails at once; in the `threads` pool its thread is terminated. */
  readonly timeLimit?: number | string;
}

const YEAR = 366 * 86_400_000;
const DURATION = /^\s*\d+(?:\.\d+)?(?:ms|s|m|h|d|w)\s*$/;
const RETRY_KEYS = new Set(['max', 'backoff', 'delay', 'factor', 'maxDelay', 'jitter', 'autoretryFor', 'dontRetryFor']);
const EXEC_KEYS = ['retry', 'countdown', 'eta', 'expires', 'onExpire', 'softTimeLimit', 'timeLimit'] as const;

function bad(what: string, message: string): never {
  throw new LovageError('VALIDATION', `${what}: ${message}`);
}

function duration(value: unknown, what: string, min = 0): number {
  const ms = parseDuration(value as string | number, what);
  if (ms < min || ms > YEAR) bad(what, `${ms} ms is out of range; allowed are ${min} ms to 366 days`);
  return Math.round(ms);
}

// ISO 8601 as Date.parse reads it the same everywhere: a date, or a date and time with an optional
// offset. Date.parse also reads loose forms ('5' is the year 2001, 'Tue 1' a date), refused here.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/;
const TIME_RULE = 'allowed are epoch ms, a Date or an ISO 8601 string (2030-01-31 or 2030-01-31T12:00:00Z)';

/** Epoch ms of an absolute time; with `now`, at most 366 days after it (as countdown and expires). */
function time(value: unknown, what: string, now: number | undefined): number {
  let t: number;
  if (value instanceof Date) t = value.getTime();
  else if (typeof value === 'string') t = ISO_TIME.test(value) ? Date.parse(value) : Number.NaN;
  else if (typeof value === 'number') t = value;
  else t = Number.NaN;
  if (!Number.isFinite(t) || t < 0) bad(what, `${preview(value)} is not a time; ${TIME_RULE}`);
  if (now !== undefined && t > now + YEAR) bad(what, `${preview(value)} is more than 366 days ahead; ${TIME_RULE}, at most 366 days from now`);
  return t;
}

/** Error names of matchers (classes by their `name`). */
export function matcherNames(list: unknown, what: string): string[] {
  if (!Array.isArray(list)) bad(what, 'must be an array of error names or Error classes');
  return (list as unknown[]).map((m, i) => {
    if (typeof m === 'string' && m.length > 0 && m.length <= 200) return m;
    if (typeof m === 'function' && typeof m.name === 'string' && m.name !== '') return m.name;
    return bad(`${what}[${i}]`, `${preview(m)} is neither an error name nor an Error class`);
  });
}

/** The policy fields a `retry` option leaves out. */
export const defaultRetry: RetryPolicy = Object.freeze({ max: 3, backoff: 'exponential', delayMs: 1000, factor: 2, maxDelayMs: 600_000, jitter: true });

/**
 * The fields `options` (a {@link RetryOptions}) sets, normalised (durations in ms, error classes as
 * names); a call's fields override its task's one by one. Throws VALIDATION naming the field.
 */
export function retryFields(options: unknown, what: string): Partial<RetryPolicy> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) bad(what, 'must be an object like { max: 3, backoff: "exponential", delay: "1s" }');
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!RETRY_KEYS.has(k)) bad(what, `unknown option "${k}"; allowed are ${[...RETRY_KEYS].join(', ')}`);
  const out: { -readonly [K in keyof RetryPolicy]?: RetryPolicy[K] } = {};
  if (o['max'] !== undefined) {
    if (!Number.isInteger(o['max']) || (o['max'] as number) < 0 || (o['max'] as number) > 1000) bad(`${what}.max`, `${String(o['max'])} is invalid; allowed are integers from 0 to 1000`);
    out.max = o['max'] as number;
  }
  if (o['backoff'] !== undefined) {
    if (o['backoff'] !== 'fixed' && o['backoff'] !== 'exponential') bad(`${what}.backoff`, `${preview(o['backoff'])} is invalid; allowed are "fixed" and "exponential"`);
    out.backoff = o['backoff'] as RetryPolicy['backoff'];
  }
  if (o['factor'] !== undefined) {
    if (typeof o['factor'] !== 'number' || !(o['factor'] >= 1 && o['factor'] <= 100)) bad(`${what}.factor`, `${String(o['factor'])} is invalid; allowed are numbers from 1 to 100`);
    out.factor = o['factor'];
  }
  if (o['jitter'] !== undefined) {
    if (typeof o['jitter'] !== 'boolean') bad(`${what}.jitter`, 'must be true or false');
    out.jitter = o['jitter'];
  }
  if (o['delay'] !== undefined) out.delayMs = duration(o['delay'], `${what}.delay`);
  if (o['maxDelay'] !== undefined) out.maxDelayMs = duration(o['maxDelay'], `${what}.maxDelay`);
  if (o['autoretryFor'] !== undefined) out.autoretryFor = matcherNames(o['autoretryFor'], `${what}.autoretryFor`);
  if (o['dontRetryFor'] !== undefined) out.dontRetryFor = matcherNames(o['dontRetryFor'], `${what}.dontRetryFor`);
  return out;
}

/** The delay before retry number `retry` (1-based) under `policy`; `random` in [0, 1) for the jitter. */
export function retryDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const raw = policy.backoff === 'fixed' ? policy.delayMs : policy.delayMs * policy.factor ** Math.max(0, retry - 1);
  const capped = Math.min(policy.maxDelayMs, raw);
  return Math.round(policy.jitter ? random() * capped : capped);
}

/**
 * The normalised per-call options of a node, or `undefined` when there are none. Keys other than
 * queue, priority and {@link ExecutionOptions}' are refused. With `now` (epoch ms), an `eta` or an
 * `expires` time more than 366 days after it is refused.
 */
export function nodeOptions(options: Readonly<Record<string, unknown>> | undefined, what: string, now?: number): NodeOptions | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) bad(what, 'options must be an object');
  for (const k of Object.keys(options)) {
    if (k !== 'queue' && k !== 'priority' && !(EXEC_KEYS as readonly string[]).includes(k)) {
      bad(what, `unknown option "${k}"; allowed are queue, priority, ${EXEC_KEYS.join(', ')}`);
    }
  }
  const out: Record<string, unknown> = {};
  if (options['retry'] !== undefined) out['retry'] = retryFields(options['retry'], `${what} retry`);
  if (options['countdown'] !== undefined) out['countdownMs'] = duration(options['countdown'], `${what} countdown`);
  if (options['eta'] !== undefined) out['eta'] = time(options['eta'], `${what} eta`, now);
  const expires = options['expires'];
  if (expires !== undefined) {
    if (expires instanceof Date || (typeof expires === 'string' && !DURATION.test(expires))) {
      out['expiresAt'] = time(expires, `${what} expires`, now);
    } else {
      out['expiresMs'] = duration(expires, `${what} expires`);
    }
  }
  const onExpire = options['onExpire'];
  if (onExpire !== undefined) {
    if (onExpire !== 'fail' && onExpire !== 'skip') bad(what, `onExpire must be 'fail' or 'skip', got ${preview(onExpire)}`);
    if (expires === undefined) bad(what, `onExpire needs expires (the time after which the node is not run)`);
    if (onExpire === 'skip') out['expireSkip'] = true;
  }
  if (options['softTimeLimit'] !== undefined) out['softTimeLimitMs'] = duration(options['softTimeLimit'], `${what} softTimeLimit`, 1);
  if (options['timeLimit'] !== undefined) out['timeLimitMs'] = duration(options['timeLimit'], `${what} timeLimit`, 1);
  return Object.keys(out).length > 0 ? (out as NodeOptions) : undefined;
}

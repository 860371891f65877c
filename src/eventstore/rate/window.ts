// Global rate limits: the limit type, its checks, and the algorithm every store runs in its atomic step
// (in TypeScript here for the memory and SQLite stores; as plpgsql in ../postgres/rate-sql.ts and as Lua
// in ../redis/lua/take-token.lua: the three must stay the same algorithm, the conformance suite checks
// them against each other).
//
// The algorithm is a sliding-window log: a permit is granted at `now` only while fewer than `count`
// permits were granted in (now - periodMs, now]. So no window of `periodMs` ever holds more than `count`
// grants (a burst of `count` at once is allowed, then the next permit is free when the oldest grant of
// the window is `periodMs` old). A token bucket or GCRA with a burst of `count` lets up to 2·count
// through in one period (a full bucket drained, then refilled at the period's rate); the log does not.
//
// The log is kept short: grants are coalesced into slots of `slotMs(limit)` ms, each slot remembered as
// (time of its newest grant, number of grants). For a count up to RATE_LOG_SLOTS the slot is 1 ms: the
// log is exact. For larger counts a slot is periodMs / RATE_LOG_SLOTS wide and the log holds at most
// ~RATE_LOG_SLOTS + 1 slots; a slot counts in the window while its newest grant does, so the count is
// never under the truth: the limit still holds, and a permit may come up to one slot (0.1% of the
// period) later than exactly.
import { LovageError, preview } from '../../errors.ts';

/**
 * A rate limit: at most `count` permits in any window of `periodMs` ms (see `parseRateLimit` for
 * `'10/s'`, `'100/m'`, `'1000/h'`, `'5/2s'`).
 */
export interface RateLimit {
  readonly count: number;
  readonly periodMs: number;
}

/** The largest count of a rate limit. */
export const RATE_MAX_COUNT = 1_000_000;
/** The longest period of a rate limit: a week. */
export const RATE_MAX_PERIOD_MS = 7 * 86_400_000;
/** Counts up to this keep an exact log; larger ones coalesce grants into this many slots a period. */
export const RATE_LOG_SLOTS = 1000;
/**
 * What `takeToken(key, null)` resolves to when no run-time override is stored for `key`: nothing limits
 * it, nothing was taken (go).
 */
export const NOT_LIMITED = -1;

/** The rule of a rate limit, for error messages. */
export const RATE_LIMIT_RULE = `a count, a slash and a period: the count a whole number from 1 to ${RATE_MAX_COUNT.toLocaleString('en-US')}, the period ms, s, m, h or d, optionally after a whole number, of 1 ms to 7 days (e.g. 10/s, 100/m, 1000/h, 5/2s)`;

/** Checks a rate limit object; throws VALIDATION naming what is allowed. */
export function checkRateLimit(limit: unknown, what = 'rate limit'): RateLimit {
  const l = limit as { count?: unknown; periodMs?: unknown } | null;
  const ok = typeof l === 'object' && l !== null
    && Number.isInteger(l.count) && (l.count as number) >= 1 && (l.count as number) <= RATE_MAX_COUNT
    && Number.isInteger(l.periodMs) && (l.periodMs as number) >= 1 && (l.periodMs as number) <= RATE_MAX_PERIOD_MS;
  if (!ok) {
    throw new LovageError('VALIDATION', `${what} ${preview(limit)} is invalid; allowed are { count, periodMs } with count a whole number from 1 to ${RATE_MAX_COUNT.toLocaleString('en-US')} and periodMs a whole number from 1 to ${RATE_MAX_PERIOD_MS} (7 days), or a string: ${RATE_LIMIT_RULE}`);
  }
  return { count: l.count as number, periodMs: l.periodMs as number };
}

/** Checks a rate-limit key (a task name, usually): 1-200 characters, no NUL. */
export function checkRateKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 200 || key.includes('\u0000')) {
    throw new LovageError('VALIDATION', `rate limit key ${preview(key)} is invalid; allowed are strings of 1-200 characters without NUL (a task name)`);
  }
  return key;
}

/** The width of a log slot for `limit`, ms: 1 (exact) up to RATE_LOG_SLOTS permits, else a 1/RATE_LOG_SLOTS of the period. */
export function slotMs(limit: RateLimit): number {
  return limit.count <= RATE_LOG_SLOTS ? 1 : Math.max(1, Math.floor(limit.periodMs / RATE_LOG_SLOTS));
}

/**
 * One step of the algorithm on a key's log, `[time0, n0, time1, n1, ...]` by ascending time (changed
 * in place). Resolves to 0 and records the grant, or to the ms after which a permit may be free
 * (recording nothing; slots that left the window are dropped either way).
 */
export function takeFromLog(log: number[], limit: RateLimit, now: number): number {
  const edge = now - limit.periodMs;
  let first = 0;
  while (first < log.length && log[first]! <= edge) first += 2;
  if (first > 0) log.splice(0, first);
  let sum = 0;
  for (let i = 1; i < log.length; i += 2) sum += log[i]!;
  if (sum >= limit.count) {
    // Refused: wait until enough of the oldest slots leave the window for one more permit.
    let i = 0;
    for (;;) {
      sum -= log[i + 1]!;
      if (sum < limit.count || i + 2 >= log.length) return log[i]! + limit.periodMs - now;
      i += 2;
    }
  }
  const g = slotMs(limit);
  const last = log.length - 2;
  if (last >= 0 && (now <= log[last]! || Math.floor(now / g) === Math.floor(log[last]! / g))) {
    log[last] = Math.max(now, log[last]!);
    log[last + 1]! += 1;
  } else {
    log.push(now, 1);
  }
  return 0;
}

/**
 * A key's turns (EventStore.takeTurn): the latest turn handed out, `at` (store clock, ms), and how many
 * more refused takers it has room for.
 */
export interface Turn {
  readonly at: number;
  readonly left: number;
}

/**
 * The time between two turns beyond the period: a turn's permits are taken over the few ms its takers
 * need to come back, so the next turn starts once they have all left the window (a twentieth of the
 * period, at least 20 ms: turns run that much slower than the limit itself would allow).
 */
export function turnMarginMs(limit: RateLimit): number {
  return Math.max(20, Math.ceil(limit.periodMs / 20));
}

/**
 * How far ahead turns are handed out: a minute, or four periods of a slower limit. A taker refused when
 * the turns reach further is told to ask again then, without a turn: so turns planned for takers that
 * never come back (their run was cancelled) hold newcomers back for this long at most.
 */
export function turnHorizonMs(limit: RateLimit): number {
  return Math.max(60_000, 4 * limit.periodMs);
}

/**
 * The turn of a taker refused at `now` with `wait` (when the next permit may be free), after `turn`,
 * the key's latest (undefined: none): the wait until its turn, and the key's latest turn after it
 * (undefined: unchanged). The first `count` refused takers come back at the wait, the next `count` a
 * period and a margin later, and so on; a turn that has passed starts a new plan at the wait.
 */
export function nextTurn(turn: Turn | undefined, limit: RateLimit, now: number, wait: number): { wait: number; turn?: Turn } {
  if (!turn || turn.at < now + wait) return { wait, turn: { at: now + wait, left: limit.count - 1 } };
  if (turn.left > 0) return { wait: turn.at - now, turn: { at: turn.at, left: turn.left - 1 } };
  const at = turn.at + limit.periodMs + turnMarginMs(limit);
  if (at - now > turnHorizonMs(limit)) return { wait: turnHorizonMs(limit) };
  return { wait: at - now, turn: { at, left: limit.count - 1 } };
}

/** Rate limits of one process: the memory store's (every store's semantics, see EventStore.takeToken). */
export class RateTable {
  readonly #logs = new Map<string, number[]>();
  readonly #overrides = new Map<string, RateLimit>();
  readonly #turns = new Map<string, Turn>();

  /** EventStore.takeToken; with `turns`, EventStore.takeTurn. */
  take(key: string, limit: RateLimit | null, now: number, turns = false): number {
    checkRateKey(key);
    const checked = limit === null ? null : checkRateLimit(limit);
    const effective = this.#overrides.get(key) ?? checked;
    if (effective === null) return NOT_LIMITED;
    const log = this.#logs.get(key) ?? [];
    const wait = takeFromLog(log, effective, now);
    if (log.length === 0) this.#logs.delete(key);
    else this.#logs.set(key, log);
    if (wait === 0 || !turns) return wait;
    const next = nextTurn(this.#turns.get(key), effective, now, wait);
    if (next.turn) this.#turns.set(key, next.turn);
    return next.wait;
  }

  set(key: string, limit: RateLimit | null): void {
    checkRateKey(key);
    if (limit === null) this.#overrides.delete(key);
    else this.#overrides.set(key, checkRateLimit(limit));
  }
}

/** A checked key and limit as script arguments: key, count, periodMs (count and periodMs '' for null). */
export function rateArgs(key: string, limit: RateLimit | null): [string, number | '', number | ''] {
  checkRateKey(key);
  if (limit === null) return [key, '', ''];
  const l = checkRateLimit(limit);
  return [key, l.count, l.periodMs];
}

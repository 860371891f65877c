import { LovageError, preview } from '../errors.ts';
import { checkRateLimit, RATE_LIMIT_RULE, RATE_MAX_COUNT, RATE_MAX_PERIOD_MS, type RateLimit } from '../eventstore/rate/window.ts';

export type { RateLimit } from '../eventstore/rate/window.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SPEC = /^\s*(\d+)\s*\/\s*(\d+)?\s*(ms|s|m|h|d)\s*$/;

/**
 * A task's global rate limit from `'10/s'`, `'100/m'`, `'1000/h'`, `'5/2s'` (`<count>/<n?><unit>`,
 * unit ms, s, m, h or d), or a `{ count, periodMs }` object (checked). At most `count` permits in any
 * window of the period, across every worker on the store (see EventStore.takeToken). Throws VALIDATION
 * naming what is allowed: counts are whole numbers from 1 to 1,000,000, periods 1 ms to 7 days.
 *
 * @example
 * parseRateLimit('10/s') // { count: 10, periodMs: 1000 }
 * parseRateLimit('5/2s') // { count: 5, periodMs: 2000 }
 */
export function parseRateLimit(spec: string | RateLimit, what = 'rate limit'): RateLimit {
  if (typeof spec !== 'string') return checkRateLimit(spec, what);
  const m = SPEC.exec(spec);
  const fail = (why: string): never => {
    throw new LovageError('VALIDATION', `${what} ${preview(spec)} is invalid (${why}); allowed is ${RATE_LIMIT_RULE}`, { value: spec });
  };
  if (!m) return fail(/^\s*-/.test(spec) ? 'a negative count' : /^\s*\d*\.\d/.test(spec) ? 'the count is not a whole number' : /^\s*\d+\s*\/\s*\d*\s*[a-z]+\s*$/i.test(spec) ? 'an unknown unit' : 'not <count>/<period>');
  const count = Number(m[1]);
  const times = m[2] === undefined ? 1 : Number(m[2]);
  const periodMs = times * UNITS[m[3]!]!;
  if (count < 1) fail('the count is 0');
  if (count > RATE_MAX_COUNT) fail(`the count is over ${RATE_MAX_COUNT.toLocaleString('en-US')}`);
  if (times < 1) fail('the period is 0');
  if (periodMs > RATE_MAX_PERIOD_MS) fail('the period is over 7 days');
  return { count, periodMs };
}

import { createHash } from 'node:crypto';
import { LovageError, preview } from '../errors.ts';

/** What a run id may be. */
const RUN_ID = /^[A-Za-z0-9_.:\-]{1,128}$/;

/** Throws a VALIDATION error naming the rule when `runId` is not a valid run id. */
export function assertRunId(runId: unknown): asserts runId is string {
  if (typeof runId !== 'string' || !RUN_ID.test(runId)) {
    throw new LovageError('VALIDATION', `run id ${preview(runId)} is invalid; allowed are 1-128 of A-Z a-z 0-9 _ . : -`);
  }
}

/** The run id an idempotency key stands for (1-200 characters of any kind). */
export function idempotentRunId(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 200) {
    throw new LovageError('VALIDATION', `idempotency key ${preview(key)} is invalid; allowed are strings of 1-200 characters`);
  }
  return `idem-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Milliseconds from `30d`, `12h`, `15m`, `45s`, `500ms`, `2w` or a number of ms.
 *
 * @example
 * parseDuration('30d') // 2592000000
 */
export function parseDuration(value: string | number, what = 'duration'): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  const m = typeof value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(value.trim()) : null;
  if (!m) throw new LovageError('VALIDATION', `${what} ${preview(value)} is invalid; allowed are a number followed by ms, s, m, h, d or w (e.g. 30d, 12h, 500ms)`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

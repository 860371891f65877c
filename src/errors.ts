/**
 * The codes a {@link LovageError} can carry. Scripts branch on `error.code`, never on the message.
 */
export type ErrorCode =
  | 'VALIDATION'
  | 'CONCURRENCY'
  | 'LEASE_LOST'
  | 'NOT_FOUND'
  | 'LIMIT'
  | 'TASK_FAILED'
  | 'CANCELLED'
  | 'TIMEOUT'
  | 'CORRUPT_LOG'
  | 'UNSUPPORTED'
  | 'HOOK_FAILED';

/**
 * The one base class of every error Lovage throws. The message says what was wrong and what is allowed.
 *
 * @example
 * try { await run.get() } catch (e) { if (e instanceof LovageError && e.code === 'TASK_FAILED') console.log(e.details) }
 */
export class LovageError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'LovageError';
    this.code = code;
    this.details = details;
  }
}

/**
 * Short, safe rendering of a value for error messages (never the whole payload). Values JSON has no
 * text for are named: `NaN`, `Infinity`, `Invalid Date`, `undefined`.
 *
 * @example
 * preview(Number.NaN) // 'NaN'
 */
export function preview(value: unknown, max = 60): string {
  let text: string;
  try {
    text = typeof value === 'bigint' ? `${value}n` : typeof value === 'function' ? `[function ${value.name || 'anonymous'}]` : typeof value === 'symbol' || typeof value === 'number' ? String(value)
      : value instanceof Date ? (Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString()) : JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

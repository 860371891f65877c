import { LovageError, preview } from '../errors.ts';

/** Limits checked while compiling; every one is configurable on the app. */
export interface CompileLimits {
  /** Deepest nesting of chain/group/chord/map (default 16, at most 256). */
  readonly maxDepth: number;
  /** Most members of one group, map, starmap or chunks (default 100,000). */
  readonly maxGroupWidth: number;
  /** Most nodes in one run (default 250,000). */
  readonly maxNodes: number;
  /** Largest JSON size of one node's arguments, in bytes (default 1 MiB). */
  readonly maxArgsBytes: number;
}

/** The defaults of {@link CompileLimits}. */
export const defaultLimits: CompileLimits = Object.freeze({
  maxDepth: 16,
  maxGroupWidth: 100_000,
  maxNodes: 250_000,
  maxArgsBytes: 1024 * 1024,
});

/**
 * The largest value of each limit. `maxDepth` as deep as a JSON value may nest (arguments, results):
 * compiling and every walk of a DAG recurse once per level, so this keeps them off the stack's end.
 */
const LIMIT_MAX: CompileLimits = Object.freeze({
  maxDepth: 256,
  maxGroupWidth: Number.MAX_SAFE_INTEGER,
  maxNodes: Number.MAX_SAFE_INTEGER,
  maxArgsBytes: Number.MAX_SAFE_INTEGER,
});

/**
 * The limits `given` sets, over the defaults. Each must be an integer from 1 to its maximum; a limit
 * given as `undefined` keeps its default, like one left out. Anything else (NaN, a negative number, a
 * string, an unknown name) is a VALIDATION error naming the limit and what is allowed: a bad value
 * would otherwise turn the limit off without a word.
 *
 * @example
 * resolveLimits({ maxDepth: 32 }).maxDepth // 32
 */
export function resolveLimits(given: unknown): CompileLimits {
  if (given === undefined) return defaultLimits;
  const names = Object.keys(defaultLimits) as (keyof CompileLimits)[];
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new LovageError('VALIDATION', `limits ${preview(given)} are invalid; allowed is an object with any of ${names.join(', ')}, such as { maxDepth: 32 }`);
  }
  const out: { -readonly [K in keyof CompileLimits]: number } = { ...defaultLimits };
  for (const [key, value] of Object.entries(given)) {
    if (!names.includes(key as keyof CompileLimits)) throw new LovageError('VALIDATION', `limits.${key} is not a limit; allowed are ${names.join(', ')}`);
    const name = key as keyof CompileLimits;
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > LIMIT_MAX[name]) {
      const max = LIMIT_MAX[name] === Number.MAX_SAFE_INTEGER ? 'Number.MAX_SAFE_INTEGER' : String(LIMIT_MAX[name]);
      throw new LovageError('VALIDATION', `limits.${name} ${preview(value)} is invalid; allowed are integers from 1 to ${max} (default ${defaultLimits[name]}; leave it out for the default)`);
    }
    out[name] = value;
  }
  return Object.freeze(out);
}

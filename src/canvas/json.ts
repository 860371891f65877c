import { LovageError, preview } from '../errors.ts';

/** A JSON value: what may travel in arguments, results and the log. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Throws a VALIDATION error naming `where` and the path inside the value when `value` is not plain
 * JSON (functions, BigInt, symbols, undefined, NaN/Infinity, cycles, class instances, Map, Date...).
 */
export function assertJson(value: unknown, where: string, maxDepth = 256): asserts value is Json {
  // The common results (null, a string, a finite number, a boolean) need no walk.
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) return;
  walk({ where, maxDepth, seen: new Set<object>() }, value, '', 0);
}

// Module-level, not closures made per call: compile checks every node's arguments (under tsx each
// named closure costs a defineProperty; for a 10k-member group, 20 of its ~100 ms).
interface Walk {
  readonly where: string;
  readonly maxDepth: number;
  readonly seen: Set<object>;
}

function walk(w: Walk, v: unknown, path: string, depth: number): void {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(v)) fail(w.where, path, `${v} (not a finite number)`);
      return;
    case 'object': {
      if (v === null) return;
      if (w.seen.has(v)) fail(w.where, path, 'a cycle (the value contains itself)');
      if (depth >= w.maxDepth) fail(w.where, path, `nesting deeper than ${w.maxDepth} levels`);
      if (Array.isArray(v)) {
        w.seen.add(v);
        for (let i = 0; i < v.length; i++) {
          if (!(i in v)) fail(w.where, `${path}[${i}]`, 'a hole in an array');
          const item: unknown = v[i];
          // Primitives inline: no path string is built for them.
          if (typeof item === 'string' || typeof item === 'boolean' || item === null || (typeof item === 'number' && Number.isFinite(item))) continue;
          walk(w, item, `${path}[${i}]`, depth + 1);
        }
        w.seen.delete(v);
        return;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        fail(w.where, path, `an instance of ${(v as { constructor?: { name?: string } }).constructor?.name ?? 'a class'} (only plain objects and arrays are JSON)`);
      }
      w.seen.add(v);
      for (const key of Object.keys(v)) walk(w, (v as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
      if (Object.getOwnPropertySymbols(v).length > 0) fail(w.where, path, 'symbol keys');
      w.seen.delete(v);
      return;
    }
    default:
      fail(w.where, path, v === undefined ? 'undefined' : `a ${typeof v} (${preview(v)})`);
  }
}

function fail(where: string, path: string, what: string): never {
  throw new LovageError(
    'VALIDATION',
    `${where}${path}: ${what} cannot be stored; allowed are JSON values: null, booleans, finite numbers, strings, arrays and plain objects`,
    { where, path },
  );
}

/**
 * How deep a value read from a file (an imported export) may nest: above anything Lovage writes (a
 * DAG's expressions take two or three JSON levels each: 255 nested collect chords reach ~1,530, mixed
 * ones ~1,610; values 256) and below where JSON.stringify runs out of stack (~4,100 on Node 20's
 * default stack: the stores serialise what is imported).
 */
export const STORED_MAX_DEPTH = 3000;

/**
 * Throws a VALIDATION error naming `where` and the path inside the value when a number in `value`, the
 * output of `JSON.parse`, is not finite (JSON.parse reads 1e400 as Infinity, which no store keeps: it
 * would be written as null), or when it nests deeper than STORED_MAX_DEPTH. Everything else JSON.parse
 * returns is JSON already. No recursion: a value from a file may nest deeper than the stack reaches.
 *
 * @example
 * assertFiniteNumbers(JSON.parse('{"args":[1e400]}'), 'event') // throws: event.args[0]: Infinity (not a finite number) ...
 */
export function assertFiniteNumbers(value: unknown, where: string): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(where, '', `${value} (not a finite number)`);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  // The containers still to read, each with the way to it (built into a path only on failure).
  const stack: Step[] = [{ value: value as object, key: '', up: undefined, depth: 1 }];
  while (stack.length > 0) {
    const step = stack.pop()!;
    const v = step.value;
    const keys = Array.isArray(v) ? undefined : Object.keys(v);
    const n = keys ? keys.length : (v as unknown[]).length;
    for (let i = 0; i < n; i++) {
      const item: unknown = keys ? (v as Record<string, unknown>)[keys[i]!] : (v as unknown[])[i];
      if (typeof item === 'number') {
        if (!Number.isFinite(item)) fail(where, pathOf({ value: v, key: keyText(keys, i), up: step, depth: step.depth + 1 }), `${item} (not a finite number)`);
      } else if (typeof item === 'object' && item !== null) {
        const next: Step = { value: item, key: keyText(keys, i), up: step, depth: step.depth + 1 };
        if (next.depth > STORED_MAX_DEPTH) fail(where, pathOf(next), `nesting deeper than ${STORED_MAX_DEPTH} levels`);
        stack.push(next);
      }
    }
  }
}

interface Step {
  readonly value: object;
  /** How the parent reaches it: `[3]` or `.name`. */
  readonly key: string;
  readonly up: Step | undefined;
  readonly depth: number;
}

const keyText = (keys: readonly string[] | undefined, i: number): string => {
  if (!keys) return `[${i}]`;
  const key = keys[i]!;
  return `.${key.length > 40 ? `${key.slice(0, 39)}…` : key}`;
};

function pathOf(step: Step): string {
  const parts: string[] = [];
  for (let s: Step | undefined = step; s !== undefined; s = s.up) parts.push(s.key);
  return shortPath(parts.reverse());
}

/**
 * A path of many parts, shortened for a message: its first 8 parts, how many are left out, its last 4
 * (a value nested 255 levels deep would otherwise print 255 of them).
 *
 * @example
 * shortPath(Array(255).fill('[0]')) // '[0][0][0][0][0][0][0][0]…(243 more)…[0][0][0][0]'
 */
export function shortPath(parts: readonly string[]): string {
  if (parts.length <= 16) return parts.join('');
  return `${parts.slice(0, 8).join('')}…(${parts.length - 12} more)…${parts.slice(-4).join('')}`;
}

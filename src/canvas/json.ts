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
      if (!Number.isFinite(v)) fail(w, path, `${v} (not a finite number)`);
      return;
    case 'object': {
      if (v === null) return;
      if (w.seen.has(v)) fail(w, path, 'a cycle (the value contains itself)');
      if (depth >= w.maxDepth) fail(w, path, `nesting deeper than ${w.maxDepth} levels`);
      if (Array.isArray(v)) {
        w.seen.add(v);
        for (let i = 0; i < v.length; i++) {
          if (!(i in v)) fail(w, `${path}[${i}]`, 'a hole in an array');
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
        fail(w, path, `an instance of ${(v as { constructor?: { name?: string } }).constructor?.name ?? 'a class'} (only plain objects and arrays are JSON)`);
      }
      w.seen.add(v);
      for (const key of Object.keys(v)) walk(w, (v as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
      if (Object.getOwnPropertySymbols(v).length > 0) fail(w, path, 'symbol keys');
      w.seen.delete(v);
      return;
    }
    default:
      fail(w, path, v === undefined ? 'undefined' : `a ${typeof v} (${preview(v)})`);
  }
}

function fail(w: Walk, path: string, what: string): never {
  throw new LovageError(
    'VALIDATION',
    `${w.where}${path}: ${what} cannot be stored; allowed are JSON values: null, booleans, finite numbers, strings, arrays and plain objects`,
    { where: w.where, path },
  );
}

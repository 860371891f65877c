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
  const seen = new Set<object>();
  const walk = (v: unknown, path: string, depth = 0): void => {
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return;
      case 'number':
        if (!Number.isFinite(v)) fail(path, `${v} (not a finite number)`);
        return;
      case 'object': {
        if (v === null) return;
        if (seen.has(v)) fail(path, 'a cycle (the value contains itself)');
        if (depth >= maxDepth) fail(path, `nesting deeper than ${maxDepth} levels`);
        const proto = Object.getPrototypeOf(v);
        if (Array.isArray(v)) {
          seen.add(v);
          for (let i = 0; i < v.length; i++) {
            if (!(i in v)) fail(`${path}[${i}]`, 'a hole in an array');
            walk(v[i], `${path}[${i}]`, depth + 1);
          }
          seen.delete(v);
          return;
        }
        if (proto !== Object.prototype && proto !== null) {
          fail(path, `an instance of ${v.constructor?.name ?? 'a class'} (only plain objects and arrays are JSON)`);
        }
        seen.add(v);
        for (const key of Object.keys(v)) walk((v as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
        if (Object.getOwnPropertySymbols(v).length > 0) fail(path, 'symbol keys');
        seen.delete(v);
        return;
      }
      default:
        fail(path, v === undefined ? 'undefined' : `a ${typeof v} (${preview(v)})`);
    }
  };
  const fail = (path: string, what: string): never => {
    throw new LovageError(
      'VALIDATION',
      `${where}${path}: ${what} cannot be stored; allowed are JSON values: null, booleans, finite numbers, strings, arrays and plain objects`,
      { where, path },
    );
  };
  walk(value, '');
}

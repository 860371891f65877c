/**
 * Epoch ms of an ISO 8601 time (`2026-11-22`, `2026-11-22T10:00:00Z`, `2026-11-22T10:00:00.000+01:00`),
 * or undefined for any other text: `Date.parse` alone reads `'3'` as the year 2001.
 *
 * @example
 * isoTime('2026-11-22T10:00:00Z') // 1795341600000
 * isoTime('3') // undefined
 */
export function isoTime(value: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/.test(value)) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

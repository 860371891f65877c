// What the Redis store asks of the server itself: its clock, its eviction policy, its URL.
import type { Redis } from 'ioredis';
import { LovageError } from '../../errors.ts';
import { redactUrl as redact } from '../redact-url.ts';

/** Redis `TIME`, epoch ms. */
export async function serverTime(client: Redis): Promise<number> {
  const [s, us] = (await client.time()) as [string | number, string | number];
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/**
 * Refuses a server that may evict keys: an evicted key silently loses events or queued nodes. Throws
 * UNSUPPORTED naming the setting and the allowed value, or saying that CONFIG is disabled.
 */
export async function checkEvictionPolicy(client: Redis): Promise<void> {
  let policy: string | undefined;
  try {
    const reply = (await client.call('config', ['get', 'maxmemory-policy'])) as string[];
    policy = reply[1];
  } catch (e) {
    throw new LovageError('UNSUPPORTED', `cannot read the Redis setting maxmemory-policy (CONFIG GET failed: ${(e as Error).message}); Lovage needs maxmemory-policy noeviction. If CONFIG is disabled on this server and you have checked the policy yourself, pass skipEvictionCheck: true`);
  }
  if (policy !== 'noeviction') {
    throw new LovageError('UNSUPPORTED', `Redis maxmemory-policy is ${JSON.stringify(policy)}; Lovage needs "noeviction" (an evicted key silently loses events or queued nodes). Set maxmemory-policy noeviction in redis.conf or with CONFIG SET maxmemory-policy noeviction`);
  }
}

/**
 * The layout of the keys this Lovage writes under a prefix, kept in `<prefix>layout`. Layout 1 is every
 * release so far (one written before the key existed reads as 1). A release that changes what older
 * ones would misread raises it; a store opened on a newer layout than it knows is refused, as a
 * Postgres schema newer than the code is.
 */
export const REDIS_LAYOUT = 1;

/**
 * Refuses a newer or unreadable layout under `prefix` with UNSUPPORTED naming the key, what it holds
 * and what this Lovage knows; records this one if none is (SET NX: of processes opening a new prefix
 * together, the first one's stands). A read-only replica, which takes no writes, opens as it is.
 */
export async function checkLayout(client: Redis, prefix: string): Promise<void> {
  const key = `${prefix}layout`;
  let found = await client.get(key);
  if (found === null) {
    try {
      await client.set(key, String(REDIS_LAYOUT), 'NX');
    } catch (e) {
      if (String((e as Error).message).startsWith('READONLY')) return;
      throw e;
    }
    found = await client.get(key);
  }
  if (found === String(REDIS_LAYOUT)) return;
  const newer = /^[1-9][0-9]{0,8}$/.test(found ?? '') && Number(found) > REDIS_LAYOUT;
  throw new LovageError(
    'UNSUPPORTED',
    newer
      ? `Redis prefix ${JSON.stringify(prefix)} holds data in layout ${found} (key ${key}), newer than this Lovage knows (${REDIS_LAYOUT}); upgrade Lovage (layouts only go forward)`
      : `Redis key ${key} holds ${JSON.stringify(found)}, not a layout this Lovage knows (${REDIS_LAYOUT}); is the prefix shared with something else?`,
    { key, found, known: REDIS_LAYOUT },
  );
}

/**
 * Splits a store URL into the URL for ioredis and Lovage's `?prefix=`. Throws VALIDATION for a
 * malformed URL or any other parameter.
 */
export function parseRedisUrl(url: string): { url: string; prefix?: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new LovageError('VALIDATION', `store URL "${redact(url)}" is not a valid URL; allowed is redis://[user:password@]host[:port][/db][?prefix=name:] (or rediss:// for TLS)`);
  }
  for (const key of parsed.searchParams.keys()) {
    if (key !== 'prefix') throw new LovageError('VALIDATION', `store URL "${redact(url)}": unknown parameter "${key}"; the only allowed parameter is prefix (e.g. ?prefix=myapp:)`);
  }
  const prefix = parsed.searchParams.get('prefix');
  parsed.search = '';
  return { url: parsed.toString(), ...(prefix !== null ? { prefix } : {}) };
}

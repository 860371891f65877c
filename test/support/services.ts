// Finding the Postgres and Redis servers for tests. A test file asks once at its top:
//   const url = await postgresUrl()
//   describe.skipIf(!url)('...', () => { ... })
// With no server: the file's tests skip with a message, unless LOVAGE_REQUIRE_SERVICES=1 (CI), where
// the probe throws and the file fails.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';

/** Whether a missing server must fail the tests (CI sets LOVAGE_REQUIRE_SERVICES=1). */
export const servicesRequired = process.env['LOVAGE_REQUIRE_SERVICES'] === '1';

const cache = new Map<string, Promise<string | undefined>>();

/**
 * The first candidate URL whose server answers, else `undefined` (and a skip message), or a throw when
 * services are required. `probe` resolves when the server at the URL answers, rejects otherwise.
 */
async function find(service: string, candidates: readonly string[], probe: (url: string) => Promise<void>): Promise<string | undefined> {
  const errors: string[] = [];
  for (const url of candidates) {
    try {
      await probe(url);
      return url;
    } catch (e) {
      errors.push(`${url}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const why = `no ${service} server answered (${errors.join('; ')})`;
  if (servicesRequired) throw new Error(`${why}; LOVAGE_REQUIRE_SERVICES=1 requires one (see DESIGN.md, Services)`);
  console.warn(`skipping ${service} tests: ${why}; set LOVAGE_REQUIRE_SERVICES=1 to fail instead`);
  return undefined;
}

/**
 * A Postgres URL for tests: `LOVAGE_TEST_POSTGRES_URL`, else the project's machines' server
 * (127.0.0.1:5432, trust auth, database `test`, user `postgres` or `root`).
 */
export function postgresUrl(): Promise<string | undefined> {
  const env = process.env['LOVAGE_TEST_POSTGRES_URL'];
  const candidates = env ? [env] : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];
  let found = cache.get('postgres');
  if (!found) {
    found = find('Postgres', candidates, async (url) => {
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
      } finally {
        await client.end().catch(() => undefined);
      }
    });
    cache.set('postgres', found);
  }
  return found;
}

/**
 * Whether a Redis server answers PING at host:port within `timeoutMs`: `undefined` when it does, else
 * why not. Plain RESP over a socket (no client library, no retries), so a probe is quick either way.
 */
export function pingRedis(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = '';
    const done = (why: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG') ? undefined : `answered ${JSON.stringify(reply.trim())} to PING`);
    });
    socket.on('error', (e) => done(e.message));
  });
}

/** A Redis URL for tests: `LOVAGE_TEST_REDIS_URL`, else redis://127.0.0.1:6379. */
export function redisUrl(): Promise<string | undefined> {
  const env = process.env['LOVAGE_TEST_REDIS_URL'];
  let found = cache.get('redis');
  if (!found) {
    found = find('Redis', [env || 'redis://127.0.0.1:6379'], async (url) => {
      const { hostname, port } = new URL(url);
      const why = await pingRedis(hostname || '127.0.0.1', Number(port || 6379), 2_000);
      if (why !== undefined) throw new Error(why);
    });
    cache.set('redis', found);
  }
  return found;
}

/** A name no other test (or test process) uses: `prefix_<pid>_<random>`, lowercase, for schemas and key prefixes. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

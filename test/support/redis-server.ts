// Redis helpers for tests: random key prefixes and their cleanup, and private throwaway servers
// (for settings a test must never change on the shared server).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { pingRedis } from './services.ts';

/** A fresh key prefix for one test. */
export function testPrefix(): string {
  return `lovage-test:${randomBytes(6).toString('hex')}:`;
}

/** Deletes every key under each prefix (SCAN MATCH + DEL); prefixes hold no glob characters. */
export async function deletePrefixes(url: string, prefixes: Iterable<string>): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  let n = 0;
  try {
    for (const prefix of prefixes) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) n += await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
  return n;
}

/** The keys under a prefix (for checks that a deletion left nothing behind). */
export async function keysUnder(url: string, prefix: string): Promise<string[]> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
    return out.sort();
  } finally {
    redis.disconnect();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A private redis-server on a free port (no persistence), for `settings`; `stop()` kills it. */
export interface PrivateRedis {
  readonly url: string;
  stop(): Promise<void>;
}

export const redisServerBinary = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));

/**
 * Starts `redis-server` with `--save '' --appendonly no` plus `settings`; resolves once it answers PING.
 * Its working folder is a temporary one of its own (removed by `stop()`) unless `settings` name a
 * `--dir`: a replica writes the data it receives there, and a server started later in the same
 * folder would load it.
 */
export async function startPrivateRedis(settings: readonly string[]): Promise<PrivateRedis> {
  if (!redisServerBinary) throw new Error('redis-server is not installed (looked in /usr/bin and /usr/local/bin)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'lovage-redis-'));
  const child: ChildProcess = spawn(redisServerBinary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...settings], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 5000;
  for (;;) {
    if ((await pingRedis('127.0.0.1', port, 200)) === undefined) return { url: `redis://127.0.0.1:${port}`, stop };
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`private redis-server on port ${port} did not start`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

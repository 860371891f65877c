// Private, throwaway Postgres and Redis servers for tests that crash and restart a server: each on
// a free port with its data in a temp dir, so the shared servers on 5432/6379 (other tests, CI) are
// never stopped, restarted or reconfigured.
// - Postgres: a cluster made by `initdb` (as the `postgres` OS user when we are root: Postgres refuses
//   to run as root), started and stopped with `pg_ctl`; crash() is `pg_ctl stop -m immediate` (no
//   shutdown checkpoint: the next start replays the WAL, as after a crash).
// - Redis: `redis-server` as our child with `--appendonly yes --appendfsync always` (every write
//   fsynced before the reply); crash() is SIGKILL, start() again on the same dir replays the AOF.
// stopAllPrivateServers() (afterAll) stops and removes every one still running, and an exit hook
// does the same if the test process ends without it.
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pingPostgres } from './fault-stores.ts';
import { pingRedis } from './services.ts';

const run = promisify(execFile);
const WAIT_MS = 30_000;

/** A private server. */
export interface PrivateServer {
  readonly kind: 'postgres' | 'redis';
  readonly port: number;
  /** Where to connect: `postgres://postgres@127.0.0.1:<port>/postgres` or `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** The temp dir holding its data (and logs). */
  readonly dir: string;
  /** Stops it the hard way, keeping its data: `pg_ctl stop -m immediate`, or SIGKILL. */
  crash(): Promise<void>;
  /** Starts it again on the same port and data; resolves once it answers. */
  start(): Promise<void>;
  /** crash(), a pause of `downMs`, start(). */
  restart(downMs?: number): Promise<void>;
  /** Stops it and removes its dir (idempotent). */
  stop(): Promise<void>;
}

const live = new Set<PrivateServer>();
const exitHooks = new Map<PrivateServer, () => void>();
process.once('exit', () => {
  for (const hook of exitHooks.values()) hook();
});

/** Stops and removes every private server still running (afterAll). */
export async function stopAllPrivateServers(): Promise<void> {
  await Promise.allSettled([...live].map((s) => s.stop()));
}

/** A port nobody listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The newest Postgres's bin dir under /usr/lib/postgresql (or PG_BIN), if any. */
export function postgresBin(): string | undefined {
  if (process.env['PG_BIN']) return process.env['PG_BIN'];
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(base, versions[0], 'bin');
}

/** Where redis-server is, if installed. */
export const redisServerBin = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));

async function until(what: string, check: () => Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** uid/gid of the `postgres` OS user when we are root (Postgres refuses root); else undefined (run as ourselves). */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/**
 * Makes a Postgres cluster in a temp dir (trust auth, user `postgres`) and starts it on a free port,
 * listening on 127.0.0.1 and a socket in the dir. Resolves once it answers a query.
 *
 * @example
 * const pg = await startPrivatePostgres(); await pg.restart(); await pg.stop()
 */
export async function startPrivatePostgres(): Promise<PrivateServer> {
  const bin = postgresBin();
  if (!bin) throw new Error('Postgres is not installed (no initdb under /usr/lib/postgresql/*/bin; set PG_BIN)');
  const user = postgresUser();
  const dir = mkdtempSync('/tmp/lovage-pg-');
  const data = join(dir, 'data');
  const sock = join(dir, 'sock');
  mkdirSync(sock);
  if (user) for (const d of [dir, sock]) chownSync(d, user.uid, user.gid);
  const as = { cwd: dir, ...(user ?? {}), env: { ...process.env, PGTZ: 'UTC' } };
  const port = await freePort();
  const pgCtl = (...args: string[]) => run(join(bin, 'pg_ctl'), ['-D', data, ...args], { ...as, timeout: WAIT_MS + 5000 });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let running = false;
  let removed = false;
  const server: PrivateServer = {
    kind: 'postgres',
    port,
    url,
    dir,
    async crash() {
      if (!running) return;
      running = false;
      await pgCtl('stop', '-m', 'immediate', '-w');
    },
    async start() {
      if (running) return;
      await pgCtl('start', '-w', '-t', String(WAIT_MS / 1000), '-l', join(dir, 'postgres.log'), '-o', `-p ${port} -k ${sock} -c listen_addresses=127.0.0.1`);
      running = true;
      await until(`private Postgres on port ${port} to answer`, async () => (await pingPostgres(url, 1000)) === undefined);
    },
    async restart(downMs = 500) {
      await server.crash();
      await new Promise((r) => setTimeout(r, downMs));
      await server.start();
    },
    async stop() {
      if (removed) return;
      removed = true;
      live.delete(server);
      exitHooks.delete(server);
      try {
        await server.crash();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  live.add(server);
  exitHooks.set(server, () => {
    if (running) spawnSync(join(bin, 'pg_ctl'), ['-D', data, 'stop', '-m', 'immediate'], { ...as, stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], { ...as, timeout: 120_000 });
    await server.start();
  } catch (e) {
    await server.stop().catch(() => undefined);
    throw e;
  }
  return server;
}

/**
 * Starts `redis-server` on a free port with its data in a temp dir, AOF on and fsynced on every write,
 * no RDB snapshots. Resolves once it answers PING.
 *
 * @example
 * const redis = await startDurableRedis(); await redis.restart(); await redis.stop()
 */
export async function startDurableRedis(): Promise<PrivateServer> {
  if (!redisServerBin) throw new Error('redis-server is not installed (looked in /usr/bin and /usr/local/bin)');
  const bin = redisServerBin;
  const dir = mkdtempSync('/tmp/lovage-redis-');
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let removed = false;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--logfile', join(dir, 'redis.log')];
  const server: PrivateServer = {
    kind: 'redis',
    port,
    url,
    dir,
    async crash() {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      child = undefined;
    },
    async start() {
      if (child) return;
      const c = (child = spawn(bin, args, { stdio: 'ignore' }));
      exited = new Promise<void>((r) => c.once('exit', () => r()));
      await until(`private Redis on port ${port} to answer`, async () => {
        if (c.exitCode !== null) throw new Error(`private redis-server on port ${port} exited with ${c.exitCode} (see ${join(dir, 'redis.log')})`);
        return (await pingRedis('127.0.0.1', port, 500)) === undefined;
      });
    },
    async restart(downMs = 500) {
      await server.crash();
      await new Promise((r) => setTimeout(r, downMs));
      await server.start();
    },
    async stop() {
      if (removed) return;
      removed = true;
      live.delete(server);
      exitHooks.delete(server);
      try {
        await server.crash();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  live.add(server);
  exitHooks.set(server, () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    await server.start();
  } catch (e) {
    await server.stop().catch(() => undefined);
    throw e;
  }
  return server;
}

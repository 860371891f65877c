import { Redis } from 'ioredis';
import type { StoredEvent } from '../engine/events.ts';
import { LovageError } from '../errors.ts';
import { newToken } from './token.ts';
import { checkPrefix, decodeClaim, decodeRun, encodeAppend, encodeClaim, encodeRunFilter, parseItem, storedEvents, throwRefusal } from './redis/codec.ts';
import { checkEvictionPolicy, checkLayout, parseRedisUrl, serverTime } from './redis/server.ts';
import { readStreamPaged } from './redis/read-stream.ts';
import { runScript, scriptReloads, scripts, type Script, type ScriptArg } from './redis/scripts.ts';
import { rateArgs, type RateLimit } from './rate/window.ts';
import { pageSize, refuseTransaction, Signal, type AppendOptions, type AppendRequest, type DeleteOptions, type ClaimedNode, type ClaimRequest, type EventStore, type LeaseRef, type RunFilter, type RunRecord } from './store.ts';

/** Options of {@link RedisStore.open}. */
export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://...` (default `redis://127.0.0.1:6379`). Ignored when `client` is given. */
  readonly url?: string;
  /** An ioredis client to use (the store does not quit it on close; it duplicates it for pub/sub). */
  readonly client?: Redis;
  /** Prefix of every key and channel (default `lovage:`): 1-100 of `A-Z a-z 0-9 _ . : - { }`, ending with `:`. */
  readonly prefix?: string;
  /**
   * Skip the `maxmemory-policy noeviction` check at open. Only for servers where `CONFIG` is disabled
   * (managed Redis) and you have made sure yourself that the policy is `noeviction`.
   */
  readonly skipEvictionCheck?: boolean;
  /** How often `now()` re-measures its offset to Redis `TIME`, ms (default 10,000). */
  readonly clockRefreshMs?: number;
  /** Tests only: a clock that replaces Redis `TIME` in every script and in `now()`. */
  readonly clock?: () => number;
}

/** The listRuns scan budget per script call: a filter matching little never blocks Redis long. */
const SCAN_BUDGET = 2000;

/**
 * The distributed store on Redis (ioredis). Every atomic step is one Lua script (src/eventstore/redis/lua/,
 * each opening with its KEYS and ARGV): append with expected versions plus the ready-queue and runs
 * projection, claim with a lease, append-and-claim, extend, quarantine, delete. Leases come from Redis
 * `TIME` inside the scripts. A node not claimable yet (countdown, eta, scheduled retry, deferral) waits in
 * a per-queue delayed zset scored by its availability time; each claim first moves the due ones into the
 * queue, where they compete by priority and age. Scripts that make nodes ready PUBLISH on `<prefix>ready`; a dedicated
 * subscriber connection wakes `onReady` listeners in every process. Needs `maxmemory-policy noeviction`.
 *
 * @example
 * import { RedisStore } from 'lovage/redis'
 * const app = createApp({ store: await RedisStore.open({ url: 'redis://127.0.0.1:6379', prefix: 'myapp:' }) })
 * // or: createApp({ store: 'redis://127.0.0.1:6379?prefix=myapp:' })
 */
export class RedisStore implements EventStore {
  /** The key prefix. */
  readonly prefix: string;
  /** Calls run in Redis: a worker keeps its next batch on its way (see EventStore.pipelined). */
  readonly pipelined = true;
  /** Every process's appends publish a wake-up (see EventStore.wakesEveryProcess). */
  readonly wakesEveryProcess = true;
  /** It takes commuting appends (see AppendRequest.after; P:la in lua/lib.lua). */
  readonly commutes = true;
  readonly #client: Redis;
  readonly #owned: boolean;
  readonly #keys: readonly string[];
  readonly #signal = new Signal();
  /** Identifies this store's own PUBLISH messages: its local listeners were woken already. */
  readonly #instance = newToken();
  readonly #clock: (() => number) | undefined;
  #offset = 0;
  #refresh: NodeJS.Timeout | undefined;
  #subscriber: Redis | undefined;
  /** A second command connection: claims alternate between the two (see #claimClient). */
  #second: Redis | undefined;
  #turn = 0;
  /** Appends that make nodes claimable on their way on the main connection: claims follow them there. */
  #appending = 0;
  #closed = false;

  private constructor(client: Redis, owned: boolean, prefix: string, clock: (() => number) | undefined) {
    this.#client = client;
    this.#owned = owned;
    this.prefix = prefix;
    this.#keys = ['pos', 'log', 'runs', 'ev', 'ver', 'st', 'cr', 'up', 'fin', 'qr', 'tk', 'rows', 'base', 'la'].map((k) => prefix + k);
    this.#clock = clock;
  }

  /**
   * Connects, checks that the server will not evict keys and that the prefix's data is in a layout
   * this Lovage knows (`<prefix>layout`, recorded on first open), and measures the clock offset. Throws
   * UNSUPPORTED when `maxmemory-policy` is not `noeviction`, or when `CONFIG` is disabled (then
   * `skipEvictionCheck: true` lets it start, on your word), or when a newer Lovage wrote the prefix.
   *
   * @example
   * const store = await RedisStore.open({ url: process.env.REDIS_URL, prefix: 'lovage:' })
   */
  static async open(options: RedisStoreOptions = {}): Promise<RedisStore> {
    const prefix = checkPrefix(options.prefix ?? 'lovage:');
    // ioredis would prefix KEYS but not the keys the scripts build from ARGV: the two would part ways.
    if (options.client?.options.keyPrefix) {
      throw new LovageError('VALIDATION', `the ioredis client given to RedisStore.open has keyPrefix ${JSON.stringify(options.client.options.keyPrefix)}; allowed is a client without keyPrefix (use the store's prefix option instead)`);
    }
    const client = options.client ?? new Redis(options.url ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 3 });
    // A lost connection fails the calls in flight (the worker reports those and backs off) while ioredis
    // reconnects; without a listener ioredis would also print every reconnect attempt as unhandled.
    if (!options.client) client.on('error', () => {});
    const store = new RedisStore(client, options.client === undefined, prefix, options.clock);
    try {
      if (options.client === undefined) await client.connect();
      if (!options.skipEvictionCheck) await checkEvictionPolicy(client);
      await checkLayout(client, prefix);
      if (!options.clock) {
        await store.#measureClock();
        store.#refresh = setInterval(() => void store.#measureClock().catch(() => {}), options.clockRefreshMs ?? 10_000);
        store.#refresh.unref();
      }
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  /**
   * `now()` is the local clock plus the offset to Redis `TIME`, measured at open and every
   * `clockRefreshMs` (the midpoint of one round trip): no round trip per call. Leases never use it:
   * the scripts read `TIME` themselves.
   */
  async #measureClock(): Promise<void> {
    const t0 = Date.now();
    const server = await serverTime(this.#client);
    const t1 = Date.now();
    this.#offset = server - (t0 + t1) / 2;
  }

  async now(): Promise<number> {
    return this.nowSync();
  }

  nowSync(): number {
    return this.#clock ? this.#clock() : Math.round(Date.now() + this.#offset);
  }

  #run(script: Script, argv: ScriptArg[], client: Redis = this.#client): Promise<unknown> {
    return runScript(client, script, this.#keys, argv);
  }

  /**
   * The connection for the next claim (or append-and-claim): the two command connections in turn. A
   * worker keeps two such calls on their way at once (`pipelined`); on one connection Redis may read the
   * second with the tail of the first and then run both before it writes either reply, which holds the
   * first batch back for the length of the second. On two connections each reply goes out as its script
   * ends. Their order in Redis is then free: the coordinator only overlaps calls that do not depend on
   * each other (see Coordinator.record).
   */
  #claimClient(): Redis {
    if (this.#appending > 0) return this.#client;
    if (this.#closed || this.#turn++ % 2 === 0) return this.#client;
    if (!this.#second) {
      const second = this.#client.duplicate({ lazyConnect: false });
      // Like the main connection: a lost connection fails the calls in flight; ioredis reconnects.
      second.on('error', () => {});
      this.#second = second;
    }
    return this.#second;
  }

  /** ARGV[1..3] of every script: prefix, clock override, instance id. */
  #head(): ScriptArg[] {
    return [this.prefix, this.#clock ? this.#clock() : '', this.#instance];
  }

  async append(requests: readonly AppendRequest[], options?: AppendOptions): Promise<StoredEvent[][]> {
    refuseTransaction('Redis', options);
    if (requests.length === 0) return [];
    const argv = this.#head();
    encodeAppend(requests, argv);
    // An append that makes nodes claimable wakes this process's idle workers as soon as it has left,
    // not once it has landed: until then every claim goes on the same connection behind it (Redis runs
    // them in that order, so they see it), and a task submitted here starts one round trip sooner. Sent
    // again whole after a NOSCRIPT, it ran after them: it wakes them again once it has landed.
    const wakes = wakesNow(requests);
    const reloaded = scriptReloads();
    const call = this.#run(scripts.append, argv);
    let reply: unknown[];
    if (wakes) {
      this.#appending++;
      try {
        this.#signal.emit();
        reply = (await call) as unknown[];
      } finally {
        this.#appending--;
      }
      if (scriptReloads() !== reloaded) this.#signal.emit();
    } else {
      reply = (await call) as unknown[];
    }
    if (reply[0] === 0) throwRefusal(reply);
    this.#signal.emitWhenDue(requests);
    return storedEvents(requests, reply[1] as number, reply.slice(2) as number[]);
  }

  /** Wakes this process's listeners at once when the batch made nodes claimable (PUBLISH reaches the others). */
  #wokeLocally(requests: readonly AppendRequest[]): void {
    this.#signal.emitWhenDue(requests);
    if (wakesNow(requests)) this.#signal.emit();
  }

  /** See readStreamPaged (redis/read-stream.ts): pages of a run's log, read again if the run changed between two. */
  readStream(runId: string, fromVersion = 1): Promise<StoredEvent[]> {
    return readStreamPaged(runId, fromVersion, (first, size) => this.#run(scripts.readStream, [...this.#head(), runId, first, size]) as Promise<unknown[]>);
  }

  async readAll(afterPosition = 0, limit = 1000): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    let after = Math.max(0, Math.floor(afterPosition));
    const want = Math.max(0, Math.floor(limit));
    while (out.length < want) {
      const reply = (await this.#run(scripts.readAll, [...this.#head(), after, want - out.length, SCAN_BUDGET * 5])) as unknown[];
      for (let i = 1; i < reply.length; i += 2) {
        const field = reply[i] as string;
        const nul = field.lastIndexOf('\u0000');
        out.push(parseItem(reply[i + 1] as string, field.slice(0, nul), Number(field.slice(nul + 1))));
      }
      if (reply[0] === -1) break;
      after = reply[0] as number;
    }
    return out;
  }

  async claim(request: ClaimRequest): Promise<ClaimedNode[]> {
    if (request.queues.length === 0 || request.limit < 1) return [];
    const argv = this.#head();
    const seed = encodeClaim(request, argv);
    return decodeClaim((await this.#run(scripts.claim, argv, this.#claimClient())) as unknown[], 0, request.worker, seed);
  }

  async appendAndClaim(requests: readonly AppendRequest[], claim: ClaimRequest): Promise<ClaimedNode[]> {
    if (claim.queues.length === 0 || claim.limit < 1) {
      await this.append(requests);
      return [];
    }
    const argv = this.#head();
    encodeAppend(requests, argv);
    const seed = encodeClaim(claim, argv);
    const reply = (await this.#run(scripts.appendAndClaim, argv, this.#claimClient())) as unknown[];
    if (reply[0] === 0) throwRefusal(reply);
    const claimed = decodeClaim(reply, 2, claim.worker, seed);
    this.#wokeLocally(requests);
    return claimed;
  }

  async extend(leases: readonly LeaseRef[], leaseMs: number): Promise<boolean[]> {
    if (leases.length === 0) return [];
    if (!Number.isInteger(leaseMs) || leaseMs < 1) throw new LovageError('VALIDATION', `leaseMs ${String(leaseMs)} is invalid; allowed are integers ≥ 1`);
    const argv = [...this.#head(), leaseMs];
    for (const l of leases) argv.push(l.runId, l.nodeId, l.leaseToken);
    return ((await this.#run(scripts.extend, argv)) as number[]).map((ok) => ok === 1);
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const v = (await this.#run(scripts.getRun, [...this.#head(), runId])) as unknown[];
    return v.length === 0 ? undefined : decodeRun(runId, v);
  }

  /**
   * Runs newest first. The index `<prefix>runs` orders runs by createdAt then run id (lexically, so the
   * time range and the keyset page are exact index bounds); status, task and text are checked by the
   * script on each indexed run, at most 2,000 per call, and the client calls again until the page is
   * full: a filter that matches few of many runs costs a scan, never a long block of Redis.
   */
  async listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const limit = pageSize(filter.limit);
    const f = encodeRunFilter(filter);
    let max = f.max;
    const out: RunRecord[] = [];
    for (;;) {
      const argv = [...this.#head(), max, f.min, limit - out.length, SCAN_BUDGET, f.statuses, f.task, f.textFlag, f.text];
      const reply = (await this.#run(scripts.listRuns, argv)) as unknown[];
      for (let i = 1; i < reply.length; i += 7) out.push(decodeRun(reply[i] as string, reply.slice(i + 1, i + 7)));
      if (reply[0] === '' || out.length >= limit) return out;
      max = reply[0] as string;
    }
  }

  async deleteRuns(runIds: readonly string[], options: DeleteOptions = {}): Promise<number> {
    if (runIds.length === 0) return 0;
    return (await this.#run(scripts.deleteRuns, [...this.#head(), (options.onlyStatus ?? []).join(','), ...runIds])) as number;
  }

  async quarantine(runId: string, reason: string): Promise<void> {
    await this.#run(scripts.quarantine, [...this.#head(), runId, reason]);
  }

  /** See {@link EventStore.takeToken}: one script (lua/take-token.lua) on Redis `TIME` (or the injected test clock). */
  async takeToken(key: string, limit: RateLimit | null): Promise<number> {
    return (await this.#run(scripts.takeToken, [...this.#head(), ...rateArgs(key, limit)])) as number;
  }

  async setRateLimit(key: string, limit: RateLimit | null): Promise<void> {
    await this.#run(scripts.setRateLimit, [...this.#head(), ...rateArgs(key, limit)]);
  }

  /** See {@link EventStore.takeTurn}: the same script, booking the turn in `<prefix>rt:<key>`. */
  async takeTurn(key: string, limit: RateLimit | null): Promise<number> {
    return (await this.#run(scripts.takeToken, [...this.#head(), ...rateArgs(key, limit), '1'])) as number;
  }

  /** Local appends wake listeners at once; other processes' appends arrive through the subscriber connection. */
  onReady(listener: () => void): () => void {
    this.#subscribe();
    return this.#signal.on(listener);
  }

  #subscribe(): void {
    if (this.#subscriber || this.#closed) return;
    const sub = this.#client.duplicate({ lazyConnect: false });
    this.#subscriber = sub;
    const channel = `${this.prefix}ready`;
    sub.on('message', (ch: string, message: string) => {
      if (ch === channel && message !== this.#instance) this.#signal.emit();
    });
    // A subscriber that cannot connect only costs wake-up speed: the workers' poll still finds the work.
    sub.on('error', () => {});
    sub.subscribe(channel).catch(() => {});
  }

  /** Resolves once the subscriber listens (tests; workers need not wait). */
  async subscribed(): Promise<void> {
    this.#subscribe();
    const sub = this.#subscriber;
    if (sub) await sub.subscribe(`${this.prefix}ready`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#refresh);
    this.#signal.close();
    const quit = async (c: Redis) => {
      try {
        if (c.status === 'ready') await c.quit();
        else c.disconnect();
      } catch {
        c.disconnect();
      }
    };
    if (this.#subscriber) await quit(this.#subscriber);
    if (this.#second) await quit(this.#second);
    if (this.#owned) await quit(this.#client);
  }
}

/** Whether appending these makes nodes claimable now (a delayed NodeReady, a countdown or eta, does not: like the script's PUBLISH, it wakes nobody). */
function wakesNow(requests: readonly AppendRequest[]): boolean {
  return requests.some((r) => r.events.some((e) => (e.type === 'NodeReady' && e.availableAt === undefined) || e.type === 'NodeReleased' || e.type === 'NodeLeaseExpired'));
}

/**
 * Opens a Redis store from a store URL: `redis://host:port[/db][?prefix=app:]` or `rediss://...`
 * (TLS). Throws VALIDATION for a malformed URL or an unknown query parameter.
 *
 * @example
 * const store = await openRedisUrl('redis://127.0.0.1:6379/0?prefix=myapp:')
 */
export async function openRedisUrl(url: string): Promise<RedisStore> {
  const parsed = parseRedisUrl(url);
  return RedisStore.open({ url: parsed.url, ...(parsed.prefix !== undefined ? { prefix: parsed.prefix } : {}) });
}

import type pg from 'pg';

const REFRESH_MS = 10_000;

/**
 * The database's clock as seen from here: the offset to the local clock, measured at open (from the
 * midpoint of a round trip) and measured again in the background at most every 10 s while `now()` is
 * called. Workers read the clock once per completion; a round trip each time would cost more than the
 * completion. Lease expiry never uses this: SQL reads `clock_timestamp()` itself.
 */
export class DbClock {
  readonly #pool: pg.Pool;
  #offset = 0;
  #syncedAt = Number.NEGATIVE_INFINITY;
  #syncing: Promise<void> | undefined;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Measures the offset now. */
  async sync(): Promise<void> {
    const t0 = Date.now();
    const { rows } = await this.#pool.query<{ now: number }>({ name: 'lovage_clock', text: 'SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now' });
    const t1 = Date.now();
    this.#offset = rows[0]!.now - Math.round((t0 + t1) / 2);
    this.#syncedAt = t1;
  }

  /** The database's time, epoch ms (from the cached offset; a stale offset is refreshed in the background). */
  now(): number {
    const local = Date.now();
    if (local - this.#syncedAt > REFRESH_MS && !this.#syncing) {
      this.#syncing = this.sync().catch(() => undefined).finally(() => { this.#syncing = undefined; });
    }
    return local + this.#offset;
  }

  /** The last measured offset, ms (database minus local). */
  get offsetMs(): number {
    return this.#offset;
  }
}

import type Database from 'better-sqlite3';
import { checkRateKey, checkRateLimit, NOT_LIMITED, takeFromLog, type RateLimit } from './window.ts';

interface RateRow {
  count: number | null;
  period_ms: number | null;
  log: string | null;
}

/**
 * The SQLite store's rate limits (tables `rate_limits`: run-time overrides, and `rate_log`: each key's
 * sliding-window log as JSON `[time, n, ...]`, see window.ts), on the store's clock. Every process on
 * the file shares them: a grant re-reads and writes the log inside `BEGIN IMMEDIATE`, so two processes
 * never both take the last permit. A refusal costs one read outside any write lock: grants only ever
 * add to a log, so a refusal read from a committed snapshot still holds.
 */
export class SqliteRate {
  readonly #clock: () => number;
  readonly #read: Database.Statement<[string, string, string], RateRow>;
  readonly #write: Database.Statement<[string, string]>;
  readonly #setOverride: Database.Statement<[string, number, number]>;
  readonly #clearOverride: Database.Statement<[string]>;
  readonly #getOverride: Database.Statement<[string], { count: number; period_ms: number }>;
  readonly #tx: Database.Transaction<(key: string, limit: RateLimit | null) => number>;

  constructor(db: Database.Database, clock: () => number) {
    this.#clock = clock;
    // One statement, so the override and the log come from one snapshot.
    this.#read = db.prepare(
      `SELECT (SELECT count FROM rate_limits WHERE key = ?) AS count, (SELECT period_ms FROM rate_limits WHERE key = ?) AS period_ms,
        (SELECT log FROM rate_log WHERE key = ?) AS log`,
    );
    this.#write = db.prepare('INSERT INTO rate_log (key, log) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET log = excluded.log');
    this.#setOverride = db.prepare('INSERT INTO rate_limits (key, count, period_ms) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET count = excluded.count, period_ms = excluded.period_ms');
    this.#clearOverride = db.prepare('DELETE FROM rate_limits WHERE key = ?');
    this.#getOverride = db.prepare('SELECT count, period_ms FROM rate_limits WHERE key = ?');
    this.#tx = db.transaction((key: string, limit: RateLimit | null) => this.#step(key, limit, true));
  }

  /** See EventStore.takeToken. */
  take(key: string, limit: RateLimit | null): number {
    checkRateKey(key);
    const checked = limit === null ? null : checkRateLimit(limit);
    const wait = this.#step(key, checked, false);
    return wait !== 0 ? wait : this.#tx.immediate(key, checked);
  }

  /** See EventStore.getRateLimit. */
  get(key: string): RateLimit | null {
    const row = this.#getOverride.get(checkRateKey(key));
    return row ? { count: row.count, periodMs: row.period_ms } : null;
  }

  /** See EventStore.setRateLimit. */
  set(key: string, limit: RateLimit | null): void {
    checkRateKey(key);
    if (limit === null) this.#clearOverride.run(key);
    else {
      const l = checkRateLimit(limit);
      this.#setOverride.run(key, l.count, l.periodMs);
    }
  }

  /** Decides on the stored state; with `write`, records a grant (inside the write transaction). */
  #step(key: string, limit: RateLimit | null, write: boolean): number {
    const row = this.#read.get(key, key, key)!;
    const effective = row.count !== null && row.period_ms !== null ? { count: row.count, periodMs: row.period_ms } : limit;
    if (effective === null) return NOT_LIMITED;
    const log = row.log === null ? [] : (JSON.parse(row.log) as number[]);
    const wait = takeFromLog(log, effective, this.#clock());
    if (wait === 0 && write) this.#write.run(key, JSON.stringify(log));
    return wait;
  }
}

import type Database from 'better-sqlite3';
import { checkRateKey, checkRateLimit, nextTurn, NOT_LIMITED, takeFromLog, type RateLimit } from './window.ts';

interface RateRow {
  count: number | null;
  period_ms: number | null;
  log: string | null;
  turn_at: number | null;
  turn_left: number | null;
}

/**
 * The SQLite store's rate limits (tables `rate_limits`: run-time overrides, and `rate_log`: each key's
 * sliding-window log as JSON `[time, n, ...]`, see window.ts, and its latest turn), on the store's
 * clock. Every process on the file shares them: a grant re-reads and writes the log inside `BEGIN
 * IMMEDIATE`, so two processes never both take the last permit. A refusal costs one read outside any
 * write lock (grants only ever add to a log, so a refusal read from a committed snapshot still holds),
 * except with turns: booking one writes, inside the same kind of transaction.
 */
export class SqliteRate {
  readonly #clock: () => number;
  readonly #read: Database.Statement<[string, string, string], RateRow>;
  readonly #write: Database.Statement<[string, string]>;
  readonly #writeTurn: Database.Statement<[number, number, string]>;
  readonly #setOverride: Database.Statement<[string, number, number]>;
  readonly #clearOverride: Database.Statement<[string]>;
  readonly #tx: Database.Transaction<(key: string, limit: RateLimit | null, turns: boolean) => number>;

  constructor(db: Database.Database, clock: () => number) {
    this.#clock = clock;
    // One statement, so the override and the log come from one snapshot.
    this.#read = db.prepare(
      `SELECT (SELECT count FROM rate_limits WHERE key = ?) AS count, (SELECT period_ms FROM rate_limits WHERE key = ?) AS period_ms,
        l.log, l.turn_at, l.turn_left FROM (SELECT NULL) LEFT JOIN rate_log l ON l.key = ?`,
    );
    this.#write = db.prepare('INSERT INTO rate_log (key, log) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET log = excluded.log');
    this.#writeTurn = db.prepare('UPDATE rate_log SET turn_at = ?, turn_left = ? WHERE key = ?');
    this.#setOverride = db.prepare('INSERT INTO rate_limits (key, count, period_ms) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET count = excluded.count, period_ms = excluded.period_ms');
    this.#clearOverride = db.prepare('DELETE FROM rate_limits WHERE key = ?');
    this.#tx = db.transaction((key: string, limit: RateLimit | null, turns: boolean) => this.#step(key, limit, true, turns));
  }

  /** See EventStore.takeToken; with `turns`, EventStore.takeTurn. */
  take(key: string, limit: RateLimit | null, turns = false): number {
    checkRateKey(key);
    const checked = limit === null ? null : checkRateLimit(limit);
    const wait = this.#step(key, checked, false, false);
    return wait === 0 || (wait > 0 && turns) ? this.#tx.immediate(key, checked, turns) : wait;
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

  /** Decides on the stored state; with `write`, records a grant or (with `turns`) books a turn (inside the write transaction). */
  #step(key: string, limit: RateLimit | null, write: boolean, turns: boolean): number {
    const row = this.#read.get(key, key, key)!;
    const effective = row.count !== null && row.period_ms !== null ? { count: row.count, periodMs: row.period_ms } : limit;
    if (effective === null) return NOT_LIMITED;
    const log = row.log === null ? [] : (JSON.parse(row.log) as number[]);
    const now = this.#clock();
    const wait = takeFromLog(log, effective, now);
    if (!write) return wait;
    if (wait === 0) {
      this.#write.run(key, JSON.stringify(log));
      return 0;
    }
    if (!turns) return wait;
    // A refusal has a log row (a permit was granted in the window).
    const turn = row.turn_at === null || row.turn_left === null ? undefined : { at: row.turn_at, left: row.turn_left };
    const next = nextTurn(turn, effective, now, wait);
    if (next.turn) this.#writeTurn.run(next.turn.at, next.turn.left, key);
    return next.wait;
  }
}

// Global rate limits in Postgres: the tables and the take_token function (schema version 3), and the
// store's two calls. The algorithm is src/eventstore/rate/window.ts's sliding-window log, in plpgsql.
import type pg from 'pg';
import { checkRateKey, checkRateLimit, RATE_LOG_SLOTS, type RateLimit } from '../rate/window.ts';
import { namedQuery } from './query.ts';
import { quoteSchema } from './schema-name.ts';

/** The store clock inside SQL, as the lease functions read it: the injected one (tests), else the database's. */
const NOW = `coalesce(p_now, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)`;

/**
 * `take_token(key, count, period_ms, now)`: EventStore.takeToken in one call. `count` NULL: no limit
 * unless overridden. Returns 0 (granted), -1 (no limit, no override: nothing taken) or the ms to wait.
 *
 * A refusal is decided on a plain read (no row lock, nothing written): grants only ever add to a log,
 * so a refusal read from a committed snapshot still holds. A grant reads again under `FOR UPDATE` and
 * decides on that: concurrent takers of one key queue on its row, none can take the same last permit.
 * The log is `[time, n, time, n, ...]` ascending (see window.ts); slots that left the window go with the
 * next grant's write.
 *
 * A grant commits with `synchronous_commit = off` (its own transaction only): takers of one key queue on
 * its row, so a WAL flush per grant would cap a key at one grant per disk flush, cluster-wide (~170-450/s
 * measured here, 1,000-3,400/s without). What it risks: a Postgres crash may forget the grants of its
 * last few hundred ms (wal_writer_delay), letting that many extra permits through once; a rate-limit
 * permit is not worth a flush. Nothing else of the store changes durability.
 */
function takeToken(s: string): string {
  return `
CREATE OR REPLACE FUNCTION ${s}.take_token(p_key text, p_count integer, p_period bigint, p_now bigint)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
  v_now bigint := ${NOW};
  v_count integer;
  v_period bigint;
  v_log bigint[];
  v_len integer;
  v_first integer;
  v_sum bigint;
  v_i integer;
  v_slot bigint;
BEGIN
  SELECT o.count, o.period_ms INTO v_count, v_period FROM ${s}.rate_limits o WHERE o.key = p_key;
  IF NOT FOUND THEN
    IF p_count IS NULL THEN
      RETURN -1;
    END IF;
    v_count := p_count;
    v_period := p_period;
  END IF;
  FOR v_pass IN 1..2 LOOP
    IF v_pass = 1 THEN
      SELECT r.log INTO v_log FROM ${s}.rate_log r WHERE r.key = p_key;
    ELSE
      -- This transaction (take_token's own: the store never calls it inside another) commits without
      -- waiting for the WAL flush; see the comment above.
      PERFORM set_config('synchronous_commit', 'off', true);
      SELECT r.log INTO v_log FROM ${s}.rate_log r WHERE r.key = p_key FOR UPDATE;
      IF NOT FOUND THEN
        INSERT INTO ${s}.rate_log (key, log) VALUES (p_key, '{}') ON CONFLICT (key) DO NOTHING;
        SELECT r.log INTO v_log FROM ${s}.rate_log r WHERE r.key = p_key FOR UPDATE;
      END IF;
    END IF;
    v_log := coalesce(v_log, '{}');
    v_len := cardinality(v_log);
    -- The window: slots whose newest grant is after now - period.
    v_first := 1;
    WHILE v_first < v_len AND v_log[v_first] <= v_now - v_period LOOP
      v_first := v_first + 2;
    END LOOP;
    v_sum := 0;
    v_i := v_first;
    WHILE v_i < v_len LOOP
      v_sum := v_sum + v_log[v_i + 1];
      v_i := v_i + 2;
    END LOOP;
    IF v_sum >= v_count THEN
      -- Refused: wait until enough of the oldest slots leave the window for one more permit.
      v_i := v_first;
      LOOP
        v_sum := v_sum - v_log[v_i + 1];
        EXIT WHEN v_sum < v_count OR v_i + 2 >= v_len;
        v_i := v_i + 2;
      END LOOP;
      RETURN v_log[v_i] + v_period - v_now;
    END IF;
  END LOOP;
  -- Granted (the row is locked): drop the slots that left the window, count the grant in the newest
  -- slot when it is the same slot (or the clock stepped back), else in a new one.
  v_log := v_log[v_first:v_len];
  v_len := cardinality(v_log);
  v_slot := CASE WHEN v_count <= ${RATE_LOG_SLOTS} THEN 1 ELSE greatest(1, v_period / ${RATE_LOG_SLOTS}) END;
  IF v_len > 0 AND (v_now <= v_log[v_len - 1] OR v_now / v_slot = v_log[v_len - 1] / v_slot) THEN
    v_log[v_len - 1] := greatest(v_now, v_log[v_len - 1]);
    v_log[v_len] := v_log[v_len] + 1;
  ELSE
    v_log := v_log || ARRAY[v_now, 1::bigint];
  END IF;
  UPDATE ${s}.rate_log SET log = v_log WHERE key = p_key;
  RETURN 0;
END
$fn$`;
}

/**
 * Schema version 3's statements, as it shipped (never edit: a later change is a new version).
 * `rate_limits`: the run-time overrides (setRateLimit); `rate_log`: each key's sliding-window log.
 */
export function rateLimitsSqlV3(s: string): string[] {
  return [
    `CREATE TABLE ${s}.rate_limits (key text COLLATE "C" PRIMARY KEY, count integer NOT NULL, period_ms bigint NOT NULL)`,
    // One row per key, rewritten by every grant: room on its page for the next version (HOT updates).
    `CREATE TABLE ${s}.rate_log (key text COLLATE "C" PRIMARY KEY, log bigint[] NOT NULL) WITH (fillfactor = 50)`,
    takeToken(s),
  ];
}

/**
 * `take_turn(key, count, period_ms, now)`: EventStore.takeTurn in one call: `take_token` on one clock
 * reading, and on a refusal the caller's turn (nextTurn in ../rate/window.ts), booked in the key's
 * rate_log row under its lock. Commits without waiting for the WAL flush, like a grant: a Postgres
 * crash may forget the last turns booked, whose takers are then told turns that overlap (some are
 * handed back once more); the limit itself never depends on turns.
 */
function takeTurn(s: string): string {
  return `
CREATE FUNCTION ${s}.take_turn(p_key text, p_count integer, p_period bigint, p_now bigint)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
  v_now bigint := ${NOW};
  v_wait bigint := ${s}.take_token(p_key, p_count, p_period, v_now);
  v_count integer;
  v_period bigint;
  v_at bigint;
  v_left integer;
BEGIN
  IF v_wait <= 0 THEN
    RETURN v_wait;
  END IF;
  SELECT o.count, o.period_ms INTO v_count, v_period FROM ${s}.rate_limits o WHERE o.key = p_key;
  IF NOT FOUND THEN
    IF p_count IS NULL THEN
      RETURN v_wait; -- the override was cleared since take_token read it
    END IF;
    v_count := p_count;
    v_period := p_period;
  END IF;
  PERFORM set_config('synchronous_commit', 'off', true);
  SELECT r.turn_at, r.turn_left INTO v_at, v_left FROM ${s}.rate_log r WHERE r.key = p_key FOR UPDATE;
  IF NOT FOUND THEN
    RETURN v_wait; -- a refusal has a log row; none: nothing to book against
  END IF;
  IF v_at IS NULL OR v_at < v_now + v_wait THEN
    v_at := v_now + v_wait;
    v_left := v_count - 1;
  ELSIF v_left > 0 THEN
    v_left := v_left - 1;
  ELSE
    v_at := v_at + v_period + greatest(20, (v_period + 19) / 20);
    IF v_at - v_now > greatest(60000, 4 * v_period) THEN
      RETURN greatest(60000, 4 * v_period);
    END IF;
    v_left := v_count - 1;
  END IF;
  UPDATE ${s}.rate_log SET turn_at = v_at, turn_left = v_left WHERE key = p_key;
  RETURN v_at - v_now;
END
$fn$`;
}

/** Schema version 6's statements: rate-limit turns (the latest turn of each key, and take_turn). */
export function rateTurnsSqlV6(s: string): string[] {
  return [`ALTER TABLE ${s}.rate_log ADD COLUMN turn_at bigint, ADD COLUMN turn_left integer`, takeTurn(s)];
}

const statements = new Map<string, { take: string; turn: string; set: string; clear: string }>();

function sqlFor(schema: string): { take: string; turn: string; set: string; clear: string } {
  let q = statements.get(schema);
  if (!q) {
    const s = quoteSchema(schema);
    q = {
      take: `SELECT ${s}.take_token($1::text, $2::integer, $3::bigint, $4::bigint)::float8 AS wait`,
      turn: `SELECT ${s}.take_turn($1::text, $2::integer, $3::bigint, $4::bigint)::float8 AS wait`,
      set: `INSERT INTO ${s}.rate_limits (key, count, period_ms) VALUES ($1, $2, $3)
        ON CONFLICT (key) DO UPDATE SET count = EXCLUDED.count, period_ms = EXCLUDED.period_ms`,
      clear: `DELETE FROM ${s}.rate_limits WHERE key = $1`,
    };
    statements.set(schema, q);
  }
  return q;
}

/**
 * EventStore.takeToken (or, with `turns`, takeTurn) on Postgres: one round trip. `now`: the injected
 * test clock, or null for the database's.
 */
export async function takeTokenPg(pool: pg.Pool, schema: string, key: string, limit: RateLimit | null, now: number | null, turns = false): Promise<number> {
  checkRateKey(key);
  const l = limit === null ? null : checkRateLimit(limit);
  const q = sqlFor(schema);
  const rows = await namedQuery<{ wait: number }>(pool, turns ? q.turn : q.take, [key, l?.count ?? null, l?.periodMs ?? null, now]);
  return rows[0]!.wait;
}

/** EventStore.setRateLimit on Postgres. */
export async function setRateLimitPg(pool: pg.Pool, schema: string, key: string, limit: RateLimit | null): Promise<void> {
  checkRateKey(key);
  if (limit === null) {
    await namedQuery(pool, sqlFor(schema).clear, [key]);
  } else {
    const l = checkRateLimit(limit);
    await namedQuery(pool, sqlFor(schema).set, [key, l.count, l.periodMs]);
  }
}

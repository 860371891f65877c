// The server-side functions as schema version 1 created them, frozen: migration 1 must create
// exactly what it always did (a database migrated to version 1 then upgrades through version 2,
// which replaces them; see functions-sql.ts for the current ones). Never edit this file.

const CHANNEL = 'lovage_ready';

/** The columns every claim function returns, in order. */
const CLAIMED = `run_id text, node_id text, task text, args text, attempt integer, expired_worker text, lease_token text,
  at float8, lease_expires float8, version integer, expired_position float8, started_position float8, run_version integer, history text`;

const HISTORY_MAX_EVENTS = 64;

/** The store clock inside SQL: the injected one (tests), else the database's. */
const NOW = `coalesce(p_now, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)`;

/**
 * `append_events(new, old, events, ready, drop, lease, notify)`: the JSON arguments are built by
 * `buildAppend`. Checks every run's expected version (CONCURRENCY: SQLSTATE LV409, DETAIL = run id),
 * writes the events and their projection; returns the positions in input order.
 */
function appendEvents(s: string): string {
  const cols = 'r text, ex integer, n integer, st text, f integer, fs boolean, t text[], c bigint, u bigint';
  return `
CREATE OR REPLACE FUNCTION ${s}.append_events(p_new json, p_old json, p_events json, p_ready json, p_drop json, p_lease json, p_notify text)
RETURNS float8[] LANGUAGE plpgsql AS $fn$
DECLARE
  v_run text;
  v_node text;
  v_expected integer;
  v_version integer;
  v_count bigint;
  v_positions float8[];
BEGIN
  -- New runs: the run id is unique; a run that exists already (or is being created) is a conflict.
  IF p_new IS NOT NULL THEN
    WITH ins AS (
      INSERT INTO ${s}.runs (run_id, status, version, finished_version, tasks, created_at, updated_at)
      SELECT j.r, coalesce(j.st, 'running'), j.n, j.f, coalesce(j.t, '{}'), j.c, j.u FROM json_to_recordset(p_new) AS j(${cols}) ORDER BY j.r
      ON CONFLICT (run_id) DO NOTHING RETURNING run_id
    )
    SELECT j.r INTO v_run FROM json_to_recordset(p_new) AS j(r text) WHERE j.r NOT IN (SELECT ins.run_id FROM ins) LIMIT 1;
    IF v_run IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = 'LV409', DETAIL = v_run, MESSAGE = format('run %s is not at version 0: it exists already', v_run);
    END IF;
  END IF;
  -- Runs that exist: lock them in run id order, bump the versions that are as expected; any other is a conflict.
  IF p_old IS NOT NULL THEN
    WITH w AS MATERIALIZED (SELECT * FROM json_to_recordset(p_old) AS j(${cols})),
    locked AS MATERIALIZED (
      SELECT u.run_key, u.run_id, u.version FROM ${s}.runs u WHERE u.run_id IN (SELECT w.r FROM w) ORDER BY u.run_id FOR UPDATE
    ),
    up AS (
      UPDATE ${s}.runs u SET version = u.version + w.n,
        status = CASE WHEN u.status = 'quarantined' OR w.st IS NULL THEN u.status ELSE w.st END,
        finished_version = CASE WHEN w.fs THEN w.f ELSE u.finished_version END, updated_at = w.u
      FROM locked l JOIN w ON w.r = l.run_id WHERE u.run_key = l.run_key AND l.version = w.ex
    )
    SELECT w.r, w.ex, l.version INTO v_run, v_expected, v_version
    FROM w LEFT JOIN locked l ON l.run_id = w.r WHERE l.version IS DISTINCT FROM w.ex LIMIT 1;
    IF v_run IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = 'LV409', DETAIL = v_run, MESSAGE = format('run %s is not at version %s: %s', v_run, v_expected,
        CASE WHEN v_version IS NULL THEN 'it does not exist' ELSE format('it is at version %s', v_version) END);
    END IF;
  END IF;
  IF p_drop IS NOT NULL THEN
    DELETE FROM ${s}.ready d USING json_to_recordset(p_drop) AS j(r text, n text), ${s}.runs u
    WHERE u.run_id = j.r AND d.run_key = u.run_key AND d.node_id = j.n;
  END IF;
  -- The events, then the ready rows of NodeReady events (age = the event's position). The ready
  -- queue holds one row per node: a second NodeReady for a node conflicts.
  WITH ev AS (
    INSERT INTO ${s}.events (run_key, version, type, data)
    SELECT u.run_key, j.v, j.t, j.e::text FROM json_to_recordset(p_events) AS j(i integer, r text, v integer, t text, e json)
    JOIN ${s}.runs u ON u.run_id = j.r ORDER BY j.i
    RETURNING position, run_key, version
  ), rd AS (
    INSERT INTO ${s}.ready (run_key, node_id, run_id, queue, priority, seq, task, args, attempts, worker, lease_token, lease_expires)
    SELECT ev.run_key, j.n, j.r, j.q, j.p, ev.position, j.t, j.a::text, coalesce(j.at, 0), j.w, j.k, j.x
    FROM json_to_recordset(p_ready) AS j(r text, v integer, n text, q text, p integer, t text, a json, at integer, w text, k text, x bigint)
    JOIN ${s}.runs u ON u.run_id = j.r JOIN ev ON ev.run_key = u.run_key AND ev.version = j.v
    ON CONFLICT DO NOTHING RETURNING 1
  )
  SELECT array_agg(ev.position::float8 ORDER BY ev.position), (SELECT count(*) FROM rd) INTO v_positions, v_count FROM ev;
  IF p_ready IS NOT NULL AND v_count < json_array_length(p_ready) THEN
    SELECT j.r, j.n INTO v_run, v_node FROM json_to_recordset(p_ready) AS j(r text, n text)
    JOIN ${s}.runs u ON u.run_id = j.r JOIN ${s}.ready d ON d.run_key = u.run_key AND d.node_id = j.n
    WHERE d.seq::float8 <> ALL (v_positions) LIMIT 1;
    RAISE EXCEPTION USING ERRCODE = 'LV409', DETAIL = coalesce(v_run, ''),
      MESSAGE = format('node %s of run %s is already in the ready queue', coalesce(v_node, '?'), coalesce(v_run, '?'));
  END IF;
  IF p_lease IS NOT NULL THEN
    UPDATE ${s}.ready d SET lease_token = j.k, lease_expires = j.x, worker = j.w, attempts = coalesce(j.at, d.attempts)
    FROM json_to_recordset(p_lease) AS j(r text, n text, k text, x bigint, w text, at integer), ${s}.runs u
    WHERE u.run_id = j.r AND d.run_key = u.run_key AND d.node_id = j.n;
  END IF;
  IF p_notify IS NOT NULL THEN
    PERFORM pg_notify('${CHANNEL}', p_notify);
  END IF;
  RETURN coalesce(v_positions, '{}');
END
$fn$`;
}

/**
 * One claim statement: lock up to `limit` candidates (SKIP LOCKED, ready row and run row together),
 * append NodeLeaseExpired? + NodeStarted to each run, lease the rows, return them. The events' JSON
 * mirrors `decideStart` key for key (a test checks they read back equal).
 */
function claimStatement(s: string, kind: 'expired' | 'fresh', queues: 'one' | 'many', limit: string, offset: string): string {
  const queue = queues === 'one' ? 'r.queue = p_queues[1]' : 'r.queue = ANY (p_queues)';
  const where = kind === 'expired' ? `r.lease_token IS NOT NULL AND r.lease_expires < v_now AND ${queue}` : `r.lease_token IS NULL AND ${queue}`;
  const order = kind === 'expired' ? 'r.lease_expires, r.seq' : 'r.priority DESC, r.seq';
  const json = (text: string) => `to_json(${text})::text`;
  return `
    WITH picked AS MATERIALIZED (
      SELECT r.run_key, r.node_id, r.run_id, r.task, r.args, r.attempts, r.priority, r.seq, r.lease_expires,
        ${kind === 'expired' ? 'r.worker' : 'NULL::text'} AS old_worker, u.version AS run_version
      FROM ${s}.ready r JOIN ${s}.runs u ON u.run_key = r.run_key
      WHERE ${where} ORDER BY ${order} LIMIT ${limit}
      FOR UPDATE OF r, u SKIP LOCKED
    ), numbered AS (
      SELECT p.*, (row_number() OVER (ORDER BY ${order.replaceAll('r.', 'p.')}))::integer + ${offset} AS k,
        CASE WHEN p.old_worker IS NULL THEN 1 ELSE 2 END AS ne
      FROM picked p
    ), n AS (
      SELECT q.*, q.run_version + (sum(q.ne) OVER (PARTITION BY q.run_key ORDER BY q.k))::integer AS v,
        q.k = min(q.k) OVER (PARTITION BY q.run_key) AS first
      FROM numbered q
    ), runs_up AS (
      UPDATE ${s}.runs u SET version = t.v, updated_at = v_now
      FROM (SELECT n.run_key, max(n.v) AS v FROM n GROUP BY n.run_key) t WHERE u.run_key = t.run_key
    ), ready_up AS (
      UPDATE ${s}.ready r SET lease_token = p_tokens[n.k], lease_expires = v_now + p_lease_ms, worker = p_worker, attempts = n.attempts + 1
      FROM n WHERE r.run_key = n.run_key AND r.node_id = n.node_id
    ), ev AS (
      INSERT INTO ${s}.events (run_key, version, type, data)
      SELECT e.run_key, e.version, e.type, e.data FROM (
        SELECT n.run_key, n.v - 1 AS version, 'NodeLeaseExpired' AS type, n.k, 0 AS o,
          '{"type":"NodeLeaseExpired","at":' || v_now || ',"nodeId":' || ${json('n.node_id')} || ',"attempt":' || n.attempts
          || ',"worker":' || ${json('n.old_worker')} || '}' AS data
        FROM n WHERE n.old_worker IS NOT NULL
        UNION ALL
        SELECT n.run_key, n.v, 'NodeStarted', n.k, 1,
          '{"type":"NodeStarted","at":' || v_now || ',"nodeId":' || ${json('n.node_id')} || ',"attempt":' || (n.attempts + 1)
          || ',"worker":' || ${json('p_worker')} || ',"leaseToken":' || ${json('p_tokens[n.k]')} || ',"leaseExpiresAt":' || (v_now + p_lease_ms) || '}'
        FROM n
      ) e ORDER BY e.k, e.o
      RETURNING position, run_key, version
    )
    SELECT n.run_id, n.node_id, n.task, n.args, n.attempts + 1, n.old_worker, p_tokens[n.k], v_now::float8, (v_now + p_lease_ms)::float8, n.v,
      x.position::float8, st.position::float8, n.run_version, hist.h
    FROM n JOIN ev st ON st.run_key = n.run_key AND st.version = n.v
    LEFT JOIN ev x ON n.old_worker IS NOT NULL AND x.run_key = n.run_key AND x.version = n.v - 1
    -- A small run's log before this claim, once per run: [version,position,event],... (see PostgresStore's prefetch).
    LEFT JOIN LATERAL (
      SELECT string_agg('[' || e.version || ',' || e.position || ',' || e.data || ']', ',' ORDER BY e.version) AS h
      FROM ${s}.events e WHERE n.first AND n.run_version <= ${HISTORY_MAX_EVENTS} AND e.run_key = n.run_key AND e.version <= n.run_version
    ) hist ON true
    ORDER BY n.k`;
}

/**
 * `claim_nodes(queues, limit, worker, lease_ms, tokens, now)`: expired leases first (oldest expiry
 * first), then fresh rows by priority then age. `tokens` holds `limit` new lease tokens.
 */
function claimNodes(s: string): string {
  const fresh = (queues: 'one' | 'many') => claimStatement(s, 'fresh', queues, 'p_limit - v_got', 'v_got');
  return `
CREATE OR REPLACE FUNCTION ${s}.claim_nodes(p_queues text[], p_limit integer, p_worker text, p_lease_ms bigint, p_tokens text[], p_now bigint)
RETURNS TABLE (${CLAIMED}) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_now bigint := ${NOW};
  v_got integer := 0;
BEGIN
  IF p_limit < 1 OR coalesce(cardinality(p_queues), 0) = 0 THEN
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM ${s}.ready r WHERE r.lease_token IS NOT NULL AND r.lease_expires < v_now) THEN
    RETURN QUERY ${claimStatement(s, 'expired', 'many', 'p_limit', '0')};
    GET DIAGNOSTICS v_got = ROW_COUNT;
  END IF;
  IF v_got < p_limit THEN
    IF cardinality(p_queues) = 1 THEN
      RETURN QUERY ${fresh('one')};
    ELSE
      RETURN QUERY ${fresh('many')};
    END IF;
  END IF;
END
$fn$`;
}

/** `append_and_claim(...)`: `append_events` then `claim_nodes`, in one transaction and one round trip. */
function appendAndClaim(s: string): string {
  return `
CREATE OR REPLACE FUNCTION ${s}.append_and_claim(p_new json, p_old json, p_events json, p_ready json, p_drop json, p_lease json, p_notify text,
  p_queues text[], p_limit integer, p_worker text, p_lease_ms bigint, p_tokens text[], p_now bigint)
RETURNS TABLE (${CLAIMED}) LANGUAGE plpgsql AS $fn$
BEGIN
  IF p_events IS NOT NULL THEN
    PERFORM ${s}.append_events(p_new, p_old, p_events, p_ready, p_drop, p_lease, p_notify);
  END IF;
  RETURN QUERY SELECT * FROM ${s}.claim_nodes(p_queues, p_limit, p_worker, p_lease_ms, p_tokens, p_now);
END
$fn$`;
}

/** `extend_leases(runs, nodes, tokens, lease_ms, now)`: one boolean per lease, true while it is held. */
function extendLeases(s: string): string {
  return `
CREATE OR REPLACE FUNCTION ${s}.extend_leases(p_runs text[], p_nodes text[], p_tokens text[], p_lease_ms bigint, p_now bigint)
RETURNS boolean[] LANGUAGE sql AS $fn$
  WITH j AS (SELECT * FROM unnest(p_runs, p_nodes, p_tokens) WITH ORDINALITY AS j(r, n, k, i)),
  up AS (
    UPDATE ${s}.ready d SET lease_expires = ${NOW} + p_lease_ms
    FROM j, ${s}.runs u WHERE u.run_id = j.r AND d.run_key = u.run_key AND d.node_id = j.n AND d.lease_token = j.k
    RETURNING j.i
  )
  SELECT coalesce(array_agg(j.i IN (SELECT up.i FROM up) ORDER BY j.i), '{}') FROM j
$fn$`;
}

/** The functions of schema version 1. */
export function functionsSqlV1(s: string): string[] {
  return [appendEvents(s), claimNodes(s), appendAndClaim(s), extendLeases(s)];
}

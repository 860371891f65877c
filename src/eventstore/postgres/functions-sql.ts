// The server-side functions of the Postgres store, as SQL text for one schema (`s`, quoted).
// Each hot operation is one function call: one round trip, one transaction when called on its own.
//
// Lock order, so that two transactions never wait on each other in a cycle: an append locks the run
// rows it writes first, in run id order, then touches only those runs' ready rows; a claim never waits
// (it locks ready rows and their run rows together with SKIP LOCKED).
//
// What keeps a batch cheap (schema version 4; see docs/benchmarks.md, "Postgres"):
// - One events row holds a run's consecutive events of one append or claim: `n` of them, `data` their
//   JSON array (rows written before schema version 4 hold one event object each); a WorkflowSubmitted
//   has a row of its own. A worker's batch of 100 completions of one group is one row, not 100: one
//   heap tuple and two index entries.
//   Positions: a row takes `position` from the identity (which steps by EVENT_ROW_MAX) and its
//   events are `position + 0 .. n - 1`, so every event keeps a position of its own, in one global order.
// - Arguments are parallel arrays (`unnest`) and the events one JSON array, not json_to_recordset
//   (which builds a hash table per object: ~4 µs per event against ~0.2 µs).
// - A run id is looked up once per batch (append: the lateral lock below; claim: the join that locks
//   the run row). Later statements use `v_keys[g]`, the key of the batch's g-th run; a claim reads and
//   updates the rows it locked by ctid (see lockStatement): no join on run ids, no plan that scans a table.
// - The functions run with generic plans (`plan_cache_mode`): a custom plan of the claim statement
//   costs ~2 ms to make, on every call. And with `enable_seqscan = off` (schema version 5): a plan made
//   while a table was small must not scan it whole once it is large; every statement has an index or
//   row-id path.
// - Rows locked by ctid are joined by ctid alone (a parameterised TID scan per row). Schema versions 4-7
//   also filtered them with `ctid = ANY (<the batch's ctids>)`, a linear search of the array for every
//   row: quadratic in the batch, ~10% of a 200-row claim (version 8 dropped it).

/** The NOTIFY channel; the payload is `<schema>/<origin>` (origin: the appending store, or empty). */
export const CHANNEL = 'lovage_ready';

/** The columns every claim function returns, in order. */
const CLAIMED = `run_id text, node_id text, task text, args text, attempt integer, expired_worker text, lease_token text,
  at float8, lease_expires float8, version integer, expired_position float8, started_position float8, run_version integer, history text,
  options json`;

/** Runs of at most this many events come back whole with a claim (ClaimedNode.history; the SQL below calls it PostgresStore's prefetch). */
export const HISTORY_MAX_EVENTS = 64;

/**
 * Delayed rows (countdown, eta, retry backoff, deferral) made claimable by one claim at most, the
 * earliest due first: a backlog that falls due at once is promoted over a few claims, never in one
 * long transaction.
 */
export const PROMOTE_MAX = 1000;

/** The most events one events row holds: the step of the position identity (set by migration 4: never change it). */
export const EVENT_ROW_MAX = 1024;

/** The store clock inside SQL: the injected one (tests), else the database's. */
const NOW = `coalesce(p_now, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)`;

/**
 * The arguments of `append_events`, in order, as `buildAppend` (append-input.ts) fills them. Arrays of
 * one length belong together: the batch's runs (`p_runs`: g = 1.., new ones with expected version 0),
 * its events rows (`p_ev_run` = the run's g, the first event's version and type, the number of events;
 * `p_ev_data` is a JSON array with one array of events per row), the ready rows its NodeReady events
 * insert (the event's row, 1-based, and its index in the row), the ready rows it drops; lease changes
 * (rare) are JSON.
 */
export const APPEND_PARAMS = [
  'p_runs text[]', 'p_expected integer[]', 'p_counts integer[]', 'p_status text[]', 'p_finished integer[]', 'p_finish_set boolean[]',
  'p_created bigint[]', 'p_updated bigint[]', 'p_tasks text[]',
  'p_ev_run integer[]', 'p_ev_version integer[]', 'p_ev_count integer[]', 'p_ev_type text[]', 'p_ev_data json',
  'p_rd_row integer[]', 'p_rd_offset integer[]', 'p_rd_node text[]', 'p_rd_queue text[]', 'p_rd_priority integer[]', 'p_rd_task text[]', 'p_rd_args text[]',
  'p_rd_attempts integer[]', 'p_rd_worker text[]', 'p_rd_token text[]', 'p_rd_expires bigint[]', 'p_rd_available bigint[]', 'p_rd_options text[]',
  'p_drop_run integer[]', 'p_drop_node text[]',
  'p_lease json', 'p_notify text',
] as const;

/** The arguments of `claim_nodes`, in order. */
export const CLAIM_PARAMS = ['p_queues text[]', 'p_limit integer', 'p_worker text', 'p_lease_ms bigint', 'p_tokens text[]', 'p_now bigint'] as const;

/**
 * `append_events(...APPEND_PARAMS)`: checks every run's expected version (CONCURRENCY: SQLSTATE
 * LV409, DETAIL = run id), writes the events and their projection; returns the rows' positions in input
 * order (a row's events are at position + 0, 1, ...).
 */
function appendEvents(s: string): string {
  return `
CREATE OR REPLACE FUNCTION ${s}.append_events(${APPEND_PARAMS.join(', ')})
RETURNS float8[] LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
DECLARE
  v_keys bigint[];
  v_bad integer;
  v_run text;
  v_inserted text[];
  v_node text;
  v_version integer;
  v_count bigint;
  v_positions bigint[];
  v_tids tid[];
  v_tid_runs integer[];
BEGIN
  -- New runs: the run id is unique; a run that exists already (or is being created) is a conflict.
  IF 0 = ANY (p_expected) THEN
    WITH ins AS (
      INSERT INTO ${s}.runs (run_id, status, version, finished_version, tasks, created_at, updated_at)
      SELECT x.r, coalesce(x.st, 'running'), x.n, x.f, ARRAY(SELECT json_array_elements_text(x.t::json)), x.c, x.u
      FROM unnest(p_runs, p_expected, p_counts, p_status, p_finished, p_tasks, p_created, p_updated) AS x(r, ex, n, st, f, t, c, u)
      WHERE x.ex = 0 ORDER BY x.r COLLATE "C"
      ON CONFLICT (run_id) DO NOTHING RETURNING run_id, run_key
    )
    SELECT array_agg(ins.run_id), array_agg(ins.run_key) INTO v_inserted, v_keys FROM ins;
    IF coalesce(cardinality(v_inserted), 0) < cardinality(p_expected) - cardinality(array_remove(p_expected, 0)) THEN
      SELECT x.r INTO v_run FROM unnest(p_runs, p_expected) AS x(r, ex) WHERE x.ex = 0 AND x.r <> ALL (coalesce(v_inserted, '{}')) LIMIT 1;
      RAISE EXCEPTION USING ERRCODE = 'LV409', DETAIL = v_run, MESSAGE = format('run %s is not at version 0: it exists already', v_run);
    END IF;
  END IF;
  -- Every run's key: v_keys[g] is the key of p_runs[g]. Runs that exist are locked in run id order
  -- (bytewise, like every lock of run rows) and checked against their expected version. One index
  -- lookup per run (lateral: never a join that scans the table, whatever the plan's estimates). A
  -- submit of one run has its key from the insert already.
  IF NOT (cardinality(p_runs) = 1 AND p_expected[1] = 0) THEN
    WITH x AS MATERIALIZED (
      SELECT x.r, x.ex, x.g::integer AS g FROM unnest(p_runs, p_expected) WITH ORDINALITY AS x(r, ex, g)
    ), locked AS MATERIALIZED (
      SELECT x.g, x.ex, l.tid, l.run_key, l.version
      FROM (SELECT * FROM x WHERE x.ex > 0 ORDER BY x.r COLLATE "C") x
      LEFT JOIN LATERAL (SELECT u.ctid AS tid, u.run_key, u.version FROM ${s}.runs u WHERE u.run_id = x.r FOR UPDATE) l ON true
    )
    SELECT array_agg(k.run_key ORDER BY k.g), min(k.g) FILTER (WHERE k.bad), array_agg(k.tid) FILTER (WHERE k.tid IS NOT NULL),
      array_agg(k.g) FILTER (WHERE k.tid IS NOT NULL)
    INTO v_keys, v_bad, v_tids, v_tid_runs FROM (
      SELECT l.g, l.run_key, l.tid, l.version IS DISTINCT FROM l.ex AS bad FROM locked l
      UNION ALL
      SELECT x.g, n.run_key, NULL::tid, false FROM x CROSS JOIN LATERAL (SELECT u.run_key FROM ${s}.runs u WHERE u.run_id = x.r OFFSET 0) n WHERE x.ex = 0
    ) k;
  END IF;
  IF v_bad IS NOT NULL THEN
    v_run := p_runs[v_bad];
    SELECT u.version INTO v_version FROM ${s}.runs u WHERE u.run_id = v_run;
    RAISE EXCEPTION USING ERRCODE = 'LV409', DETAIL = v_run, MESSAGE = format('run %s is not at version %s: %s', v_run, p_expected[v_bad],
      CASE WHEN v_version IS NULL THEN 'it does not exist' ELSE format('it is at version %s', v_version) END);
  END IF;
  -- The runs move on, by the ctids locked above. A separate statement: a row that another transaction
  -- changed and committed after the statement above began is locked in its newest version, which that
  -- statement's snapshot does not see (an UPDATE by its ctid there would change nothing); this one's does.
  -- The batch's values by subscript, not by a join with another unnest (a generic plan nests those loops).
  IF v_tids IS NOT NULL THEN
    UPDATE ${s}.runs u SET version = u.version + p_counts[t.g],
      status = CASE WHEN u.status = 'quarantined' OR p_status[t.g] IS NULL THEN u.status ELSE p_status[t.g] END,
      finished_version = CASE WHEN p_finish_set[t.g] THEN p_finished[t.g] ELSE u.finished_version END, updated_at = p_updated[t.g]
    FROM unnest(v_tids, v_tid_runs) AS t(tid, g)
    WHERE u.ctid = t.tid;
  END IF;
  IF p_drop_run IS NOT NULL THEN
    DELETE FROM ${s}.ready d USING unnest(p_drop_run, p_drop_node) AS x(g, n) WHERE d.run_key = v_keys[x.g] AND d.node_id = x.n;
  END IF;
  -- The events rows, in input order (so are their positions), then the ready rows of NodeReady events
  -- (age = the event's position), in one statement. The ready queue holds one row per node: a second
  -- NodeReady for a node conflicts. A row with an available_at (countdown, eta) waits for a claim to
  -- promote it (claim_nodes).
  IF p_ev_run IS NOT NULL THEN
    WITH ev AS (
      INSERT INTO ${s}.events (run_key, version, type, data, n)
      SELECT v_keys[e.g], e.v, e.t, e.d::text, e.c
      FROM ROWS FROM (unnest(p_ev_run), unnest(p_ev_version), unnest(p_ev_count), unnest(p_ev_type), json_array_elements(p_ev_data)) AS e(g, v, c, t, d)
      RETURNING position
    ), pos AS MATERIALIZED (
      SELECT array_agg(ev.position ORDER BY ev.position) AS ps FROM ev
    ), rd AS (
      INSERT INTO ${s}.ready (run_key, node_id, run_id, queue, priority, seq, task, args, attempts, worker, lease_token, lease_expires, available_at, options)
      SELECT v_keys[p_ev_run[x.i]], x.n, p_runs[p_ev_run[x.i]], x.q, x.p, (SELECT pos.ps FROM pos)[x.i] + x.j, x.t, x.a, coalesce(x.at, 0), x.w, x.k, x.ex, x.av, x.o::json
      FROM unnest(p_rd_row, p_rd_offset, p_rd_node, p_rd_queue, p_rd_priority, p_rd_task, p_rd_args, p_rd_attempts, p_rd_worker, p_rd_token,
        p_rd_expires, p_rd_available, p_rd_options) AS x(i, j, n, q, p, t, a, at, w, k, ex, av, o)
      ON CONFLICT DO NOTHING RETURNING 1
    )
    SELECT (SELECT pos.ps FROM pos), (SELECT count(*) FROM rd) INTO v_positions, v_count;
    IF v_count < coalesce(cardinality(p_rd_row), 0) THEN
      SELECT p_runs[p_ev_run[x.i]], x.n INTO v_run, v_node FROM unnest(p_rd_row, p_rd_offset, p_rd_node) AS x(i, j, n)
      JOIN ${s}.ready d ON d.run_key = v_keys[p_ev_run[x.i]] AND d.node_id = x.n WHERE d.seq <> v_positions[x.i] + x.j LIMIT 1;
      RAISE EXCEPTION USING ERRCODE = 'LV409', DETAIL = coalesce(v_run, ''),
        MESSAGE = format('node %s of run %s is already in the ready queue', coalesce(v_node, '?'), coalesce(v_run, '?'));
    END IF;
  END IF;
  -- Lease changes (NodeLeaseExpired, NodeReleased, NodeRetryScheduled, NodeDeferred; a NodeStarted
  -- appended by hand); sa: available_at is set (to av: a retry's or deferral's time, NULL when
  -- started), else kept.
  IF p_lease IS NOT NULL THEN
    UPDATE ${s}.ready d SET lease_token = j.k, lease_expires = j.x, worker = j.w, attempts = coalesce(j.at, d.attempts),
      available_at = CASE WHEN j.sa THEN j.av ELSE d.available_at END
    FROM json_to_recordset(p_lease) AS j(g integer, n text, k text, x bigint, w text, at integer, sa boolean, av bigint)
    WHERE d.run_key = v_keys[j.g] AND d.node_id = j.n;
  END IF;
  IF p_notify IS NOT NULL THEN
    PERFORM pg_notify('${CHANNEL}', p_notify);
  END IF;
  RETURN coalesce(v_positions::float8[], '{}');
END
$fn$`;
}

/**
 * A claim's first statement: lock up to `limit` candidates (SKIP LOCKED, ready row and run row
 * together) and keep their ctids, in claim order, in v_rt / v_ut.
 *
 * Why two statements: a row that another transaction changed and committed after this statement's
 * snapshot is locked in its newest version (READ COMMITTED re-checks it), whose ctid this statement's
 * snapshot does not see: an UPDATE by that ctid in the same statement would change nothing. The next
 * statement has a new snapshot, which sees every row locked here as it is (nobody else can change it).
 */
function lockStatement(s: string, kind: 'expired' | 'fresh', queues: 'one' | 'many', limit: string): string {
  const queue = queues === 'one' ? 'r.queue = p_queues[1]' : 'r.queue = ANY (p_queues)';
  // Fresh: unleased and available (the predicate of the ready_fresh index); a leased row is never delayed.
  const where = kind === 'expired' ? `r.lease_token IS NOT NULL AND r.lease_expires < v_now AND ${queue}` : `r.lease_token IS NULL AND r.available_at IS NULL AND ${queue}`;
  const order = kind === 'expired' ? 'r.lease_expires, r.seq' : 'r.priority DESC, r.seq';
  return `
    SELECT array_agg(c.rt ORDER BY c.o1, c.o2), array_agg(c.ut ORDER BY c.o1, c.o2) INTO v_rt, v_ut FROM (
      SELECT r.ctid AS rt, u.ctid AS ut, ${kind === 'expired' ? 'r.lease_expires' : '-r.priority::bigint'} AS o1, r.seq AS o2
      FROM ${s}.ready r JOIN ${s}.runs u ON u.run_key = r.run_key
      WHERE ${where} ORDER BY ${order} LIMIT ${limit}
      FOR UPDATE OF r, u SKIP LOCKED
    ) c`;
}

/**
 * A claim's second statement, on the rows `lockStatement` locked: append NodeLeaseExpired? +
 * NodeStarted to each run (one events row per run), lease the rows, return them. The events' JSON
 * mirrors `decideStart` key for key (a test checks they read back equal). The locked rows are read and
 * updated by ctid; the run row once per run.
 */
function claimStatement(s: string, kind: 'expired' | 'fresh', offset: string): string {
  const json = (text: string) => `to_json(${text})::text`;
  return `
    WITH picked AS MATERIALIZED (
      SELECT p.rt, p.ut, p.k::integer + ${offset} AS k, r.run_key, r.node_id, r.run_id, r.task, r.args, r.options, r.attempts,
        ${kind === 'expired' ? 'r.worker' : 'NULL::text'} AS old_worker, u.version AS run_version
      FROM unnest(v_rt, v_ut) WITH ORDINALITY AS p(rt, ut, k)
      JOIN ${s}.ready r ON r.ctid = p.rt JOIN ${s}.runs u ON u.ctid = p.ut
    ), n AS MATERIALIZED (
      SELECT p.*, p.run_version + (sum(CASE WHEN p.old_worker IS NULL THEN 1 ELSE 2 END) OVER w)::integer AS v,
        p.k = min(p.k) OVER (PARTITION BY p.run_key) AS first, p.k = max(p.k) OVER (PARTITION BY p.run_key) AS last
      FROM picked p WINDOW w AS (PARTITION BY p.run_key ORDER BY p.k)
    ), runs_up AS (
      UPDATE ${s}.runs u SET version = n.v, updated_at = v_now FROM n WHERE n.last AND u.ctid = n.ut
    ), ready_up AS (
      UPDATE ${s}.ready r SET lease_token = p_tokens[n.k], lease_expires = v_now + p_lease_ms, worker = p_worker, attempts = n.attempts + 1
      FROM n WHERE r.ctid = n.rt
    ), started AS MATERIALIZED (
      -- The claim's events, one line each, every column of its node along. c: the event's index among
      -- its run's new ones; gi: its events row (a run's events in one row, or more of EVENT_ROW_MAX each).
      SELECT e.*, (dense_rank() OVER (ORDER BY e.run_key, e.c / ${EVENT_ROW_MAX}))::integer AS gi FROM (${kind === 'expired' ? `
        SELECT n.*, n.v - 1 AS version, 'NodeLeaseExpired' AS type, n.v - 2 - n.run_version AS c,
          '{"type":"NodeLeaseExpired","at":' || v_now || ',"nodeId":' || ${json('n.node_id')} || ',"attempt":' || n.attempts
          || ',"worker":' || ${json('n.old_worker')} || '}' AS data
        FROM n WHERE n.old_worker IS NOT NULL
        UNION ALL` : ''}
        SELECT n.*, n.v AS version, 'NodeStarted' AS type, n.v - 1 - n.run_version AS c,
          '{"type":"NodeStarted","at":' || v_now || ',"nodeId":' || ${json('n.node_id')} || ',"attempt":' || (n.attempts + 1)
          || ',"worker":' || ${json('p_worker')} || ',"leaseToken":' || ${json('p_tokens[n.k]')} || ',"leaseExpiresAt":' || (v_now + p_lease_ms) || '}' AS data
        FROM n
      ) e
    ), ev AS (
      -- A window, not GROUP BY with string_agg(... ORDER BY): that sorts once per row (PostgreSQL 15), this once.
      INSERT INTO ${s}.events (run_key, version, type, data, n)
      SELECT w.run_key, w.version, w.type, w.data, w.n FROM (
        SELECT e.gi, e.run_key, e.version, e.type, '[' || string_agg(e.data, ',') OVER g || ']' AS data, (count(*) OVER g)::integer AS n,
          row_number() OVER g AS i
        FROM started e WINDOW g AS (PARTITION BY e.gi ORDER BY e.version ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
      ) w WHERE w.i = 1 ORDER BY w.gi
      RETURNING position, run_key, version
    ), erows AS MATERIALIZED (
      -- The events rows' positions and first versions, by gi (read by subscript, once: no join of derived
      -- sets, which a generic plan's estimates make nested loops, quadratic in the batch). A NodeStarted's
      -- NodeLeaseExpired is in its row or, across a row boundary, the one before (gx).
      SELECT array_agg(ev.position ORDER BY ev.run_key, ev.version) AS ps, array_agg(ev.version ORDER BY ev.run_key, ev.version) AS vs FROM ev
    )
    SELECT n.run_id, n.node_id, n.task, n.args, n.attempts + 1, n.old_worker, p_tokens[n.k], v_now::float8, (v_now + p_lease_ms)::float8, n.v,
      ${kind === 'expired' ? `CASE WHEN n.old_worker IS NULL THEN NULL ELSE ((SELECT w.ps FROM erows w)[n.gx] + (n.v - 1 - (SELECT w.vs FROM erows w)[n.gx]))::float8 END` : 'NULL::float8'},
      ((SELECT w.ps FROM erows w)[n.gi] + (n.v - (SELECT w.vs FROM erows w)[n.gi]))::float8, n.run_version, hist.h, n.options
    FROM (SELECT t.*, t.gi - (t.c / ${EVENT_ROW_MAX} - (t.c - 1) / ${EVENT_ROW_MAX}) AS gx FROM started t) n
    -- A small run's log before this claim, once per run: [version,position,[event,...]],... a row each, in
    -- any order (see PostgresStore's prefetch; an ordered aggregate would sort once per run).
    LEFT JOIN LATERAL (
      SELECT string_agg('[' || e.version || ',' || e.position || ',' || CASE WHEN left(e.data, 1) = '[' THEN e.data ELSE '[' || e.data || ']' END || ']', ',') AS h
      FROM ${s}.events e WHERE n.first AND n.run_version <= ${HISTORY_MAX_EVENTS} AND e.run_key = n.run_key AND e.version <= n.run_version
    ) hist ON true
    WHERE n.type = 'NodeStarted'
    ORDER BY n.k`;
}

/**
 * `claim_nodes(queues, limit, worker, lease_ms, tokens, now)`: expired leases first (oldest expiry
 * first), then fresh rows by priority then age. `tokens` holds `limit` new lease tokens.
 *
 * Delayed rows (available_at set) stay out of the ready_fresh index; before taking fresh rows, a
 * claim promotes the ones that are due (available_at = NULL), so they compete with the fresh ones
 * by priority and age. The probe reads the first entry of ready_delayed (nothing when no row
 * waits); the promotion skips rows another transaction holds (a later claim promotes them), so a
 * claim still never waits.
 */
function claimNodes(s: string): string {
  return `
CREATE OR REPLACE FUNCTION ${s}.claim_nodes(${CLAIM_PARAMS.join(', ')})
RETURNS TABLE (${CLAIMED}) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
#variable_conflict use_column
DECLARE
  v_now bigint := ${NOW};
  v_got integer := 0;
  v_rt tid[];
  v_ut tid[];
  v_expiry bigint;
  v_due bigint;
BEGIN
  IF p_limit < 1 OR coalesce(cardinality(p_queues), 0) = 0 THEN
    RETURN;
  END IF;
  -- The earliest lease expiry and the earliest delayed row, in one statement. min() reads the first
  -- entry of ready_leased / ready_delayed whatever the statistics say; EXISTS (... < v_now) gets a
  -- generic plan that may scan the whole table (it did, on tables never analyzed: ~1 ms a claim).
  SELECT (SELECT min(r.lease_expires) FROM ${s}.ready r WHERE r.lease_token IS NOT NULL),
    (SELECT min(r.available_at) FROM ${s}.ready r WHERE r.available_at IS NOT NULL)
  INTO v_expiry, v_due;
  IF v_expiry < v_now THEN
    ${lockStatement(s, 'expired', 'many', 'p_limit')};
    IF v_rt IS NOT NULL THEN
      RETURN QUERY ${claimStatement(s, 'expired', '0')};
      GET DIAGNOSTICS v_got = ROW_COUNT;
    END IF;
  END IF;
  IF v_got < p_limit THEN
    IF v_due <= v_now THEN
      UPDATE ${s}.ready r SET available_at = NULL
      FROM (
        SELECT d.run_key, d.node_id FROM ${s}.ready d WHERE d.available_at IS NOT NULL AND d.available_at <= v_now
        ORDER BY d.available_at LIMIT ${PROMOTE_MAX} FOR UPDATE SKIP LOCKED
      ) due
      WHERE r.run_key = due.run_key AND r.node_id = due.node_id;
    END IF;
    IF cardinality(p_queues) = 1 THEN
      ${lockStatement(s, 'fresh', 'one', 'p_limit - v_got')};
    ELSE
      ${lockStatement(s, 'fresh', 'many', 'p_limit - v_got')};
    END IF;
    IF v_rt IS NOT NULL THEN
      RETURN QUERY ${claimStatement(s, 'fresh', 'v_got')};
    END IF;
  END IF;
END
$fn$`;
}

/**
 * `extend_leases(runs, nodes, tokens, lease_ms, now)`: one boolean per lease, true while it is held
 * (each of a lease given twice). Schema version 7: the rows are locked first, skipping any another
 * transaction holds, and such a lease counts as lost: that transaction is taking it away (a claim
 * after it ran out, an append cancelling or ending the node; for a node whose outcome this worker is
 * recording, the worker ignores the answer). A heartbeat never waits, so it cannot deadlock with an
 * append that drops the same rows in another order (version 4's update waited, and did, for a second).
 * Then the locked rows, by ctid, in a second statement (see lockStatement for why).
 */
export function extendLeasesSql(s: string): string {
  return `
CREATE OR REPLACE FUNCTION ${s}.extend_leases(p_runs text[], p_nodes text[], p_tokens text[], p_lease_ms bigint, p_now bigint)
RETURNS boolean[] LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
DECLARE
  v_tids tid[];
  v_held boolean[];
BEGIN
  WITH j AS MATERIALIZED (
    SELECT * FROM unnest(p_runs, p_nodes, p_tokens) WITH ORDINALITY AS j(r, n, k, i)
  ), l AS MATERIALIZED (
    SELECT j.i, d.ctid AS tid FROM j JOIN ${s}.runs u ON u.run_id = j.r
    JOIN ${s}.ready d ON d.run_key = u.run_key AND d.node_id = j.n AND d.lease_token = j.k
    FOR UPDATE OF d SKIP LOCKED
  )
  SELECT coalesce(array_agg(EXISTS (SELECT 1 FROM l WHERE l.i = j.i) ORDER BY j.i), '{}'), (SELECT array_agg(l.tid) FROM l)
  INTO v_held, v_tids FROM j;
  IF v_tids IS NOT NULL THEN
    UPDATE ${s}.ready d SET lease_expires = ${NOW} + p_lease_ms WHERE d.ctid = ANY (v_tids);
  END IF;
  RETURN v_held;
END
$fn$`;
}

/**
 * `append_events` and `claim_nodes` as they are now (schema version 8 replaces version 4's: same
 * signatures and results, so workers of the previous Lovage keep working while it is applied).
 * `append_and_claim`, which calls them, is still version 4's (functions-sql-v4.ts). When one changes,
 * freeze this text for migration 8, as functions-sql-v4.ts is for version 4.
 */
export function hotFunctionsSql(s: string): string[] {
  return [appendEvents(s), claimNodes(s)];
}

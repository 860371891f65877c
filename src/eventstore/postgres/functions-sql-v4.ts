// `extend_leases` as schema version 4 created it, frozen: migration 4 must create exactly what it always
// did (version 7 replaces it; see functions-sql.ts for the current one). Never edit this file.

/** The store clock inside SQL: the injected one (tests), else the database's. */
const NOW = `coalesce(p_now, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)`;

/** `extend_leases(runs, nodes, tokens, lease_ms, now)`: one boolean per lease, true while it is held. */
export function extendLeasesSqlV4(s: string): string {
  return `
CREATE FUNCTION ${s}.extend_leases(p_runs text[], p_nodes text[], p_tokens text[], p_lease_ms bigint, p_now bigint)
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

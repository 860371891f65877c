import type { ExecOptions } from '../../canvas/dag.ts';
import { decideStart } from '../../engine/decide.ts';
import type { StoredEvent, WorkflowEvent } from '../../engine/events.ts';
import type { ClaimedNode } from '../store.ts';

/** A row of the claim functions (see functions-sql.ts). */
export interface ClaimRow {
  run_id: string; node_id: string; task: string; args: string; attempt: number; expired_worker: string | null; lease_token: string;
  at: number; lease_expires: number; version: number; expired_position: number | null; started_position: number;
  run_version: number; history: string | null;
  /** The NodeReady's per-call options (a json column: pg has parsed it). */
  options: ExecOptions | null;
}

/**
 * A claimed node, its events made by `decideStart` (the SQL that stored them mirrors it; a test checks),
 * with the run's log before the claim when the row brought it whole.
 */
export function toClaimed(row: ClaimRow, worker: string): ClaimedNode {
  const events = decideStart({
    nodeId: row.node_id, attempts: row.attempt - 1, worker, leaseToken: row.lease_token, leaseExpiresAt: row.lease_expires, at: row.at,
    ...(row.expired_worker !== null ? { expiredWorker: row.expired_worker } : {}),
  });
  const positions = row.expired_worker !== null ? [row.expired_position!, row.started_position] : [row.started_position];
  const first = row.version - events.length + 1;
  return {
    runId: row.run_id, nodeId: row.node_id, task: row.task, args: JSON.parse(row.args), attempt: row.attempt, leaseToken: row.lease_token,
    leaseExpiresAt: row.lease_expires, ...(row.options !== null ? { options: row.options } : {}), events: events.map((event, j) => ({ runId: row.run_id, version: first + j, position: positions[j]!, event })),
    ...historyOf(row),
  };
}

/** `{ history }` of a row whose history is the run's whole log before the claim (versions 1..run_version); else `{}`. */
function historyOf(row: ClaimRow): { history?: StoredEvent[] } {
  if (row.history === null) return {};
  // One entry per events row, in any order: [first version, position, [event, ...]] (its events follow at + 1, + 2, ...).
  let entries: [number, number, WorkflowEvent[]][];
  try {
    entries = JSON.parse(`[${row.history}]`) as [number, number, WorkflowEvent[]][];
  } catch {
    return {}; // an unreadable event: left to readStream, which quarantines the run
  }
  const history: StoredEvent[] = [];
  for (const [version, position, list] of entries) {
    list.forEach((event, j) => history.push({ runId: row.run_id, version: version + j, position: position + j, event }));
  }
  history.sort((a, b) => a.version - b.version);
  // Events committed after the statement's snapshot are not in it: then it is incomplete.
  return history.length === row.run_version && history.every((e, k) => e.version === k + 1) ? { history } : {};
}

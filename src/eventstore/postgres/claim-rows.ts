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

/** A claimed node, its events made by `decideStart` (the SQL that stored them mirrors it; a test checks). */
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
  };
}

const TTL_MS = 5_000;
const MAX_RUNS = 10_000;

/**
 * The logs of small runs as their claim saw them, kept for a few seconds so the coordinator's
 * `readStream` of a run it has not cached (a worker that did not submit it) needs no round trip.
 * Each log is served once: a coordinator whose copy turns out stale gets a conflict and reads again,
 * from the database. This store's own appends, deletes and quarantines drop the run's copy, so a
 * process always reads its own writes.
 */
export class StreamPrefetch {
  readonly #logs = new Map<string, { readonly at: number; readonly events: StoredEvent[] }>();

  /** Keeps the logs that came back with claims: the history before the batch plus the batch's own events. */
  put(rows: readonly ClaimRow[], claimed: readonly ClaimedNode[]): void {
    const now = Date.now();
    rows.forEach((row, i) => {
      if (row.history === null) return;
      // One entry per events row, in any order: [first version, position, [event, ...]] (its events follow at + 1, + 2, ...).
      let entries: [number, number, WorkflowEvent[]][];
      try {
        entries = JSON.parse(`[${row.history}]`) as [number, number, WorkflowEvent[]][];
      } catch {
        return; // an unreadable event: leave it to readStream, which quarantines the run
      }
      const events: StoredEvent[] = [];
      for (const [version, position, list] of entries) {
        list.forEach((event, j) => events.push({ runId: row.run_id, version: version + j, position: position + j, event }));
      }
      // Events committed after the statement's snapshot are not in the history: then it is incomplete.
      if (events.length !== row.run_version) return;
      for (let j = i; j < claimed.length; j++) if (claimed[j]!.runId === row.run_id) events.push(...claimed[j]!.events);
      events.sort((a, b) => a.version - b.version);
      if (events.some((e, k) => e.version !== k + 1)) return;
      this.#logs.delete(row.run_id);
      this.#logs.set(row.run_id, { at: now, events });
    });
    for (const runId of this.#logs.keys()) {
      if (this.#logs.size <= MAX_RUNS) break;
      this.#logs.delete(runId);
    }
  }

  /** The kept log of a run from `fromVersion`, once; `undefined` when there is none (or it is too old). */
  take(runId: string, fromVersion: number): StoredEvent[] | undefined {
    const log = this.#logs.get(runId);
    if (!log) return undefined;
    this.#logs.delete(runId);
    if (Date.now() - log.at > TTL_MS) return undefined;
    return log.events.slice(Math.max(0, fromVersion - 1));
  }

  /** Drops the copies of runs this store is changing. */
  forget(runIds: Iterable<string>): void {
    if (this.#logs.size === 0) return;
    for (const id of runIds) this.#logs.delete(id);
  }
}

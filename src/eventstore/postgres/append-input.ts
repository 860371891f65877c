import type { Json } from '../../canvas/json.ts';
import type { WorkflowEvent } from '../../engine/events.ts';
import { LovageError } from '../../errors.ts';
import { endsRun, runStatusAfter, type AppendRequest, type RunRecord } from '../store.ts';

/** The arguments of the `append_events` SQL function (JSON text, `null` for an empty list). */
export interface AppendParams {
  /** Runs created by the batch (expected version 0). */
  readonly newRuns: string | null;
  /** Runs that exist, with the version each must be at. */
  readonly oldRuns: string | null;
  readonly events: string | null;
  readonly ready: string | null;
  readonly drop: string | null;
  readonly lease: string | null;
  /** Whether the batch makes nodes claimable (NodeReady, NodeReleased): then it notifies. */
  readonly wakes: boolean;
}

/** One run of a batch, after merging the requests for it. */
export interface RunGroup {
  readonly runId: string;
  readonly expectedVersion: number;
  readonly events: WorkflowEvent[];
}

interface ReadyInsert { r: string; v: number; n: string; q: string; p: number; t: string; a: readonly Json[]; at?: number; w?: string | null; k?: string | null; x?: number | null }
interface Lease { k: string | null; x: number | null; w: string | null; at: number | null }
interface NodeOp { drop: boolean; ready?: ReadyInsert; lease?: Lease }

const cleared: Lease = { k: null, x: null, w: null, at: null };

/**
 * Turns append requests into the JSON arguments of `append_events`: requests for one run merge (each
 * must start where the previous ended, else CONCURRENCY before anything is written), and the ready
 * queue changes fold to one net change per node (inserted, dropped, or its lease set or cleared).
 */
export function buildAppend(requests: readonly AppendRequest[]): { params: AppendParams; groups: RunGroup[] } {
  const groups = new Map<string, RunGroup>();
  for (const r of requests) {
    if (r.events.length === 0) continue;
    const g = groups.get(r.runId);
    if (!g) {
      groups.set(r.runId, { runId: r.runId, expectedVersion: r.expectedVersion, events: [...r.events] });
      continue;
    }
    const at = g.expectedVersion + g.events.length;
    if (r.expectedVersion !== at) {
      throw new LovageError('CONCURRENCY', `run ${r.runId} is not at version ${r.expectedVersion}: the batch's earlier requests leave it at version ${at}`, { runId: r.runId });
    }
    g.events.push(...r.events);
  }
  const newRuns: unknown[] = [];
  const oldRuns: unknown[] = [];
  const events: unknown[] = [];
  const ops = new Map<string, NodeOp>();
  let wakes = false;
  for (const g of groups.values()) {
    let status: RunRecord['status'] | null = null;
    // The version of the event that ended the run; null: it runs (again); undefined: unchanged.
    let finished: number | null | undefined;
    g.events.forEach((e, i) => {
      const version = g.expectedVersion + i + 1;
      const next = runStatusAfter(e);
      status = next ?? status;
      if (endsRun(e)) finished = version;
      else if (next !== undefined) finished = null;
      if (e.type === 'NodeReady' || e.type === 'NodeReleased') wakes = true;
      events.push({ i: events.length, r: g.runId, v: version, t: e.type, e });
      project(ops, g.runId, version, e);
    });
    const first = g.events[0]!;
    const tasks = g.expectedVersion === 0 && first.type === 'WorkflowSubmitted' ? [...new Set(first.dag.nodes.map((n) => n.task))] : null;
    (g.expectedVersion === 0 ? newRuns : oldRuns).push({ r: g.runId, ex: g.expectedVersion, n: g.events.length, st: status, f: finished ?? null, fs: finished !== undefined, t: tasks, c: first.at, u: g.events[g.events.length - 1]!.at });
  }
  const ready: ReadyInsert[] = [];
  const drop: { r: string; n: string }[] = [];
  const lease: (Lease & { r: string; n: string })[] = [];
  for (const [key, op] of ops) {
    const [r, n] = splitKey(key);
    if (op.drop) drop.push({ r, n });
    if (op.ready) ready.push(op.ready);
    else if (op.lease && !op.drop) lease.push({ r, n, ...op.lease });
  }
  const json = (list: unknown[]) => (list.length === 0 ? null : JSON.stringify(list));
  return {
    params: { newRuns: json(newRuns), oldRuns: json(oldRuns.sort((a, b) => ((a as { r: string }).r < (b as { r: string }).r ? -1 : 1))), events: json(events), ready: json(ready), drop: json(drop), lease: json(lease), wakes },
    groups: [...groups.values()],
  };
}

function project(ops: Map<string, NodeOp>, runId: string, version: number, e: WorkflowEvent): void {
  const get = (nodeId: string): NodeOp => {
    const key = `${runId}\u0000${nodeId}`;
    let op = ops.get(key);
    if (!op) ops.set(key, (op = { drop: false }));
    return op;
  };
  switch (e.type) {
    case 'NodeReady': {
      const o = get(e.nodeId);
      if (o.ready) throw new LovageError('CONCURRENCY', `node ${e.nodeId} of run ${runId} is already in the ready queue`, { runId });
      o.ready = { r: runId, v: version, n: e.nodeId, q: e.queue, p: e.priority, t: e.task, a: e.args };
      delete o.lease;
      return;
    }
    case 'NodeSucceeded':
    case 'NodeFailed':
      drop(get(e.nodeId));
      return;
    case 'WorkflowCancelled':
      for (const nodeId of e.nodeIds) drop(get(nodeId));
      return;
    case 'NodeLeaseExpired':
    case 'NodeReleased':
      setLease(get(e.nodeId), cleared);
      return;
    case 'NodeStarted':
      setLease(get(e.nodeId), { k: e.leaseToken, x: e.leaseExpiresAt, w: e.worker, at: e.attempt });
      return;
    default:
      return;
  }
}

/** The node leaves the ready queue: a row inserted earlier in the batch is not inserted at all. */
function drop(op: NodeOp): void {
  if (op.ready) delete op.ready;
  else op.drop = true;
  delete op.lease;
}

function setLease(op: NodeOp, lease: Lease): void {
  if (op.ready) {
    op.ready.k = lease.k;
    op.ready.x = lease.x;
    op.ready.w = lease.w;
    if (lease.at !== null) op.ready.at = lease.at;
  } else {
    op.lease = op.lease && lease.at === null ? { ...lease, at: op.lease.at } : lease;
  }
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('\u0000');
  return [key.slice(0, i), key.slice(i + 1)];
}

import type { ExecOptions } from '../../canvas/dag.ts';
import type { Json } from '../../canvas/json.ts';
import type { WorkflowEvent } from '../../engine/events.ts';
import { LovageError } from '../../errors.ts';
import { checkCommute, endsRun, runStatusAfter, type AppendRequest, type RunRecord } from '../store.ts';
import { EVENT_ROW_MAX } from './functions-sql.ts';

/**
 * The arguments of the `append_events` SQL function: `args` in the order of APPEND_PARAMS
 * (functions-sql.ts) without the last (`p_notify`), parallel arrays, `null` for an empty list.
 */
export interface AppendParams {
  readonly args: readonly unknown[];
  /** Whether the batch appends anything. */
  readonly hasEvents: boolean;
  /**
   * How many events each events row holds, in input order: `append_events` returns each row's
   * position, its events are at position + 0, 1, ... (the rows follow the runs and their events in order).
   */
  readonly rowCounts: readonly number[];
  /** Whether the batch makes nodes claimable now (NodeReady, NodeReleased, a retry or deferral already due): then it notifies. */
  readonly wakes: boolean;
  /**
   * The same batch as the JSON arguments schema versions 1-3's `append_events(new, old, events, ready,
   * drop, lease, notify)` took (what an earlier Lovage sent), built on first read (the upgrade tests
   * replay it). JSON text, `null` for an empty list.
   */
  readonly newRuns: string | null;
  readonly oldRuns: string | null;
  readonly events: string | null;
  readonly ready: string | null;
  readonly drop: string | null;
  readonly lease: string | null;
}

/** One run of a batch, after merging the requests for it. */
export interface RunGroup {
  readonly runId: string;
  readonly expectedVersion: number;
  readonly events: WorkflowEvent[];
}

interface ReadyInsert {
  /** The NodeReady's events row (1-based) and its index in the row. */
  i: number; j: number;
  r: string; v: number; n: string; q: string; p: number; t: string; a: readonly Json[]; at?: number; w?: string | null; k?: string | null; x?: number | null;
  /** Not claimable before (epoch ms, store clock); absent: at once. */
  av?: number | null;
  o?: ExecOptions;
}
/** A lease change; `at` null keeps the attempts; `sa` false (absent) keeps the availability time, true sets it to `av`. */
interface Lease { k: string | null; x: number | null; w: string | null; at: number | null; sa?: boolean; av?: number | null }
interface NodeOp { g: number; drop: boolean; ready?: ReadyInsert; lease?: Lease }
interface RunRow { r: string; ex: number; n: number; st: string | null; f: number | null; fs: boolean; t: string[] | null; c: number; u: number }
/** An events row: consecutive events of the batch's g-th run from version v (a WorkflowSubmitted alone). */
interface EventRow { g: number; v: number; t: string; events: WorkflowEvent[] }

const cleared: Lease = { k: null, x: null, w: null, at: null };

/**
 * Turns append requests into the arguments of `append_events`: requests for one run merge (each must
 * start where the previous ended, else CONCURRENCY before anything is written), and the ready queue
 * changes fold to one net change per node (inserted, dropped, or its lease set or cleared).
 */
export function buildAppend(requests: readonly AppendRequest[]): { params: AppendParams; groups: RunGroup[] } {
  const groups = new Map<string, RunGroup>();
  for (const r of requests) checkCommute(r, false);
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
  const runs: RunRow[] = [];
  const rows: EventRow[] = [];
  const ops = new Map<string, NodeOp>();
  let wakes = false;
  for (const g of groups.values()) {
    const gi = runs.length + 1;
    let status: RunRecord['status'] | null = null;
    // The version of the event that ended the run; null: it runs (again); undefined: unchanged.
    let finished: number | null | undefined;
    let row: EventRow | undefined;
    g.events.forEach((e, i) => {
      const version = g.expectedVersion + i + 1;
      const next = runStatusAfter(e);
      status = next ?? status;
      if (endsRun(e)) finished = version;
      else if (next !== undefined) finished = null;
      if (claimableNow(e)) wakes = true;
      if (row === undefined || row.events.length === EVENT_ROW_MAX || e.type === 'WorkflowSubmitted' || row.t === 'WorkflowSubmitted') {
        row = { g: gi, v: version, t: e.type, events: [] };
        rows.push(row);
      }
      row.events.push(e);
      project(ops, g.runId, gi, version, rows.length, row.events.length - 1, e);
    });
    const first = g.events[0]!;
    const tasks = g.expectedVersion === 0 && first.type === 'WorkflowSubmitted' ? [...new Set(first.dag.nodes.map((n) => n.task))] : null;
    runs.push({ r: g.runId, ex: g.expectedVersion, n: g.events.length, st: status, f: finished ?? null, fs: finished !== undefined, t: tasks, c: first.at, u: g.events[g.events.length - 1]!.at });
  }
  const ready: ReadyInsert[] = [];
  const drop: { r: string; n: string; g: number }[] = [];
  const lease: (Lease & { r: string; n: string; g: number })[] = [];
  for (const [key, op] of ops) {
    const [r, n] = splitKey(key);
    if (op.drop) drop.push({ r, n, g: op.g });
    if (op.ready) ready.push(op.ready);
    else if (op.lease && !op.drop) lease.push({ r, n, g: op.g, ...op.lease });
  }
  const list = <T, V>(items: readonly T[], f: (x: T) => V): V[] | null => (items.length === 0 ? null : items.map(f));
  const args = [
    runs.map((x) => x.r), runs.map((x) => x.ex), runs.map((x) => x.n), runs.map((x) => x.st), runs.map((x) => x.f), runs.map((x) => x.fs),
    runs.map((x) => x.c), runs.map((x) => x.u), runs.map((x) => (x.t === null ? null : JSON.stringify(x.t))),
    list(rows, (x) => x.g), list(rows, (x) => x.v), list(rows, (x) => x.events.length), list(rows, (x) => x.t),
    rows.length === 0 ? null : JSON.stringify(rows.map((x) => x.events)),
    list(ready, (x) => x.i), list(ready, (x) => x.j), list(ready, (x) => x.n), list(ready, (x) => x.q), list(ready, (x) => x.p), list(ready, (x) => x.t),
    list(ready, (x) => JSON.stringify(x.a)), list(ready, (x) => x.at ?? 0), list(ready, (x) => x.w ?? null), list(ready, (x) => x.k ?? null),
    list(ready, (x) => x.x ?? null), list(ready, (x) => x.av ?? null), list(ready, (x) => (x.o === undefined ? null : JSON.stringify(x.o))),
    list(drop, (x) => x.g), list(drop, (x) => x.n),
    lease.length === 0 ? null : JSON.stringify(lease),
  ];
  return { params: new Params(args, rows.map((x) => x.events.length), wakes, runs, rows, ready, drop, lease), groups: [...groups.values()] };
}

class Params implements AppendParams {
  constructor(
    readonly args: readonly unknown[],
    readonly rowCounts: readonly number[],
    readonly wakes: boolean,
    readonly runs: readonly RunRow[],
    readonly eventRows: readonly EventRow[],
    readonly readyRows: readonly ReadyInsert[],
    readonly dropRows: readonly unknown[],
    readonly leaseRows: readonly unknown[],
  ) {}

  get hasEvents(): boolean {
    return this.rowCounts.length > 0;
  }

  get newRuns(): string | null {
    return json(this.runs.filter((x) => x.ex === 0));
  }

  get oldRuns(): string | null {
    return json(this.runs.filter((x) => x.ex !== 0).sort((a, b) => (a.r < b.r ? -1 : 1)));
  }

  get events(): string | null {
    const events = this.eventRows.flatMap((row) => row.events.map((e, j) => ({ r: this.runs[row.g - 1]!.r, v: row.v + j, t: e.type, e })));
    return json(events.map((e, i) => ({ i, ...e })));
  }

  get ready(): string | null {
    return json(this.readyRows);
  }

  get drop(): string | null {
    return json(this.dropRows);
  }

  get lease(): string | null {
    return json(this.leaseRows);
  }
}

const json = (list: readonly unknown[]): string | null => (list.length === 0 ? null : JSON.stringify(list));

/** `g`: the run's index in the batch (1-based); `i`, `j`: the event's row (1-based) and its index in the row. */
function project(ops: Map<string, NodeOp>, runId: string, g: number, version: number, i: number, j: number, e: WorkflowEvent): void {
  const get = (nodeId: string): NodeOp => {
    const key = `${runId}\u0000${nodeId}`;
    let op = ops.get(key);
    if (!op) ops.set(key, (op = { g, drop: false }));
    return op;
  };
  switch (e.type) {
    case 'NodeReady': {
      const o = get(e.nodeId);
      if (o.ready) throw new LovageError('CONCURRENCY', `node ${e.nodeId} of run ${runId} is already in the ready queue`, { runId });
      o.ready = { i, j, r: runId, v: version, n: e.nodeId, q: e.queue, p: e.priority, t: e.task, a: e.args };
      if (e.availableAt !== undefined) o.ready.av = Math.ceil(e.availableAt); // bigint column; never earlier
      if (e.options !== undefined) o.ready.o = e.options;
      delete o.lease;
      return;
    }
    case 'NodeSucceeded':
    case 'NodeFailed':
      drop(get(e.nodeId));
      return;
    case 'WorkflowCancelled':
    case 'NodesAborted':
      for (const nodeId of e.nodeIds) drop(get(nodeId));
      return;
    case 'NodeLeaseExpired':
    case 'NodeReleased':
      setLease(get(e.nodeId), cleared);
      return;
    case 'NodeStarted':
      setLease(get(e.nodeId), { k: e.leaseToken, x: e.leaseExpiresAt, w: e.worker, at: e.attempt, sa: true, av: null });
      return;
    // The lease ends and the node waits; a deferred attempt does not count (the next claim repeats it).
    case 'NodeRetryScheduled':
      setLease(get(e.nodeId), { ...cleared, sa: true, av: Math.ceil(e.retryAt) });
      return;
    case 'NodeDeferred':
      setLease(get(e.nodeId), { ...cleared, at: e.attempt - 1, sa: true, av: Math.ceil(e.until) });
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
    if (lease.sa) op.ready.av = lease.av ?? null;
  } else if (!op.lease) {
    op.lease = lease;
  } else {
    // Folded onto an earlier change of the batch: what this one keeps comes from that one.
    op.lease = {
      k: lease.k, x: lease.x, w: lease.w, at: lease.at ?? op.lease.at,
      ...(lease.sa ? { sa: true, av: lease.av ?? null } : op.lease.sa ? { sa: true, av: op.lease.av ?? null } : {}),
    };
  }
}

/** Whether the event makes its node claimable at once (then the append notifies waiting workers). */
function claimableNow(e: WorkflowEvent): boolean {
  switch (e.type) {
    case 'NodeReady':
      return e.availableAt === undefined || e.availableAt <= e.at;
    case 'NodeReleased':
      return true;
    case 'NodeRetryScheduled':
      return e.retryAt <= e.at;
    case 'NodeDeferred':
      return e.until <= e.at;
    default:
      return false;
  }
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('\u0000');
  return [key.slice(0, i), key.slice(i + 1)];
}

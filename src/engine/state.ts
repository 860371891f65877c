import type { Json } from '../canvas/json.ts';
import { LovageError } from '../errors.ts';
import { indexDag, remainingOf, type DagIndex } from './dag-index.ts';
import type { StoredEvent, TaskErrorInfo, WorkflowEvent } from './events.ts';
import { isFinished, nextNodeStatus, nextRunStatus, type NodeStatus, type RunLifecycle } from './lifecycle.ts';

export { indexDag, type DagIndex } from './dag-index.ts';

/**
 * What the log says of one node. Every node has every field from the start (the optional ones `undefined`), and a
 * field is cleared by setting it to `undefined`, never deleted: all nodes keep one object shape (V8
 * moves an object it deletes from into a slower dictionary form).
 */
export interface NodeState {
  status: NodeStatus;
  /** Deps not yet succeeded. */
  remaining: number;
  attempt: number;
  leaseToken?: string | undefined;
  worker?: string | undefined;
  args?: readonly Json[] | undefined;
  result?: Json | undefined;
  error?: TaskErrorInfo | undefined;
  readyAt?: number | undefined;
  /** Not claimable before this time (countdown, eta, a retry's backoff, a deferral). */
  availableAt?: number | undefined;
  /** Retries scheduled (NodeRetryScheduled) since the node was last reset. */
  retries: number;
  /** Leases that ran out (a worker died or stalled) since the node was last reset. */
  lost: number;
  startedAt?: number | undefined;
  finishedAt?: number | undefined;
  fenced: number;
}

/** A run's state: the fold of its events. */
export interface RunState {
  readonly runId: string;
  version: number;
  status: RunLifecycle;
  index?: DagIndex;
  nodes: Map<string, NodeState>;
  /** Nodes ready or running. */
  active: number;
  /** Failed node ids, in log order. */
  failed: string[];
  submittedAt?: number;
  finishedAt?: number;
  result?: Json;
  error?: { nodeId: string; task: string; error: TaskErrorInfo };
  cancelled?: { reason: string };
  /** Bound arguments replaced by a resume, by node id. */
  argsOverride?: Map<string, readonly Json[]>;
  /** How many times the run was resumed. */
  resumes: number;
}

/** The state of a run before its first event. */
export function initialState(runId: string): RunState {
  return { runId, version: 0, status: 'new', nodes: new Map(), active: 0, failed: [], resumes: 0 };
}

/** A copy that shares nothing mutable with `state` (the DAG index is immutable and shared). */
export function cloneState(state: RunState): RunState {
  const nodes = new Map<string, NodeState>();
  for (const [id, n] of state.nodes) nodes.set(id, { ...n });
  const copy: RunState = { ...state, nodes, failed: [...state.failed] };
  if (state.argsOverride) copy.argsOverride = new Map(state.argsOverride);
  return copy;
}

const RUN_EVENTS: ReadonlySet<string> = new Set(['WorkflowSubmitted', 'WorkflowSucceeded', 'WorkflowFailed', 'WorkflowCancelled', 'WorkflowResumed']);

/** Resets nodes to pending: outcomes forgotten (they stay in the log), waiting counts recomputed. */
function resume(state: RunState, event: Extract<WorkflowEvent, { type: 'WorkflowResumed' }>): void {
  const index = state.index;
  if (!index) corrupt(state, event, 'the run has no DAG');
  for (const id of event.reset) {
    const node = moveNode(state, event, id);
    // Attempts count again from 1 after a resume, as the ready queue's row is new (the log keeps both).
    node.attempt = 0;
    node.retries = 0;
    node.lost = 0;
    node.availableAt = undefined;
    node.args = undefined;
    node.worker = undefined;
    node.readyAt = undefined;
    node.startedAt = undefined;
    node.result = undefined;
    node.error = undefined;
    node.finishedAt = undefined;
    node.leaseToken = undefined;
  }
  for (const [id, args] of Object.entries(event.args)) {
    if (!index!.byId.has(id)) corrupt(state, event, `unknown node ${id}`);
    (state.argsOverride ??= new Map()).set(id, args);
  }
  const statusOf = (id: string): NodeStatus | undefined => state.nodes.get(id)?.status;
  for (const id of event.reset) state.nodes.get(id)!.remaining = remainingOf(index!, index!.byId.get(id)!, statusOf);
  const reset = new Set(event.reset);
  state.failed = state.failed.filter((id) => !reset.has(id));
  delete state.error;
  delete state.cancelled;
  delete state.result;
  delete state.finishedAt;
  state.resumes++;
}

/** A pending node, with every field of NodeState (see there). */
function newNode(remaining: number): NodeState {
  return {
    status: 'pending', remaining, attempt: 0, leaseToken: undefined, worker: undefined, args: undefined, result: undefined, error: undefined,
    readyAt: undefined, availableAt: undefined, retries: 0, lost: 0, startedAt: undefined, finishedAt: undefined, fenced: 0,
  };
}

function corrupt(state: RunState, event: WorkflowEvent, why: string): never {
  throw new LovageError('CORRUPT_LOG', `run ${state.runId} event ${state.version + 1} (${event.type}): ${why}; the log does not fold`, { runId: state.runId, version: state.version + 1 });
}

function moveNode(state: RunState, event: WorkflowEvent, nodeId: string): NodeState {
  const node = state.nodes.get(nodeId);
  if (!node) return corrupt(state, event, `unknown node ${nodeId}`);
  const next = nextNodeStatus(node.status, event.type);
  if (!next) return corrupt(state, event, `node ${nodeId} is ${node.status}, which does not allow ${event.type}`);
  const wasActive = node.status === 'ready' || node.status === 'running';
  const isActive = next === 'ready' || next === 'running';
  state.active += Number(isActive) - Number(wasActive);
  // A node of a `collect` chord's header counts for its readers as soon as it ends, whatever way.
  const settles = state.index?.settles;
  if (settles && settles.size > 0 && isFinished(next) && !isFinished(node.status)) {
    for (const reader of settles.get(nodeId) ?? []) state.nodes.get(reader)!.remaining--;
  }
  node.status = next;
  return node;
}

/**
 * Applies one event to `state` in place. Internal: the coordinator uses it on states it owns;
 * everyone else uses the pure {@link evolve} / {@link fold}.
 */
export function applyInPlace(state: RunState, event: WorkflowEvent): void {
  switch (event.type) {
    case 'WorkflowSubmitted': {
      const index = indexDag(event.dag);
      state.index = index;
      state.submittedAt = event.at;
      for (const node of event.dag.nodes) state.nodes.set(node.id, newNode(index.depCount.get(node.id) ?? 0));
      break;
    }
    case 'NodeReady': {
      const node = moveNode(state, event, event.nodeId);
      node.args = event.args;
      node.readyAt = event.at;
      if (event.availableAt !== undefined) node.availableAt = event.availableAt;
      break;
    }
    case 'NodeStarted': {
      const node = moveNode(state, event, event.nodeId);
      node.attempt = event.attempt;
      node.leaseToken = event.leaseToken;
      node.worker = event.worker;
      node.startedAt = event.at;
      node.availableAt = undefined;
      break;
    }
    case 'NodeSucceeded': {
      const node = moveNode(state, event, event.nodeId);
      node.result = event.result;
      node.finishedAt = event.at;
      node.leaseToken = undefined;
      node.error = undefined;
      for (const d of state.index?.dependents.get(event.nodeId) ?? []) state.nodes.get(d)!.remaining--;
      break;
    }
    case 'NodeFailed': {
      const node = moveNode(state, event, event.nodeId);
      node.error = event.error;
      node.finishedAt = event.at;
      node.leaseToken = undefined;
      state.failed.push(event.nodeId);
      break;
    }
    case 'NodeRetryScheduled': {
      const node = moveNode(state, event, event.nodeId);
      node.error = event.error;
      node.retries++;
      node.availableAt = event.retryAt;
      node.leaseToken = undefined;
      break;
    }
    case 'NodeDeferred': {
      const node = moveNode(state, event, event.nodeId);
      node.attempt = event.attempt - 1;
      node.availableAt = event.until;
      node.leaseToken = undefined;
      break;
    }
    case 'NodeLeaseExpired':
    case 'NodeReleased': {
      const node = moveNode(state, event, event.nodeId);
      if (event.type === 'NodeLeaseExpired' || event.lost) node.lost++;
      node.leaseToken = undefined;
      break;
    }
    case 'NodeCompletionFenced':
      moveNode(state, event, event.nodeId).fenced++;
      break;
    case 'NodesSkipped':
    case 'NodesAborted':
      for (const id of event.nodeIds) {
        const node = moveNode(state, event, id);
        node.finishedAt = event.at;
        node.leaseToken = undefined;
      }
      break;
    case 'WorkflowSucceeded':
      state.result = event.result;
      state.finishedAt = event.at;
      break;
    case 'WorkflowFailed':
      state.error = { nodeId: event.nodeId, task: event.task, error: event.error };
      state.finishedAt = event.at;
      break;
    case 'WorkflowCancelled':
      for (const id of event.nodeIds) {
        const node = moveNode(state, event, id);
        node.finishedAt = event.at;
        node.leaseToken = undefined;
      }
      state.cancelled = { reason: event.reason };
      state.finishedAt = event.at;
      break;
    case 'WorkflowResumed':
      resume(state, event);
      break;
    default:
      corrupt(state, event, `unknown event type ${JSON.stringify((event as { type?: unknown }).type)}`);
  }
  if (RUN_EVENTS.has(event.type)) {
    const next = nextRunStatus(state.status, event.type);
    if (!next) corrupt(state, event, `the run is ${state.status}, which does not allow ${event.type}`);
    state.status = next;
  } else if (state.status !== 'running' && event.type !== 'NodeCompletionFenced') {
    corrupt(state, event, `the run is ${state.status}`);
  }
  state.version++;
}

/**
 * Pure fold of one event: returns a new state, `state` is not changed.
 *
 * @example
 * const s1 = evolve(initialState('r1'), { type: 'WorkflowSubmitted', at: 0, dag })
 */
export function evolve(state: RunState, event: WorkflowEvent): RunState {
  const next = cloneState(state);
  applyInPlace(next, event);
  return next;
}

/**
 * Pure fold of many events (one copy, then in place): `fold(fold(s, a), b)` equals `fold(s, [...a, ...b])`.
 *
 * @example
 * const state = fold(initialState(runId), (await store.readStream(runId)).map((e) => e.event))
 */
export function fold(state: RunState, events: Iterable<WorkflowEvent>): RunState {
  const next = cloneState(state);
  for (const event of events) applyInPlace(next, event);
  return next;
}

/** Folds stored events, checking that versions follow on. */
export function foldStored(state: RunState, events: readonly StoredEvent[]): RunState {
  const next = cloneState(state);
  applyStored(next, events);
  return next;
}

/** In-place variant of {@link foldStored} for states the caller owns. */
export function applyStored(state: RunState, events: readonly StoredEvent[]): void {
  for (const stored of events) {
    if (stored.version !== state.version + 1) {
      throw new LovageError('CORRUPT_LOG', `run ${state.runId}: expected event version ${state.version + 1}, read ${stored.version}`);
    }
    try {
      applyInPlace(state, stored.event);
    } catch (e) {
      if (e instanceof LovageError) throw e;
      // An event the fold cannot read (written behind the engine's back: a DAG whose nodes are no list).
      corrupt(state, stored.event, `it cannot be read (${e instanceof Error ? e.message : String(e)})`);
    }
  }
}

import { exprRefs, type Dag, type DagNode } from '../canvas/dag.ts';
import type { Json } from '../canvas/json.ts';
import { LovageError } from '../errors.ts';
import type { StoredEvent, TaskErrorInfo, WorkflowEvent } from './events.ts';
import { nextNodeStatus, nextRunStatus, type NodeStatus, type RunLifecycle } from './lifecycle.ts';

/** What the log says of one node. */
export interface NodeState {
  status: NodeStatus;
  /** Deps not yet succeeded. */
  remaining: number;
  attempt: number;
  leaseToken?: string;
  worker?: string;
  args?: readonly Json[];
  result?: Json;
  error?: TaskErrorInfo;
  readyAt?: number;
  startedAt?: number;
  finishedAt?: number;
  fenced: number;
}

/** The DAG with the indexes the fold and `decide` need; built once per run, never changed. */
export interface DagIndex {
  readonly dag: Dag;
  readonly byId: ReadonlyMap<string, DagNode>;
  readonly dependents: ReadonlyMap<string, readonly string[]>;
  readonly depCount: ReadonlyMap<string, number>;
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

export function indexDag(dag: Dag): DagIndex {
  const byId = new Map<string, DagNode>();
  const dependents = new Map<string, string[]>();
  const depCount = new Map<string, number>();
  for (const node of dag.nodes) byId.set(node.id, node);
  for (const node of dag.nodes) {
    const deps = exprRefs(node.input);
    depCount.set(node.id, deps.length);
    for (const dep of deps) {
      if (!byId.has(dep)) throw new LovageError('CORRUPT_LOG', `node ${node.id} reads unknown node ${dep}`);
      let list = dependents.get(dep);
      if (!list) dependents.set(dep, (list = []));
      list.push(node.id);
    }
  }
  return { dag, byId, dependents, depCount };
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
    delete node.args;
    delete node.worker;
    delete node.readyAt;
    delete node.startedAt;
    delete node.result;
    delete node.error;
    delete node.finishedAt;
    delete node.leaseToken;
  }
  for (const [id, args] of Object.entries(event.args)) {
    if (!index!.byId.has(id)) corrupt(state, event, `unknown node ${id}`);
    (state.argsOverride ??= new Map()).set(id, args);
  }
  for (const id of event.reset) {
    let remaining = 0;
    for (const dep of exprRefs(index!.byId.get(id)!.input)) if (state.nodes.get(dep)?.status !== 'succeeded') remaining++;
    state.nodes.get(id)!.remaining = remaining;
  }
  const reset = new Set(event.reset);
  state.failed = state.failed.filter((id) => !reset.has(id));
  delete state.error;
  delete state.cancelled;
  delete state.result;
  delete state.finishedAt;
  state.resumes++;
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
      for (const node of event.dag.nodes) state.nodes.set(node.id, { status: 'pending', remaining: index.depCount.get(node.id) ?? 0, attempt: 0, fenced: 0 });
      break;
    }
    case 'NodeReady': {
      const node = moveNode(state, event, event.nodeId);
      node.args = event.args;
      node.readyAt = event.at;
      break;
    }
    case 'NodeStarted': {
      const node = moveNode(state, event, event.nodeId);
      node.attempt = event.attempt;
      node.leaseToken = event.leaseToken;
      node.worker = event.worker;
      node.startedAt = event.at;
      break;
    }
    case 'NodeSucceeded': {
      const node = moveNode(state, event, event.nodeId);
      node.result = event.result;
      node.finishedAt = event.at;
      delete node.leaseToken;
      for (const d of state.index?.dependents.get(event.nodeId) ?? []) state.nodes.get(d)!.remaining--;
      break;
    }
    case 'NodeFailed': {
      const node = moveNode(state, event, event.nodeId);
      node.error = event.error;
      node.finishedAt = event.at;
      delete node.leaseToken;
      state.failed.push(event.nodeId);
      break;
    }
    case 'NodeLeaseExpired':
    case 'NodeReleased': {
      const node = moveNode(state, event, event.nodeId);
      delete node.leaseToken;
      break;
    }
    case 'NodeCompletionFenced':
      moveNode(state, event, event.nodeId).fenced++;
      break;
    case 'NodesSkipped':
      for (const id of event.nodeIds) moveNode(state, event, id).finishedAt = event.at;
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
        delete node.leaseToken;
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
    applyInPlace(state, stored.event);
  }
}

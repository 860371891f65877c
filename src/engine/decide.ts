import { evalExpr, exprRefs, type Dag } from '../canvas/dag.ts';
import type { Json } from '../canvas/json.ts';
import type { TaskErrorInfo, WorkflowEvent } from './events.ts';
import { argsFor } from './args.ts';
import { decideCancel, decideResume } from './decide-resume.ts';
import type { RunState } from './state.ts';

/** What can happen to a run: the inputs of {@link decide}. Time comes in, never read. */
export type Command =
  | { readonly type: 'Submit'; readonly at: number; readonly dag: Dag }
  | {
      readonly type: 'Complete';
      readonly at: number;
      readonly nodeId: string;
      readonly attempt: number;
      readonly leaseToken: string;
      readonly outcome: { readonly ok: true; readonly value: Json } | { readonly ok: false; readonly error: TaskErrorInfo };
    }
  | { readonly type: 'Release'; readonly at: number; readonly nodeId: string; readonly leaseToken: string; readonly reason: string }
  | { readonly type: 'Cancel'; readonly at: number; readonly reason: string }
  | {
      readonly type: 'Resume';
      readonly at: number;
      /** Nodes to run again besides the frontier (with everything downstream), e.g. a succeeded one. */
      readonly nodes?: readonly string[];
      /** New bound arguments for reset nodes (the parent's result is still prepended). */
      readonly args?: Readonly<Record<string, readonly Json[]>>;
    };

/** A claim as the ready-queue projection sees it, for {@link decideStart}. */
export interface ClaimInput {
  readonly nodeId: string;
  /** Attempts started so far. */
  readonly attempts: number;
  /** The worker whose lease ran out, if the node was leased. */
  readonly expiredWorker?: string;
  readonly worker: string;
  readonly leaseToken: string;
  readonly leaseExpiresAt: number;
  readonly at: number;
}

/**
 * The coordinator: chooses the events a command causes, from the run's state. Pure: no clock, no
 * random, no I/O, `state` is not changed.
 *
 * @example
 * const events = decide(state, { type: 'Complete', at: Date.now(), nodeId: '0', attempt: 1, leaseToken, outcome: { ok: true, value: 3 } })
 */
export function decide(state: RunState, command: Command): WorkflowEvent[] {
  switch (command.type) {
    case 'Submit':
      return decideSubmit(command.dag, command.at);
    case 'Complete':
      return decideComplete(state, command);
    case 'Cancel':
      return decideCancel(state, command);
    case 'Resume':
      return decideResume(state, command);
    case 'Release': {
      const node = state.nodes.get(command.nodeId);
      if (!node || node.status !== 'running' || node.leaseToken !== command.leaseToken) return [];
      return [{ type: 'NodeReleased', at: command.at, nodeId: command.nodeId, attempt: node.attempt, reason: command.reason }];
    }
  }
}


function decideSubmit(dag: Dag, at: number): WorkflowEvent[] {
  const events: WorkflowEvent[] = [{ type: 'WorkflowSubmitted', at, dag }];
  const none = (): Json => null;
  // Nodes that read no other node start the run (an input of empty groups reads none either).
  for (const node of dag.nodes) {
    if (exprRefs(node.input).length === 0) {
      events.push({ type: 'NodeReady', at, nodeId: node.id, task: node.task, args: argsFor(node, none), queue: node.queue, priority: node.priority });
    }
  }
  if (dag.nodes.length === 0) events.push({ type: 'WorkflowSucceeded', at, result: evalExpr(dag.result, none) });
  return events;
}

function decideComplete(state: RunState, c: Extract<Command, { type: 'Complete' }>): WorkflowEvent[] {
  const node = state.nodes.get(c.nodeId);
  const index = state.index;
  const outcome = c.outcome.ok ? 'succeeded' : 'failed';
  if (!node || !index || node.status !== 'running' || node.leaseToken !== c.leaseToken || node.attempt !== c.attempt) {
    const reason = !node ? 'unknown node' : node.status !== 'running' ? `node is ${node.status}` : 'lease token is stale';
    return [{ type: 'NodeCompletionFenced', at: c.at, nodeId: c.nodeId, attempt: c.attempt, leaseToken: c.leaseToken, outcome, reason }];
  }
  const events: WorkflowEvent[] = [];
  let active = state.active - 1;
  const result = (id: string): Json => (id === c.nodeId && c.outcome.ok ? c.outcome.value : (state.nodes.get(id)?.result ?? null));
  if (c.outcome.ok) {
    events.push({ type: 'NodeSucceeded', at: c.at, nodeId: c.nodeId, attempt: node.attempt, result: c.outcome.value });
    for (const id of index.dependents.get(c.nodeId) ?? []) {
      const dep = state.nodes.get(id)!;
      if (dep.status === 'pending' && dep.remaining === 1) {
        const dagNode = index.byId.get(id)!;
        events.push({ type: 'NodeReady', at: c.at, nodeId: id, task: dagNode.task, args: argsFor(dagNode, result, state.argsOverride), queue: dagNode.queue, priority: dagNode.priority });
        active++;
      }
    }
  } else {
    events.push({ type: 'NodeFailed', at: c.at, nodeId: c.nodeId, attempt: node.attempt, error: c.outcome.error });
  }
  if (active > 0) return events;
  // Nothing is ready or running: the run is over.
  const firstFailed = state.failed[0] ?? (c.outcome.ok ? undefined : c.nodeId);
  if (firstFailed === undefined) {
    events.push({ type: 'WorkflowSucceeded', at: c.at, result: evalExpr(index.dag.result, result) });
    return events;
  }
  const pending: string[] = [];
  for (const [id, n] of state.nodes) if (n.status === 'pending') pending.push(id);
  if (pending.length > 0) events.push({ type: 'NodesSkipped', at: c.at, nodeIds: pending, reason: `upstream node ${firstFailed} failed` });
  const error = firstFailed === c.nodeId && !c.outcome.ok ? c.outcome.error : state.nodes.get(firstFailed)!.error!;
  events.push({ type: 'WorkflowFailed', at: c.at, nodeId: firstFailed, task: index.byId.get(firstFailed)!.task, error });
  return events;
}

/**
 * The events of a claim: the expiry of the previous lease when there was one, then the start of
 * the next attempt. Pure; stores call it inside their claim transaction.
 */
export function decideStart(claim: ClaimInput): WorkflowEvent[] {
  const events: WorkflowEvent[] = [];
  if (claim.expiredWorker !== undefined) {
    events.push({ type: 'NodeLeaseExpired', at: claim.at, nodeId: claim.nodeId, attempt: claim.attempts, worker: claim.expiredWorker });
  }
  events.push({ type: 'NodeStarted', at: claim.at, nodeId: claim.nodeId, attempt: claim.attempts + 1, worker: claim.worker, leaseToken: claim.leaseToken, leaseExpiresAt: claim.leaseExpiresAt });
  return events;
}

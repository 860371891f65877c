import { evalExpr, exprRefs, type CollectMember, type Dag } from '../canvas/dag.ts';
import type { Json } from '../canvas/json.ts';
import type { TaskErrorInfo, WorkflowEvent } from './events.ts';
import { argsFor, readyEvent } from './args.ts';
import { indexDag } from './dag-index.ts';
import { decideCancel, decideResume } from './decide-resume.ts';
import { Draft } from './draft.ts';
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
      /** A failure with `retryAt` is a retry (the worker applied the policy); without, the node fails. */
      readonly outcome: { readonly ok: true; readonly value: Json; /** Not run: expired, onExpire 'skip'. */ readonly expired?: true } | { readonly ok: false; readonly error: TaskErrorInfo; readonly retryAt?: number };
    }
  /** Hands a leased node back, claimable at once; `lost`: the attempt was lost (counted like a lost lease). */
  | { readonly type: 'Release'; readonly at: number; readonly nodeId: string; readonly leaseToken: string; readonly reason: string; readonly lost?: true }
  /** Hands a leased node back unstarted, claimable again at `until` (a rate limit's wait). */
  | { readonly type: 'Defer'; readonly at: number; readonly nodeId: string; readonly leaseToken: string; readonly until: number; readonly reason: string }
  | {
      readonly type: 'Cancel';
      readonly at: number;
      readonly reason: string;
      readonly terminate?: boolean;
      /** Cancel only these nodes and everything under them (ids naming places: `1` takes `1.header.0`, ...); the rest goes on. */
      readonly nodes?: readonly string[];
    }
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
  /** The worker whose lease ran out, if the node was leased (undefined: it was not). */
  readonly expiredWorker?: string | undefined;
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
      return [{ type: 'NodeReleased', at: command.at, nodeId: command.nodeId, attempt: node.attempt, reason: command.reason, ...(command.lost ? { lost: true as const } : {}) }];
    }
    case 'Defer': {
      const node = state.nodes.get(command.nodeId);
      if (!node || node.status !== 'running' || node.leaseToken !== command.leaseToken) return [];
      return [{ type: 'NodeDeferred', at: command.at, nodeId: command.nodeId, attempt: node.attempt, until: command.until, reason: command.reason }];
    }
  }
}


/** No node has a result yet at submit. */
const none = (): Json => null;

function decideSubmit(dag: Dag, at: number): WorkflowEvent[] {
  const events: WorkflowEvent[] = [{ type: 'WorkflowSubmitted', at, dag }];
  if (!dag.scopes?.length) {
    // Nodes that read no other node start the run (an input of empty groups reads none either).
    for (const node of dag.nodes) {
      if (exprRefs(node.input).length === 0) {
        events.push(readyEvent(node, at, argsFor(node, none)));
      }
    }
    if (dag.nodes.length === 0) events.push({ type: 'WorkflowSucceeded', at, result: evalExpr(dag.result, none) });
    return events;
  }
  // With callbacks and `collect` chords: what waits for nothing starts (a `linkError` callback waits
  // for a failure; a `collect` header's reader for its members' nodes).
  const index = indexDag(dag);
  const member = (m: CollectMember): Json => ({ ok: true, value: evalExpr(m.value, none, { member }) });
  let started = 0;
  for (const node of dag.nodes) {
    if (index.depCount.get(node.id) === 0) {
      events.push(readyEvent(node, at, argsFor(node, none, undefined, { member })));
      started++;
    }
  }
  if (started === 0) {
    // Only callbacks that can never run (a linkError on an empty group): the run is over at once.
    if (dag.nodes.length > 0) events.push({ type: 'NodesSkipped', at, nodeIds: dag.nodes.map((n) => n.id), reason: 'callbacks not run: what they wait for (their canvas succeeding, or failing for linkError) did not happen' });
    events.push({ type: 'WorkflowSucceeded', at, result: evalExpr(dag.result, none, { member }) });
  }
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
  if (!c.outcome.ok && c.outcome.retryAt !== undefined) {
    return [{ type: 'NodeRetryScheduled', at: c.at, nodeId: c.nodeId, attempt: node.attempt, error: c.outcome.error, retryAt: c.outcome.retryAt }];
  }
  const draft = new Draft(state, index, c.at);
  const dagNode = index.byId.get(c.nodeId)!;
  if (c.outcome.ok) {
    draft.succeed(c.nodeId, node.attempt, c.outcome.value, c.outcome.expired);
  } else {
    draft.fail(c.nodeId, node.attempt, c.outcome.error);
    if (dagNode.failFast !== undefined) draft.abort(dagNode.scope, `chord ${dagNode.failFast} fails fast: its member node ${c.nodeId} failed`);
    draft.fireErrbacks(dagNode, c.outcome.error);
  }
  draft.readyCounted();
  // A `collect` member with a failure and nothing left to run is over (after the readies: a success may still start more).
  draft.settleMember(dagNode.scope);
  draft.readyCounted();
  // Nothing is ready or running: the run is over.
  if (draft.active === 0) draft.end();
  return draft.events;
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

import { createMachine, transition } from 'xstate';
import type { EventType } from './events.ts';

/** A node's lifecycle states. */
export type NodeStatus = 'pending' | 'ready' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';
/** A run's lifecycle states. */
export type RunLifecycle = 'new' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/**
 * The node lifecycle, the one source of truth for which event may move a node where. Succeeded,
 * failed, skipped and cancelled end a node until a resume resets it (so no state is xstate-`final`).
 * A fenced completion may arrive in any state and changes nothing.
 */
export const nodeMachine = createMachine({
  id: 'node',
  initial: 'pending',
  states: {
    pending: { on: { NodeReady: 'ready', NodesSkipped: 'skipped', NodesAborted: 'skipped', WorkflowCancelled: 'cancelled', NodeCompletionFenced: 'pending' } },
    ready: { on: { NodeStarted: 'running', NodesAborted: 'skipped', WorkflowCancelled: 'cancelled', NodeCompletionFenced: 'ready' } },
    running: {
      on: {
        NodeSucceeded: 'succeeded',
        NodeFailed: 'failed',
        NodeRetryScheduled: 'ready',
        NodeDeferred: 'ready',
        NodeLeaseExpired: 'ready',
        NodeReleased: 'ready',
        NodesAborted: 'cancelled',
        WorkflowCancelled: 'cancelled',
        NodeCompletionFenced: 'running',
      },
    },
    succeeded: { on: { WorkflowResumed: 'pending', NodeCompletionFenced: 'succeeded' } },
    failed: { on: { WorkflowResumed: 'pending', NodeCompletionFenced: 'failed' } },
    skipped: { on: { WorkflowResumed: 'pending', NodeCompletionFenced: 'skipped' } },
    cancelled: { on: { WorkflowResumed: 'pending', NodeCompletionFenced: 'cancelled' } },
  },
});

/** The run lifecycle. */
export const runMachine = createMachine({
  id: 'run',
  initial: 'new',
  states: {
    new: { on: { WorkflowSubmitted: 'running' } },
    running: { on: { WorkflowSucceeded: 'succeeded', WorkflowFailed: 'failed', WorkflowCancelled: 'cancelled' } },
    succeeded: {},
    failed: { on: { WorkflowResumed: 'running' } },
    cancelled: { on: { WorkflowResumed: 'running' } },
  },
});

type Table<S extends string> = ReadonlyMap<S, ReadonlyMap<string, S>>;

/**
 * Runs xstate's pure `transition` over every (state, event) pair once, at load, and keeps the
 * answers in a table: the fold then moves a node with two Map lookups instead of building an
 * xstate snapshot per event (the fold must replay 100k+ events a second).
 */
function tabulate<S extends string>(machine: typeof nodeMachine | typeof runMachine, states: readonly S[], events: readonly string[]): Table<S> {
  const table = new Map<S, Map<string, S>>();
  for (const state of states) {
    const row = new Map<string, S>();
    for (const type of events) {
      const snapshot = machine.resolveState({ value: state, context: {} } as never);
      const [next] = transition(machine as never, snapshot as never, { type } as never) as [{ value: unknown }, unknown];
      const explicit = Boolean((machine.states as Record<string, { on: Record<string, unknown> }>)[state]?.on[type]);
      if (explicit) row.set(type, next.value as S);
    }
    table.set(state, row);
  }
  return table;
}

const nodeEventTypes: EventType[] = ['NodeReady', 'NodeStarted', 'NodeSucceeded', 'NodeFailed', 'NodeRetryScheduled', 'NodeDeferred', 'NodeLeaseExpired', 'NodeReleased', 'NodeCompletionFenced', 'NodesSkipped', 'NodesAborted', 'WorkflowCancelled', 'WorkflowResumed'];
const runEventTypes: EventType[] = ['WorkflowSubmitted', 'WorkflowSucceeded', 'WorkflowFailed', 'WorkflowCancelled', 'WorkflowResumed'];

export const nodeTable: Table<NodeStatus> = tabulate(nodeMachine, ['pending', 'ready', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'], nodeEventTypes);
export const runTable: Table<RunLifecycle> = tabulate(runMachine, ['new', 'running', 'succeeded', 'failed', 'cancelled'], runEventTypes);

/** Whether a node in `status` has finished (until a resume resets it). */
export function isFinished(status: NodeStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'skipped' || status === 'cancelled';
}

/** The node state after `type`, or `undefined` when the lifecycle does not allow it. */
export function nextNodeStatus(from: NodeStatus, type: EventType): NodeStatus | undefined {
  return nodeTable.get(from)?.get(type);
}

/** The run state after `type`, or `undefined` when the lifecycle does not allow it. */
export function nextRunStatus(from: RunLifecycle, type: EventType): RunLifecycle | undefined {
  return runTable.get(from)?.get(type);
}

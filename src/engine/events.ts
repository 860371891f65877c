import type { Dag, ExecOptions } from '../canvas/dag.ts';
import type { Json } from '../canvas/json.ts';

/** A task's error as recorded in the log. */
export interface TaskErrorInfo {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

/**
 * Every change of a run's state, past tense. `at` is epoch milliseconds from the store's or the
 * caller's clock, never read inside the engine.
 */
export type WorkflowEvent =
  | { readonly type: 'WorkflowSubmitted'; readonly at: number; readonly dag: Dag }
  | { readonly type: 'NodeReady'; readonly at: number; readonly nodeId: string; readonly task: string; readonly args: readonly Json[]; readonly queue: string; readonly priority: number;
      /** Not claimable before this time (countdown, eta); absent: at once. */
      readonly availableAt?: number;
      /** Per-call options the worker applies (retry, expiry, time limits); absent: the task's own. */
      readonly options?: ExecOptions }
  | { readonly type: 'NodeStarted'; readonly at: number; readonly nodeId: string; readonly attempt: number; readonly worker: string; readonly leaseToken: string; readonly leaseExpiresAt: number }
  | { readonly type: 'NodeSucceeded'; readonly at: number; readonly nodeId: string; readonly attempt: number; readonly result: Json;
      /** Not run: claimed after its expiry with onExpire 'skip' (the result is `null`). */
      readonly expired?: true }
  | { readonly type: 'NodeFailed'; readonly at: number; readonly nodeId: string; readonly attempt: number; readonly error: TaskErrorInfo }
  /** The attempt failed and the node runs again at `retryAt` (store clock); the error is the attempt's. */
  | { readonly type: 'NodeRetryScheduled'; readonly at: number; readonly nodeId: string; readonly attempt: number; readonly error: TaskErrorInfo; readonly retryAt: number }
  /** The attempt was handed back unstarted (e.g. a rate limit): it does not count, the node is claimable at `until`. */
  | { readonly type: 'NodeDeferred'; readonly at: number; readonly nodeId: string; readonly attempt: number; readonly until: number; readonly reason: string }
  | { readonly type: 'NodeLeaseExpired'; readonly at: number; readonly nodeId: string; readonly attempt: number; readonly worker: string }
  /** `lost`: the worker lost the attempt (its thread died of an error the task did not throw): counted like a lost lease (maxLeaseExpiries). */
  | { readonly type: 'NodeReleased'; readonly at: number; readonly nodeId: string; readonly attempt: number; readonly reason: string; readonly lost?: true }
  | { readonly type: 'NodeCompletionFenced'; readonly at: number; readonly nodeId: string; readonly attempt: number; readonly leaseToken: string; readonly outcome: 'succeeded' | 'failed'; readonly reason: string }
  | { readonly type: 'NodesSkipped'; readonly at: number; readonly nodeIds: readonly string[]; readonly reason: string }
  /**
   * A `failFast` chord's member failed: the unfinished nodes of its scope (the run's canvas proper, or
   * the callback or `collect` member it sits in) stop at once. Pending and ready ones are skipped, never
   * run; a running one is cancelled and its late outcome is fenced. Callbacks are never aborted.
   */
  | { readonly type: 'NodesAborted'; readonly at: number; readonly nodeIds: readonly string[]; readonly reason: string; /** A cancel of part of the run (not a failFast chord's decision). */ readonly byRequest?: true; /** With byRequest: terminate the threads running them. */ readonly terminate?: true }
  | { readonly type: 'WorkflowSucceeded'; readonly at: number; readonly result: Json }
  | { readonly type: 'WorkflowFailed'; readonly at: number; readonly nodeId: string; readonly task: string; readonly error: TaskErrorInfo }
  | { readonly type: 'WorkflowCancelled'; readonly at: number; readonly reason: string; readonly nodeIds: readonly string[]; /** Running tasks' threads are to be terminated (threads pool). */ readonly terminate?: boolean; /** The end of a run part of which was cancelled (a decision, not a cancel request). */ readonly partial?: true }
  | {
      readonly type: 'WorkflowResumed';
      readonly at: number;
      /** The nodes asked for besides the frontier (`--node`). */
      readonly nodes: readonly string[];
      /** The nodes reset to pending: failed, cancelled and skipped ones, those asked for, and all downstream of them. */
      readonly reset: readonly string[];
      /** Bound arguments replaced for some reset nodes. */
      readonly args: Readonly<Record<string, readonly Json[]>>;
    };

/** The type names of {@link WorkflowEvent}. */
export type EventType = WorkflowEvent['type'];

/** An event as stored: its run, its version in the run (1-based) and its global position. */
export interface StoredEvent {
  readonly runId: string;
  readonly version: number;
  readonly position: number;
  readonly event: WorkflowEvent;
}

export const eventTypes: ReadonlySet<string> = new Set<EventType>([
  'WorkflowSubmitted', 'NodeReady', 'NodeStarted', 'NodeSucceeded', 'NodeFailed', 'NodeRetryScheduled', 'NodeDeferred', 'NodeLeaseExpired',
  'NodeReleased', 'NodeCompletionFenced', 'NodesSkipped', 'NodesAborted', 'WorkflowSucceeded', 'WorkflowFailed',
  'WorkflowCancelled', 'WorkflowResumed',
]);

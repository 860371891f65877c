import { AsyncLocalStorage } from 'node:async_hooks';
import { LovageError } from '../errors.ts';

/** What a running task knows about itself. */
export interface TaskContext {
  readonly runId: string;
  readonly nodeId: string;
  readonly task: string;
  /** 1 for the first execution, 2 after a retry or an expired lease, ... */
  readonly attempt: number;
  /**
   * Stable for this node across attempts (`<runId>/<nodeId>`): pass it to the APIs your task calls, so
   * a side effect repeated by a second attempt happens once.
   */
  readonly idempotencyKey: string;
  /**
   * Aborted when the soft time limit passes, the hard limit ends the attempt, the worker loses the
   * lease, or it shuts down past its grace period (`signal.reason` says which).
   */
  readonly signal: AbortSignal;
  /** Extends the lease now (workers also do it on a timer); resolves `false` when the lease was lost. */
  heartbeat(): Promise<boolean>;
  /**
   * Ends this attempt and schedules a retry, in `countdown` (ms or `30s`; default: the retry
   * policy's backoff). Retries even when the task has no retry policy (up to `max`, default 3); once
   * they are used up the node fails with `error` (or MaxRetriesExceededError). Throws: call it as
   * `throw ctx.retry(...)` or `ctx.retry(...)` as the last statement.
   *
   * @example
   * if (response.status === 429) ctx.retry({ countdown: '30s', error: new Error('rate limited') })
   */
  retry(options?: { countdown?: number | string; error?: unknown }): never;
}

export const contextStorage = new AsyncLocalStorage<TaskContext>();

/**
 * The context of the task running now; throws outside a task.
 *
 * @example
 * const slow = app.task('slow', async (ms: number) => {
 *   const { signal, attempt } = taskContext()
 *   await setTimeout(ms, undefined, { signal })
 *   return attempt
 * })
 */
export function taskContext(): TaskContext {
  const ctx = contextStorage.getStore();
  if (!ctx) throw new LovageError('VALIDATION', 'taskContext() was called outside a running task; call it inside a task function');
  return ctx;
}

import { AsyncLocalStorage } from 'node:async_hooks';
import { LovageError } from '../errors.ts';

/** What a running task knows about itself. */
export interface TaskContext {
  readonly runId: string;
  readonly nodeId: string;
  readonly task: string;
  /** 1 for the first execution, 2 after a lease expired, ... */
  readonly attempt: number;
  /**
   * Stable for this node across attempts (`<runId>/<nodeId>`): pass it to the APIs your task calls, so
   * a side effect repeated by a second attempt happens once.
   */
  readonly idempotencyKey: string;
  /** Aborted when the worker loses the lease or shuts down past its grace period. */
  readonly signal: AbortSignal;
  /** Extends the lease now (workers also do it on a timer); resolves `false` when the lease was lost. */
  heartbeat(): Promise<boolean>;
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

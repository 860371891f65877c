import type { RunHandle, RunStatus } from '../canvas/submit.ts';
import type { WorkflowEvent } from '../engine/events.ts';
import { LovageError } from '../errors.ts';
import type { EventStore } from '../eventstore/store.ts';

/** Where a handle waits: the store, and local notice of runs this process finished. */
export interface HandleHost {
  readonly store: () => Promise<EventStore>;
  /** Calls `wake` when this process records the end of run `runId`; returns an unsubscribe. */
  onFinished(runId: string, wake: () => void): () => void;
}

/** Makes a handle on run `id`. */
export function runHandle<T>(host: HandleHost, id: string): RunHandle<T> {
  const status = async (): Promise<RunStatus> => {
    const run = await (await host.store()).getRun(id);
    if (!run) throw new LovageError('NOT_FOUND', `run ${id} does not exist in this store`, { runId: id });
    return run.status;
  };
  const outcome = async (): Promise<{ done: false } | { done: true; event: WorkflowEvent }> => {
    const store = await host.store();
    const run = await store.getRun(id);
    if (!run) throw new LovageError('NOT_FOUND', `run ${id} does not exist in this store`, { runId: id });
    if (run.status === 'quarantined') throw new LovageError('CORRUPT_LOG', `run ${id} is quarantined: ${run.quarantineReason ?? 'its log does not fold'}`, { runId: id });
    if (run.finishedVersion === undefined) return { done: false };
    const [stored] = await store.readStream(id, run.finishedVersion);
    if (!stored) throw new LovageError('CORRUPT_LOG', `run ${id} is finished at version ${run.finishedVersion}, but that event is missing`);
    return { done: true, event: stored.event };
  };
  return Object.freeze({
    id,
    status,
    async get(options: { timeoutMs?: number } = {}): Promise<T> {
      const timeoutMs = options.timeoutMs ?? Number.POSITIVE_INFINITY;
      const deadline = Date.now() + timeoutMs;
      let wait = 2;
      for (;;) {
        const o = await outcome();
        if (o.done) {
          if (o.event.type === 'WorkflowSucceeded') return o.event.result as T;
          if (o.event.type === 'WorkflowFailed') {
            const { nodeId, task, error } = o.event;
            throw new LovageError('TASK_FAILED', `run ${id} failed: node ${nodeId} (task ${task}) raised ${error.name}: ${error.message}`, { runId: id, nodeId, task, error });
          }
          if (o.event.type === 'WorkflowCancelled') {
            throw new LovageError('CANCELLED', `run ${id} was cancelled: ${o.event.reason}`, { runId: id, reason: o.event.reason });
          }
          throw new LovageError('CORRUPT_LOG', `run ${id}: the finishing event is a ${o.event.type}`);
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new LovageError('TIMEOUT', `run ${id} did not finish within ${timeoutMs} ms (it is still running)`, { runId: id });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(wait, left));
          const off = host.onFinished(id, done);
          function done() { clearTimeout(timer); off(); resolve(); }
        });
        wait = Math.min(100, wait * 2);
      }
    },
  });
}

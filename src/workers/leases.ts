import { LovageError } from '../errors.ts';
import type { ClaimedNode, EventStore } from '../eventstore/store.ts';
import type { InFlight } from './attempt.ts';

/**
 * A worker's heartbeat: extends the leases of its running nodes, of its finished nodes whose outcome
 * is not recorded yet, and of nodes claimed but not started yet (`unrecorded`), in one store call. A running node whose lease is gone (another worker
 * took it after an expiry, or its run was cancelled) is aborted: its outcome will be fenced. In the
 * threads pool, a lease lost to a cancel with `terminate` ends the task's thread too (`terminate` is
 * called for it, as the run's log says).
 */
export async function extendLeases(
  store: EventStore,
  running: readonly InFlight[],
  unrecorded: readonly ClaimedNode[],
  leaseMs: number,
  terminate: (runId: string, nodeId: string, reason: string) => void,
): Promise<void> {
  const leases = [...running.map((f) => f.node), ...unrecorded];
  if (leases.length === 0) return;
  const held = await store.extend(leases, leaseMs);
  const lost = new Set<string>();
  held.forEach((ok, i) => {
    const f = running[i];
    if (ok || !f) return;
    f.abort(new LovageError('LEASE_LOST', `lease of node ${f.node.nodeId} was lost; its outcome will be recorded as stale`));
    if (f.thread) lost.add(f.node.runId);
  });
  for (const runId of lost) {
    const log = await store.readStream(runId);
    for (const f of running) {
      if (f.node.runId !== runId || !f.thread) continue;
      const id = f.node.nodeId;
      const last = log.findLast(({ event: e }) => e.type === 'WorkflowResumed' || ((e.type === 'WorkflowCancelled' || e.type === 'NodesAborted') && e.nodeIds.includes(id)))?.event;
      if ((last?.type === 'WorkflowCancelled' || last?.type === 'NodesAborted') && last.terminate) terminate(runId, id, last.reason);
    }
  }
}

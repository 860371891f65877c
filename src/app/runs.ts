import type { RunHandle } from '../canvas/submit.ts';
import type { Json } from '../canvas/json.ts';
import type { StoredEvent } from '../engine/events.ts';
import { fold, initialState, type RunState } from '../engine/state.ts';
import { verifyRun, type VerifyReport } from '../engine/verify.ts';
import { LovageError } from '../errors.ts';
import type { EventStore, RunFilter, RunRecord } from '../eventstore/store.ts';
import type { Coordinator } from '../workers/coordinator.ts';
import { assertRunId, parseDuration } from './duration.ts';
import { isoTime } from './iso-time.ts';
import { exportRun, parseExport } from './run-export.ts';

/** Inspecting, replaying, resuming, verifying, exporting and pruning runs: the history as a product. */
export interface RunsApi {
  /** Runs matching the filter, newest first. */
  list(filter?: RunFilter): Promise<RunRecord[]>;
  /** A run's events, in order. */
  history(runId: string): Promise<StoredEvent[]>;
  /**
   * The run's state as it was at event version `at` (an integer 0..the run's event count) or at a
   * time (an ISO 8601 string or a Date); now when `at` is omitted. Anything else is refused (VALIDATION).
   */
  inspect(runId: string, options?: { at?: number | string | Date }): Promise<RunState>;
  /**
   * Cancels a running run: pending and ready nodes never run; running ones' outcomes are fenced.
   * Running tasks see their AbortSignal at once in this process's workers, at their worker's next
   * heartbeat (a third of the lease) elsewhere. With `terminate: true`, the threads pool also
   * terminates their threads (recorded in the log, so workers in other processes do too). With
   * `nodes`, only those subtrees (`1` takes `1.header.0` and the rest under it) are cancelled; the rest
   * of the run goes on, and it ends cancelled (resumable) if part of its canvas did not run.
   */
  cancel(runId: string, reason?: string, options?: { terminate?: boolean; nodes?: readonly string[] }): Promise<void>;
  /**
   * Resumes a failed or cancelled run at its frontier: failed, cancelled and skipped nodes and all
   * downstream run again; succeeded nodes keep their results. `nodes` adds nodes (and their
   * downstream) to run again; `args` replaces a reset node's bound arguments.
   */
  resume(runId: string, options?: { nodes?: readonly string[]; args?: Readonly<Record<string, readonly Json[]>> }): Promise<RunHandle<unknown>>;
  /** Runs one node (and what depends on it) again in a failed or cancelled run: `resume` with that node. */
  retry(runId: string, nodeId: string): Promise<RunHandle<unknown>>;
  /** Re-runs the current rules over the recorded inputs; reports every decision that differs. */
  verify(runId: string): Promise<VerifyReport>;
  /** The run's history as a portable JSON Lines text (format version and checksum included). */
  export(runId: string): Promise<string>;
  /**
   * Imports an export: refused whole (VALIDATION, naming the line) if damaged or edited into a log the
   * workers cannot go on from (see parseExport); `runId` imports under another id.
   */
  import(text: string, options?: { runId?: string }): Promise<string>;
  /**
   * Deletes finished runs created more than `olderThan` ago (default statuses: succeeded, failed,
   * cancelled; `status` may name only {@link PRUNABLE_STATUSES}: running runs are never pruned).
   */
  prune(options: { olderThan: string | number; status?: readonly RunRecord['status'][] }): Promise<number>;
}

/**
 * The statuses `prune` may delete: finished ones. Running runs are never pruned.
 *
 * @example
 * PRUNABLE_STATUSES.includes('running') // false
 */
export const PRUNABLE_STATUSES: readonly RunRecord['status'][] = Object.freeze(['succeeded', 'failed', 'cancelled', 'quarantined']);

/** Throws a VALIDATION error naming the first status prune may not delete (see {@link PRUNABLE_STATUSES}). */
function assertPrunable(status: unknown): asserts status is readonly RunRecord['status'][] {
  if (!Array.isArray(status)) throw new LovageError('VALIDATION', `prune status ${JSON.stringify(status)} is invalid; allowed is an array of ${PRUNABLE_STATUSES.join(', ')}`);
  for (const s of status) {
    if (!(PRUNABLE_STATUSES as readonly unknown[]).includes(s)) {
      throw new LovageError('VALIDATION', `prune status ${JSON.stringify(s)} is invalid: prune deletes finished runs only; allowed are ${PRUNABLE_STATUSES.join(', ')}`);
    }
  }
}

/** The runs API over a store and its coordinator. */
export function runsApi(
  open: () => Promise<{ store: EventStore; coordinator: Coordinator }>,
  handle: (id: string) => RunHandle<unknown>,
  cancelled: (runId: string, reason: string, terminate: boolean, nodes?: readonly string[]) => void = () => undefined,
): RunsApi {
  const events = async (runId: string): Promise<StoredEvent[]> => {
    const { store } = await open();
    const stored = await store.readStream(runId);
    if (stored.length === 0) throw new LovageError('NOT_FOUND', `run ${runId} does not exist in this store`, { runId });
    return stored;
  };
  const api: RunsApi = {
    list: async (filter) => (await open()).store.listRuns(filter),
    history: events,
    async inspect(runId, options = {}) {
      const stored = await events(runId);
      const at = options.at;
      let upTo = stored.length;
      const allowed = `allowed are an event version 0..${stored.length} or an ISO time such as 2026-11-22T10:00:00Z`;
      if (typeof at === 'number') {
        if (!Number.isInteger(at) || at < 0 || at > stored.length) throw new LovageError('VALIDATION', `at ${at} is invalid: run ${runId} has ${stored.length} events; ${allowed}`);
        upTo = at;
      } else if (at !== undefined) {
        const t = at instanceof Date ? at.getTime() : typeof at === 'string' ? isoTime(at) : undefined;
        if (t === undefined || Number.isNaN(t)) throw new LovageError('VALIDATION', `at ${JSON.stringify(at)} is invalid; ${allowed}`);
        // The history up to the first event after t (clocks of several processes need not agree to the ms).
        const after = stored.findIndex((s) => s.event.at > t);
        upTo = after === -1 ? stored.length : after;
      }
      return fold(initialState(runId), stored.slice(0, upTo).map((s) => s.event));
    },
    async cancel(runId, reason = 'cancelled by request', options = {}) {
      const { store, coordinator } = await open();
      await coordinator.apply(runId, { type: 'Cancel', at: await store.now(), reason, ...(options.terminate ? { terminate: true } : {}), ...(options.nodes ? { nodes: options.nodes } : {}) });
      cancelled(runId, reason, options.terminate === true, options.nodes);
    },
    async resume(runId, options = {}) {
      const { store, coordinator } = await open();
      await coordinator.apply(runId, { type: 'Resume', at: await store.now(), ...(options.nodes ? { nodes: options.nodes } : {}), ...(options.args ? { args: options.args } : {}) });
      return handle(runId);
    },
    retry: (runId, nodeId) => api.resume(runId, { nodes: [nodeId] }),
    async verify(runId) {
      return verifyRun(runId, (await events(runId)).map((s) => s.event));
    },
    async export(runId) {
      return exportRun(runId, await events(runId));
    },
    async import(text, options = {}) {
      const parsed = parseExport(text);
      const runId = options.runId ?? parsed.runId;
      assertRunId(runId);
      const { store } = await open();
      if (await store.getRun(runId)) throw new LovageError('CONCURRENCY', `run ${runId} exists in this store already; import it under another id (--as <id>)`, { runId });
      await store.append([{ runId, expectedVersion: 0, events: parsed.events }]);
      return runId;
    },
    async prune(options) {
      const olderThan = parseDuration(options.olderThan, 'olderThan');
      const status = options.status ?? ['succeeded', 'failed', 'cancelled'];
      assertPrunable(status);
      const { store } = await open();
      const createdTo = (await store.now()) - olderThan;
      let pruned = 0;
      let after: RunRecord | undefined;
      for (;;) {
        const page = await store.listRuns({ status, createdTo, limit: 500, ...(after ? { after } : {}) });
        if (page.length === 0) return pruned;
        // Status checked again as they are deleted: a run resumed since it was listed stays.
        pruned += await store.deleteRuns(page.map((r) => r.runId), { onlyStatus: status });
        after = page[page.length - 1];
      }
    },
  };
  return api;
}

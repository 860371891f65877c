import type { Dag } from '../canvas/dag.ts';
import { decide, type Command } from '../engine/decide.ts';
import type { StoredEvent, WorkflowEvent } from '../engine/events.ts';
import { applyInPlace, applyStored, initialState, type RunState } from '../engine/state.ts';
import { applyUndoable, beginUndo, rollback, type Undo } from '../engine/undo.ts';
import { LovageError } from '../errors.ts';
import type { AppendRequest, ClaimedNode, ClaimRequest, EventStore } from '../eventstore/store.ts';

/** A node outcome to record. */
export type Completion = Extract<Command, { type: 'Complete' | 'Release' }> & { readonly runId: string };

const MAX_CONFLICT_RETRIES = 100;

/**
 * Runs the pure coordinator against a store: folds each run's log (kept in a bounded cache and
 * caught up from the store when another process appended), calls `decide`, and appends the outcome
 * together with its decisions in one atomic append guarded by the run's expected version.
 */
export class Coordinator {
  readonly #store: EventStore;
  readonly #cache = new Map<string, RunState>();
  readonly #cacheNodes: number;
  #cachedNodes = 0;
  readonly #finished = new Set<(runId: string) => void>();
  #queue: Promise<unknown> = Promise.resolve();

  /** `cacheNodes`: how many DAG nodes the run-state cache may hold, over all runs (default 1,000,000). */
  constructor(store: EventStore, options: { cacheNodes?: number } = {}) {
    this.#store = store;
    this.#cacheNodes = options.cacheNodes ?? 1_000_000;
  }

  /** Appends a new run: WorkflowSubmitted and its first NodeReady events (in the caller's transaction, if given). */
  async submit(runId: string, dag: Dag, at: number, transaction?: unknown): Promise<void> {
    const state = initialState(runId);
    const events = decide(state, { type: 'Submit', at, dag });
    await this.#store.append([{ runId, expectedVersion: 0, events }], transaction === undefined ? {} : { transaction });
    // Inside a caller's transaction the run may yet roll back: nothing is cached for it.
    if (transaction !== undefined) return;
    for (const e of events) applyInPlace(state, e);
    this.#remember(state);
  }

  /**
   * Decides one command on a run caught up with the log and appends what it causes (retrying on a
   * concurrent append). Throws what `decide` throws for a command the run's state refuses.
   */
  apply(runId: string, command: Extract<Command, { type: 'Cancel' | 'Resume' }>): Promise<StoredEvent[]> {
    return this.#serially(() => this.#apply(runId, command));
  }

  async #apply(runId: string, command: Extract<Command, { type: 'Cancel' | 'Resume' }>): Promise<StoredEvent[]> {
    for (let attempt = 0; ; attempt++) {
      this.#forget(runId);
      const state = await this.load(runId);
      if (state.version === 0) throw new LovageError('NOT_FOUND', `run ${runId} does not exist in this store`, { runId });
      const events = decide(state, command);
      try {
        const [stored] = await this.#store.append([{ runId, expectedVersion: state.version, events }]);
        this.#forget(runId);
        if (events.some((e) => e.type === 'WorkflowCancelled')) for (const l of this.#finished) l(runId);
        return stored ?? [];
      } catch (e) {
        if (!(e instanceof LovageError && e.code === 'CONCURRENCY') || attempt >= MAX_CONFLICT_RETRIES) throw e;
      }
    }
  }

  /** Folds events this process appended through the store (claims) into the cache. */
  observe(events: readonly StoredEvent[]): void {
    for (const s of events) {
      const state = this.#cache.get(s.runId);
      if (!state) continue;
      if (state.version + 1 !== s.version) {
        this.#forget(s.runId);
        continue;
      }
      applyInPlace(state, s.event);
    }
  }

  /** Calls `listener(runId)` when this process records the end of a run. */
  onFinished(listener: (runId: string) => void): () => void {
    this.#finished.add(listener);
    return () => this.#finished.delete(listener);
  }

  /** The run's state, caught up with the store. The caller must not change it. */
  async load(runId: string): Promise<RunState> {
    let state = this.#cache.get(runId);
    if (!state) state = initialState(runId);
    this.#forget(runId);
    applyStored(state, await this.#store.readStream(runId, state.version + 1));
    if (state.version > 0) this.#remember(state);
    return state;
  }

  /**
   * Records outcomes (completions and releases), in one append for the whole batch. A completion
   * whose lease is stale is recorded as NodeCompletionFenced, never as a second outcome. A run whose
   * log does not fold (CORRUPT_LOG) is quarantined: its outcomes are not recorded and it is
   * returned with the error; the other runs of the batch go on.
   */
  async record(completions: readonly Completion[], claim?: ClaimRequest): Promise<{ quarantined: { runId: string; error: LovageError }[]; claimed: ClaimedNode[] }> {
    return this.#serially(() => this.#record(completions, claim));
  }

  async #record(completions: readonly Completion[], claim?: ClaimRequest): Promise<{ quarantined: { runId: string; error: LovageError }[]; claimed: ClaimedNode[] }> {
    const quarantined = new Map<string, LovageError>();
    const byRun = new Map<string, Completion[]>();
    for (const c of completions) {
      const list = byRun.get(c.runId);
      if (list) list.push(c);
      else byRun.set(c.runId, [c]);
    }
    const stale = new Set<string>();
    for (let attempt = 0; ; attempt++) {
      const requests: AppendRequest[] = [];
      const undos: Undo[] = [];
      const finished: string[] = [];
      for (const [runId, items] of byRun) {
        if (quarantined.has(runId)) continue;
        try {
          // A run another process appended to is caught up from its cached version: only the new events are read.
          let state = !stale.has(runId) && this.#cache.get(runId) ? this.#cache.get(runId)! : await this.load(runId);
          let undo = beginUndo(state);
          let events = decideAll(undo, items);
          // Deciding nothing proves nothing about a cached state: it may be stale. Check with the log.
          if (events.length === 0 && !stale.has(runId)) {
            state = await this.load(runId);
            undo = beginUndo(state);
            events = decideAll(undo, items);
          }
          if (events.length > 0) {
            requests.push({ runId, expectedVersion: state.version - events.length, events });
            undos.push(undo);
          }
          if (events.some((e) => e.type === 'WorkflowSucceeded' || e.type === 'WorkflowFailed')) finished.push(runId);
        } catch (e) {
          if (!(e instanceof LovageError && e.code === 'CORRUPT_LOG')) throw e;
          this.#forget(runId);
          const error = new LovageError('CORRUPT_LOG', `run ${runId} is quarantined: ${e.message}`, e.details as Record<string, unknown>);
          quarantined.set(runId, error);
          await this.#store.quarantine(runId, e.message);
        }
      }
      stale.clear();
      try {
        let claimed: ClaimedNode[] = [];
        if (claim) claimed = await this.#store.appendAndClaim(requests, claim);
        else if (requests.length > 0) await this.#store.append(requests);
        for (const runId of finished) {
          this.#forget(runId);
          for (const l of this.#finished) l(runId);
        }
        for (const node of claimed) this.observe(node.events);
        return { quarantined: [...quarantined].map(([runId, error]) => ({ runId, error })), claimed };
      } catch (e) {
        // The cached states were changed optimistically: take the changes back, catch up, decide again.
        for (const undo of undos) rollback(undo);
        if (!(e instanceof LovageError && e.code === 'CONCURRENCY') || attempt >= MAX_CONFLICT_RETRIES) {
          for (const r of requests) this.#forget(r.runId);
          throw e;
        }
        const conflicted = e.details['runId'];
        for (const r of requests) if (conflicted === undefined || conflicted === r.runId) stale.add(r.runId);
      }
    }
  }

  /** One record or apply at a time: they change cached states in place and must not interleave. */
  #serially<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Keeps a state, newest last; the oldest go when the cache holds more than `cacheNodes` nodes. */
  #remember(state: RunState): void {
    this.#forget(state.runId);
    if (isOver(state)) return;
    this.#cache.set(state.runId, state);
    this.#cachedNodes += weight(state);
    while (this.#cachedNodes > this.#cacheNodes && this.#cache.size > 1) this.#forget(this.#cache.keys().next().value!);
  }

  #forget(runId: string): void {
    const state = this.#cache.get(runId);
    if (!state) return;
    this.#cache.delete(runId);
    this.#cachedNodes -= weight(state);
  }
}

/** Decides each item in turn, applying the events in place (undoably); returns them all. */
function decideAll(undo: Undo, items: readonly Completion[]): WorkflowEvent[] {
  const events: WorkflowEvent[] = [];
  for (const c of items) {
    for (const e of decide(undo.state, c)) {
      applyUndoable(undo, e);
      events.push(e);
    }
  }
  return events;
}

function weight(state: RunState): number {
  return Math.max(1, state.nodes.size);
}

function isOver(state: RunState): boolean {
  return state.status === 'succeeded' || state.status === 'failed';
}

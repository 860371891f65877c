import type { Dag } from '../canvas/dag.ts';
import { decide, type Command } from '../engine/decide.ts';
import type { StoredEvent, WorkflowEvent } from '../engine/events.ts';
import { applyInPlace, applyStored, initialState, type RunState } from '../engine/state.ts';
import { applyUndoable, beginUndo, rollback, type Undo } from '../engine/undo.ts';
import { LovageError } from '../errors.ts';
import type { AppendRequest, ClaimedNode, ClaimRequest, EventStore } from '../eventstore/store.ts';
import { ChurnMap } from './churn-map.ts';

/** A node outcome to record. */
export type Completion = Extract<Command, { type: 'Complete' | 'Release' | 'Defer' }> & { readonly runId: string };

const MAX_CONFLICT_RETRIES = 100;

/**
 * Runs the pure coordinator against a store: folds each run's log (kept in a bounded cache and
 * caught up from the store when another process appended), calls `decide`, and appends the outcome
 * together with its decisions in one atomic append guarded by the run's expected version.
 */
export class Coordinator {
  readonly #store: EventStore;
  readonly #cache = new ChurnMap<string, RunState>();
  readonly #cacheNodes: number;
  readonly #cacheSubmits: () => boolean;
  #cachedNodes = 0;
  readonly #finished = new Set<(runId: string) => void>();
  #queue: Promise<unknown> = Promise.resolve();
  /** Serial steps (records, applies) queued or running: no record flies meanwhile. */
  #blocked = 0;
  /** Records on their way on their own (see `record`). */
  #flying = 0;
  /** Runs of the records flying on their own. */
  readonly #busy = new Set<string>();
  /** Serial steps waiting for the flying records to land. */
  #landing: (() => void)[] = [];

  /**
   * `cacheNodes`: how many DAG nodes the run-state cache may hold, over all runs (default 1,000,000).
   * `cacheSubmits`: whether a run submitted here is cached (default: always). An app asks for it only
   * while it runs a worker: a process that only submits (a web server) never sees its runs finish,
   * so it would keep each one (~2 KB a node) until the cache is full.
   */
  constructor(store: EventStore, options: { cacheNodes?: number; cacheSubmits?: () => boolean } = {}) {
    this.#store = store;
    this.#cacheNodes = options.cacheNodes ?? 1_000_000;
    this.#cacheSubmits = options.cacheSubmits ?? (() => true);
  }

  /** How many runs the cache holds now. */
  get cachedRuns(): number {
    return this.#cache.size;
  }

  /** Appends a new run: WorkflowSubmitted and its first NodeReady events (in the caller's transaction, if given). */
  async submit(runId: string, dag: Dag, at: number, transaction?: unknown): Promise<void> {
    const state = initialState(runId);
    const events = decide(state, { type: 'Submit', at, dag });
    await this.#store.append([{ runId, expectedVersion: 0, events }], transaction === undefined ? {} : { transaction });
    // Inside a caller's transaction the run may yet roll back: nothing is cached for it.
    if (transaction !== undefined || !this.#cacheSubmits()) return;
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

  /**
   * Folds the events of this process's claims into the cache. A run whose claim brought its log
   * (`history`) and that is not cached, or cached at another version (stale), is cached from it: its
   * outcomes are then decided without reading the run.
   */
  observe(claimed: readonly ClaimedNode[]): void {
    for (const node of claimed) {
      if (node.history && this.#cache.get(node.runId)?.version !== node.history.length) this.#seed(node.runId, node.history);
      for (const s of node.events) this.#observeOne(s);
    }
  }

  #seed(runId: string, history: readonly StoredEvent[]): void {
    const state = initialState(runId);
    try {
      applyStored(state, history);
    } catch {
      return; // a log that does not fold: left to load(), which quarantines the run
    }
    if (state.version > 0) this.#remember(state);
  }

  #observeOne(s: StoredEvent): void {
    const state = this.#cache.get(s.runId);
    if (!state) return;
    if (state.version + 1 !== s.version) {
      this.#forget(s.runId);
      return;
    }
    applyInPlace(state, s.event);
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
  async record(completions: readonly Completion[], claim?: ClaimRequest): Promise<Recorded> {
    const byRun = new Map<string, Completion[]>();
    for (const c of completions) {
      const list = byRun.get(c.runId);
      if (list) list.push(c);
      else byRun.set(c.runId, [c]);
    }
    if (this.#store.pipelined === true && this.#blocked === 0) {
      const flight = this.#decideFlight(byRun);
      if (flight) return this.#fly(byRun, claim, flight);
    }
    return this.#serially(() => this.#record(byRun, claim));
  }

  /**
   * On a store that takes calls while others are on their way (`pipelined`), a record may go out at once,
   * beside the records on their way, when nothing depends on their outcome or claims: every run of it is
   * cached, in no record on its way, and has no active node but the ones reported here (so no claim can
   * append to it meanwhile; a stale cache is caught by the expected versions). Decides it now
   * (synchronously: nothing interleaves), or returns undefined: the record then waits for its turn.
   */
  #decideFlight(byRun: ReadonlyMap<string, readonly Completion[]>): Decided | undefined {
    for (const [runId, items] of byRun) if (!this.#flyable(runId, items.length)) return undefined;
    const decided: Decided = { requests: [], undos: [], finished: [] };
    for (const [runId, items] of byRun) {
      const state = this.#cache.get(runId)!;
      const undo = beginUndo(state);
      let events: WorkflowEvent[] = [];
      try {
        events = decideAll(undo, items);
      } catch {
        events = [];
      }
      decided.undos.push(undo);
      // Deciding nothing proves nothing about a cached state (it may be stale): the record's turn checks with the log.
      if (events.length === 0) {
        for (const u of decided.undos.reverse()) rollback(u);
        return undefined;
      }
      decided.requests.push({ runId, expectedVersion: state.version - events.length, events });
      if (endsRunEvent(events)) decided.finished.push(runId);
    }
    return decided;
  }

  /** Whether a record of `reported` outcomes of this run may fly (see `#decideFlight`). */
  #flyable(runId: string, reported: number): boolean {
    const state = this.#cache.get(runId);
    return state !== undefined && !this.#busy.has(runId) && state.active <= reported;
  }

  /**
   * Whether a record of these outcomes would go out at once, beside other store calls (see `record`):
   * then no claim can start a node it is about to change, so a claim may be sent before it.
   */
  independent(completions: readonly Completion[]): boolean {
    if (this.#store.pipelined !== true || this.#blocked > 0) return false;
    const reported = new Map<string, number>();
    for (const c of completions) reported.set(c.runId, (reported.get(c.runId) ?? 0) + 1);
    for (const [runId, n] of reported) if (!this.#flyable(runId, n)) return false;
    return true;
  }

  /** Sends a record decided by `#decideFlight`; on a conflict it takes its changes back and waits for its turn. */
  async #fly(byRun: ReadonlyMap<string, readonly Completion[]>, claim: ClaimRequest | undefined, { requests, undos, finished }: Decided): Promise<Recorded> {
    for (const runId of byRun.keys()) this.#busy.add(runId);
    this.#flying++;
    let conflicted: unknown;
    try {
      const claimed = await this.#send(requests, claim, finished);
      return { quarantined: [], claimed, alone: true };
    } catch (e) {
      for (const undo of undos) rollback(undo);
      if (!(e instanceof LovageError && e.code === 'CONCURRENCY')) {
        for (const r of requests) this.#forget(r.runId);
        throw e;
      }
      conflicted = e.details['runId'];
    } finally {
      for (const runId of byRun.keys()) this.#busy.delete(runId);
      if (--this.#flying === 0) for (const landed of this.#landing.splice(0)) landed();
    }
    const stale = new Set(typeof conflicted === 'string' ? [conflicted] : byRun.keys());
    return this.#serially(() => this.#record(byRun, claim, stale));
  }

  /** Appends (and claims, when asked); then ends the finished runs and folds the claims into the cache. */
  async #send(requests: readonly AppendRequest[], claim: ClaimRequest | undefined, finished: readonly string[]): Promise<ClaimedNode[]> {
    let claimed: ClaimedNode[] = [];
    if (claim) claimed = await this.#store.appendAndClaim(requests, claim);
    else if (requests.length > 0) await this.#store.append(requests);
    for (const runId of finished) {
      this.#forget(runId);
      for (const l of this.#finished) l(runId);
    }
    this.observe(claimed);
    return claimed;
  }

  async #record(byRun: ReadonlyMap<string, readonly Completion[]>, claim: ClaimRequest | undefined, stale = new Set<string>()): Promise<Recorded> {
    const quarantined = new Map<string, LovageError>();
    for (let attempt = 0; ; attempt++) {
      const requests: AppendRequest[] = [];
      const undos: Undo[] = [];
      const finished: string[] = [];
      // Each run's state: cached, or read (not cached, or stale: a stale one is caught up from its cached
      // version, only the new events are read), all reads at once rather than one round trip after
      // another. Taken now: a state the reads push out of the cache is still decided on.
      const states = new Map<string, RunState | Promise<RunState>>();
      for (const runId of byRun.keys()) {
        if (quarantined.has(runId)) continue;
        const cached = stale.has(runId) ? undefined : this.#cache.get(runId);
        if (cached) {
          states.set(runId, cached);
          continue;
        }
        const load = this.load(runId);
        load.catch(() => undefined); // awaited below, in order; a failure is handled there
        states.set(runId, load);
      }
      for (const [runId, items] of byRun) {
        if (quarantined.has(runId)) continue;
        try {
          const got = states.get(runId)!;
          let state = got instanceof Promise ? await got : got;
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
          if (endsRunEvent(events)) finished.push(runId);
        } catch (e) {
          if (!(e instanceof LovageError && e.code === 'CORRUPT_LOG')) throw e;
          this.#forget(runId);
          const error = new LovageError('CORRUPT_LOG', `run ${runId} is quarantined: ${e.message}`, e.details as Record<string, unknown>);
          quarantined.set(runId, error);
          await this.#store.quarantine(runId, e.message);
        }
      }
      stale.clear();
      // No record flies while this one is on its way: it might overtake it (the store need not keep
      // their order) and start a node of these runs first.
      try {
        const claimed = await this.#send(requests, claim, finished);
        return { quarantined: [...quarantined].map(([runId, error]) => ({ runId, error })), claimed, alone: false };
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

  /**
   * One record or apply at a time: they change cached states in place and must not interleave. Each
   * waits for the records flying on their own to land first; from the moment one is queued until it is
   * done, no record flies.
   */
  #serially<T>(fn: () => Promise<T>): Promise<T> {
    this.#blocked++;
    const turn = async () => {
      try {
        await this.#landed();
        return await fn();
      } finally {
        this.#blocked--;
      }
    };
    const next = this.#queue.then(turn, turn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Resolves once no record flies on its own. */
  #landed(): Promise<void> {
    return this.#flying === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.#landing.push(resolve));
  }

  /** Keeps a state, newest last; the oldest go when the cache holds more than `cacheNodes` nodes. */
  #remember(state: RunState): void {
    this.#forget(state.runId);
    if (isOver(state)) return;
    this.#cache.set(state.runId, state);
    this.#cachedNodes += weight(state);
    while (this.#cachedNodes > this.#cacheNodes && this.#cache.size > 1) this.#forget(this.#cache.firstKey()!);
  }

  #forget(runId: string): void {
    const state = this.#cache.get(runId);
    if (!state) return;
    this.#cache.delete(runId);
    this.#cachedNodes -= weight(state);
  }
}

/** What a record returns: the runs it quarantined, the nodes its claim took, and whether it went out beside other records (see `record`). */
type Recorded = { quarantined: { runId: string; error: LovageError }[]; claimed: ClaimedNode[]; alone: boolean };

/** A record decided to fly: its appends, how to take them back, and the runs it ends. */
interface Decided {
  readonly requests: AppendRequest[];
  readonly undos: Undo[];
  readonly finished: string[];
}

function endsRunEvent(events: readonly WorkflowEvent[]): boolean {
  return events.some((e) => e.type === 'WorkflowSucceeded' || e.type === 'WorkflowFailed');
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

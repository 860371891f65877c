import type { Dag } from '../canvas/dag.ts';
import { decide, type Command } from '../engine/decide.ts';
import type { StoredEvent, WorkflowEvent } from '../engine/events.ts';
import { applyInPlace, applyStored, initialState, type RunState } from '../engine/state.ts';
import { applyUndoable, beginUndo, rollback, type Undo } from '../engine/undo.ts';
import { LovageError } from '../errors.ts';
import { endsRun, type AppendRequest, type ClaimedNode, type ClaimRequest, type EventStore } from '../eventstore/store.ts';
import { aheadOf, Chains, commutingLeases, type Chain } from './chain.ts';
import { RunCache } from './run-cache.ts';
import { Turns } from './turns.ts';

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
  readonly #cache: RunCache;
  readonly #cacheSubmits: () => boolean;
  readonly #finished = new Set<(runId: string) => void>();
  readonly #turns = new Turns();
  /** Runs of the records flying on their own. */
  readonly #busy = new Set<string>();
  /**
   * Runs of the serial step running now, from when it takes their states until its append has landed:
   * its states hold its own events; another call's claim of them must not change (or replace) them.
   */
  readonly #stepping = new Set<string>();
  /** Store calls with a claim: sent so far, and on their way now (see `#leave`). */
  #claimsSent = 0;
  #claimsOut = 0;
  /** Whether records may commute: the store takes commuting appends and calls on their way at once. */
  readonly #commutes: boolean;
  /** Runs whose records commute. */
  readonly #chains: Chains;

  /**
   * `cacheNodes`: how many DAG nodes the run-state cache may hold, over all runs (default 1,000,000).
   * `cacheSubmits`: whether a run submitted here is cached (default: always). An app asks for it only
   * while it runs a worker: a process that only submits (a web server) never sees its runs finish,
   * so it would keep each one (~2 KB a node) until the cache is full.
   * `maxChains`: how many runs' records may commute at once (default 10,000); past it the oldest chain
   * with no record on its way ends, and its run is read afresh when next recorded (a run another
   * process finished would otherwise keep its chain here for good).
   */
  constructor(store: EventStore, options: { cacheNodes?: number; cacheSubmits?: () => boolean; maxChains?: number } = {}) {
    this.#store = store;
    this.#chains = new Chains(options.maxChains ?? 10_000);
    this.#cache = new RunCache(options.cacheNodes ?? 1_000_000);
    this.#cacheSubmits = options.cacheSubmits ?? (() => true);
    this.#commutes = store.commutes === true && store.pipelined === true;
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
    // Inside a caller's transaction the run may yet roll back: nothing is cached for it, and a run that
    // ends at its submit (an empty group) is not said to have finished (this process never learns
    // whether the transaction commits).
    if (transaction !== undefined) return;
    // A run with nothing to run ends at its submit: this process recorded its end.
    if (endsRunEvent(events)) for (const l of this.#finished) l(runId);
    if (!this.#cacheSubmits()) return;
    for (const e of events) applyInPlace(state, e);
    this.#cache.remember(state);
  }

  /**
   * Decides one command on a run caught up with the log and appends what it causes (retrying on a
   * concurrent append). Throws what `decide` throws for a command the run's state refuses.
   */
  apply(runId: string, command: Extract<Command, { type: 'Cancel' | 'Resume' }>): Promise<StoredEvent[]> {
    return this.#turns.serially([runId], () => this.#apply(runId, command));
  }

  async #apply(runId: string, command: Extract<Command, { type: 'Cancel' | 'Resume' }>): Promise<StoredEvent[]> {
    await this.#leave(runId);
    for (let attempt = 0; ; attempt++) {
      this.#cache.forget(runId);
      const state = await this.load(runId);
      if (state.version === 0) throw new LovageError('NOT_FOUND', `run ${runId} does not exist in this store`, { runId });
      const events = decide(state, command);
      try {
        const [stored] = await this.#store.append([{ runId, expectedVersion: state.version, events }]);
        this.#cache.forget(runId);
        // A cancel ends the run (so may a cancel of its last running subtrees): this process recorded it.
        if (endsRunEvent(events)) for (const l of this.#finished) l(runId);
        return stored ?? [];
      } catch (e) {
        if (!(e instanceof LovageError && e.code === 'CONCURRENCY') || attempt >= MAX_CONFLICT_RETRIES) throw e;
      }
    }
  }

  /**
   * Folds the events of this process's claims into the cache. A run whose claim brought its log
   * (`history`) and that is not cached, or cached at another version (stale), is cached from it: its
   * outcomes are then decided without reading the run. A run of the serial step running now is
   * forgotten instead, unless the claim was that step's own (`own`): the step's state holds events not
   * yet in the log, which the claim's may come before or after.
   */
  observe(claimed: readonly ClaimedNode[], own = false): void {
    for (const node of claimed) {
      if (!own && this.#stepping.has(node.runId)) {
        this.#cache.forget(node.runId);
        continue;
      }
      if (node.history && !this.#chains.has(node.runId) && this.#cache.get(node.runId)?.version !== node.history.length) this.#seed(node.runId, node.history);
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
    if (state.version > 0) this.#cache.remember(state);
  }

  #observeOne(s: StoredEvent): void {
    const state = this.#cache.get(s.runId);
    if (!state) return;
    const chain = this.#chains.get(s.runId);
    if (chain) {
      // Claims' events come back in any order beside the chain's records: they commute with them. One the
      // state already holds (it was read with the log) is skipped; one that does not apply breaks the chain.
      if (s.version <= chain.base) return;
      try {
        applyInPlace(state, s.event);
      } catch {
        this.#break(s.runId, chain);
      }
      return;
    }
    if (state.version + 1 !== s.version) {
      this.#cache.forget(s.runId);
      return;
    }
    applyInPlace(state, s.event);
  }

  /** A run's cached state, if it has one (tests and inspection: the caller must not change it). */
  cached(runId: string): RunState | undefined {
    return this.#cache.get(runId);
  }

  /**
   * Calls `listener(runId)` when this process records the end of a run: the outcome that ends it, a
   * cancel, or a submit that ends it at once (a run with nothing to run), unless that submit went in a
   * caller's transaction.
   */
  onFinished(listener: (runId: string) => void): () => void {
    this.#finished.add(listener);
    return () => this.#finished.delete(listener);
  }

  /** The run's state, caught up with the store. The caller must not change it. */
  async load(runId: string): Promise<RunState> {
    // A chain's state may hold events the log does not (records on their way): it is read afresh. (The
    // coordinator's own steps end chains first, see `#leave`; this guards any other caller.)
    if (this.#chains.delete(runId)) this.#cache.forget(runId);
    let state = this.#cache.get(runId);
    if (!state) state = initialState(runId);
    this.#cache.forget(runId);
    applyStored(state, await this.#store.readStream(runId, state.version + 1));
    if (state.version > 0) this.#cache.remember(state);
    return state;
  }

  /**
   * Records outcomes (completions and releases), in one append for the whole batch. A completion
   * whose lease is stale is recorded as NodeCompletionFenced, never as a second outcome. A run whose
   * log does not fold (CORRUPT_LOG) is quarantined: its outcomes are not recorded and it is
   * returned with the error; the other runs of the batch go on.
   */
  async record(completions: readonly Completion[], claim?: ClaimRequest): Promise<Recorded> {
    const byRun = byRunOf(completions);
    if (this.#mayFly(byRun)) {
      const flight = this.#decideFlight(byRun);
      if (flight) return this.#fly(byRun, claim, flight);
    }
    return this.#turns.serially([...byRun.keys()], (release) => this.#record(byRun, claim, release));
  }

  /**
   * Whether a record of these runs may go out at once, if it decides so (`#decideFlight`): on a pipelined
   * store, when no serial step is queued, or, for a record of chains only, when none is queued for its runs.
   */
  #mayFly(byRun: ReadonlyMap<string, readonly Completion[]>): boolean {
    if (this.#store.pipelined !== true) return false;
    let chained = byRun.size > 0;
    for (const [runId, items] of byRun) {
      if (!this.#flyable(runId, items.length)) return false;
      if (!this.#chains.has(runId)) chained = false;
    }
    return chained ? [...byRun.keys()].every((runId) => !this.#turns.holds(runId)) : !this.#turns.blocked;
  }

  /**
   * On a store that takes calls while others are on their way (`pipelined`), a record may go out at once,
   * beside the records on their way, when nothing depends on their outcome or claims. For each run of it:
   * - the run is cached, in no record on its way, and has no active node but the ones reported here (so
   *   no claim can append to it meanwhile; a stale cache is caught by the expected versions); or
   * - its records commute (a chain: this process made the run's last append other than a claim's, on a
   *   store with `commutes`), and what is decided touches nothing a claim can have touched since: the
   *   reported nodes (whose leases the store checks), nodes that were pending, and the run's end once no
   *   node is ready or running. It names the chain's last record, wherever that is, and lands after
   *   whatever claims came in between (AppendRequest.after).
   * Decides it now (synchronously: nothing interleaves; the caller checked every run `#flyable`), or
   * returns undefined: the record then waits for its turn.
   */
  #decideFlight(byRun: ReadonlyMap<string, readonly Completion[]>): Decided | undefined {
    const decided: Decided = { requests: [], undos: [], chains: [], finished: [], landed: [] };
    for (const [runId, items] of byRun) {
      const state = this.#cache.get(runId)!;
      const chain = this.#chains.get(runId);
      const undo = beginUndo(state);
      let events: WorkflowEvent[] = [];
      try {
        events = decideAll(undo, items, decided.landed);
      } catch {
        events = [];
      }
      decided.undos.push(undo);
      const leases = chain && events.length > 0 ? commutingLeases(undo, items, events) : undefined;
      // Deciding nothing proves nothing about a cached state (it may be stale): the record's turn checks with the log.
      if (events.length === 0 || (chain && !leases)) {
        for (const u of decided.undos.reverse()) rollback(u);
        return undefined;
      }
      decided.requests.push(chain
        ? { runId, expectedVersion: chain.base, events, id: this.#chains.newId(), after: chain.last, leases: leases! }
        : { runId, expectedVersion: state.version - events.length, events });
      decided.chains.push(chain);
      if (endsRunEvent(events)) decided.finished.push(runId);
    }
    // The chains' next records name these.
    decided.requests.forEach((r, i) => { if (decided.chains[i]) decided.chains[i].last = r.id!; });
    return decided;
  }

  /** Whether a record of `reported` outcomes of this run may fly (see `#decideFlight`). */
  #flyable(runId: string, reported: number): boolean {
    const state = this.#cache.get(runId);
    if (state === undefined) return false;
    const chain = this.#chains.get(runId);
    if (chain) return !chain.broken;
    return !this.#busy.has(runId) && state.active <= reported;
  }

  /**
   * Whether a record of these outcomes would go out at once, beside other store calls (see `record`):
   * then no claim can start a node it is about to change, so a claim may be sent before it.
   */
  independent(completions: readonly Completion[]): boolean {
    return this.#mayFly(byRunOf(completions));
  }

  /**
   * Sends a record decided by `#decideFlight`. A commuting record that reached the store before the record
   * it follows (they went by different connections) goes again once that one has landed. On a conflict
   * the other runs' changes are taken back; a chain's cannot be (claims' events may have been applied
   * since): the chain breaks and its run is read afresh. Then the record waits for its turn.
   */
  async #fly(byRun: ReadonlyMap<string, readonly Completion[]>, claim: ClaimRequest | undefined, { requests, undos, chains, finished, landed: recorded }: Decided): Promise<Recorded> {
    requests.forEach((r, i) => { if (!chains[i]) this.#busy.add(r.runId); });
    // Serial steps wait for it to land, unless it is a record of chains only: a step on one of those runs
    // waits for the chain's records (`#leave`), and steps on other runs need not.
    const counted = requests.length === 0 || chains.some((c) => c === undefined);
    if (counted) this.#turns.takeOff();
    let settle!: (landed: boolean) => void;
    const landed = new Promise<boolean>((resolve) => { settle = resolve; });
    requests.forEach((r, i) => chains[i]?.flying.set(r.id!, landed));
    let ok = false;
    let conflicted: unknown;
    try {
      for (let again = false; ; again = true) {
        try {
          const claimed = await this.#send(requests, claim, finished);
          ok = true;
          requests.forEach((r, i) => { if (chains[i]) chains[i].landed = r.id!; });
          return { quarantined: [], claimed, alone: true, landed: recorded };
        } catch (e) {
          // Refused as the record it follows had not landed: it goes again once that one has (only once).
          const ahead = again ? undefined : aheadOf(e, requests, chains, this.#chains.idPrefix);
          if (!ahead || !(await ahead)) throw e;
        }
      }
    } catch (e) {
      // Refused after an append that is not this process's: another process appends to the run too.
      const last = e instanceof LovageError && e.details['reason'] === 'after' ? String(e.details['last']) : '';
      const foreign = last !== '' && !last.startsWith(this.#chains.idPrefix) ? e instanceof LovageError && e.details['runId'] : undefined;
      requests.forEach((r, i) => {
        const chain = chains[i];
        if (chain) {
          if (r.runId === foreign) chain.foreign = true;
          this.#break(r.runId, chain);
        } else rollback(undos[i]!);
      });
      if (!(e instanceof LovageError && e.code === 'CONCURRENCY')) {
        for (const r of requests) this.#cache.forget(r.runId);
        throw e;
      }
      conflicted = e.details['runId'];
    } finally {
      settle(ok);
      requests.forEach((r, i) => {
        chains[i]?.flying.delete(r.id!);
        if (!chains[i]) this.#busy.delete(r.runId);
      });
      if (counted) this.#turns.land();
    }
    const stale = new Set(typeof conflicted === 'string' ? [conflicted] : byRun.keys());
    return this.#turns.serially([...byRun.keys()], (release) => this.#record(byRun, claim, release, stale));
  }

  /**
   * Appends (and claims, when asked); then ends the finished runs and folds the claims into the cache
   * (`own`: the serial step's call, see `observe`).
   */
  async #send(requests: readonly AppendRequest[], claim: ClaimRequest | undefined, finished: readonly string[], own = false): Promise<ClaimedNode[]> {
    let claimed: ClaimedNode[] = [];
    if (claim) {
      this.#claimsSent++;
      this.#claimsOut++;
      try {
        claimed = await this.#store.appendAndClaim(requests, claim);
      } finally {
        this.#claimsOut--;
      }
    } else if (requests.length > 0) await this.#store.append(requests);
    for (const runId of finished) {
      this.#cache.forget(runId);
      this.#chains.delete(runId);
      for (const l of this.#finished) l(runId);
    }
    this.observe(claimed, own);
    return claimed;
  }

  async #record(byRun: ReadonlyMap<string, readonly Completion[]>, claim: ClaimRequest | undefined, release: () => void, stale = new Set<string>()): Promise<Recorded> {
    // A record of chains only that commutes goes on its way as they do, and its turn is over: the records
    // queued behind it on the same runs may follow it at once.
    if (stale.size === 0 && byRun.size > 0 && [...byRun].every(([runId, items]) => this.#chains.has(runId) && this.#flyable(runId, items.length))) {
      const flight = this.#decideFlight(byRun);
      if (flight) {
        release();
        return this.#fly(byRun, claim, flight);
      }
    }
    // Chains end here: their states are kept if they prove to be the log's, else read afresh.
    const chained = [...byRun.keys()].filter((runId) => this.#chains.has(runId));
    if (chained.length > 0) {
      // All settled before the step goes on (or fails): none forgets a state after the step's turn.
      for (const left of await Promise.allSettled(chained.map((runId) => this.#leave(runId)))) if (left.status === 'rejected') throw left.reason;
    }
    const quarantined = new Map<string, LovageError>();
    for (const runId of byRun.keys()) this.#stepping.add(runId);
    try {
      return await this.#recordSteps(byRun, claim, stale, quarantined);
    } finally {
      for (const runId of byRun.keys()) this.#stepping.delete(runId);
    }
  }

  /** `#record`'s attempts, while its runs are `#stepping`. */
  async #recordSteps(byRun: ReadonlyMap<string, readonly Completion[]>, claim: ClaimRequest | undefined, stale: Set<string>, quarantined: Map<string, LovageError>): Promise<Recorded> {
    for (let attempt = 0; ; attempt++) {
      const requests: AppendRequest[] = [];
      // The state each run's events were decided on.
      const decided = new Map<string, RunState>();
      const undos: Undo[] = [];
      const finished: string[] = [];
      // The completions whose own outcome this attempt's append records (not fenced, not dropped).
      const landed: Completion[] = [];
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
          // The run is gone (pruned or deleted while its node ran): its outcome has no log to go to.
          // Nothing else makes a run read empty here: its nodes are claimed only once it exists.
          if (state.version === 0) continue;
          let undo = beginUndo(state);
          const mine: Completion[] = [];
          let events = decideAll(undo, items, mine);
          // Deciding nothing proves nothing about a cached state: it may be stale. Check with the log.
          if (events.length === 0 && !stale.has(runId)) {
            state = await this.load(runId);
            if (state.version === 0) continue;
            undo = beginUndo(state);
            mine.length = 0;
            events = decideAll(undo, items, mine);
          }
          landed.push(...mine);
          decided.set(runId, state);
          if (events.length > 0) {
            // A run with nodes still ready or running may take commuting records next: this append is named.
            const id = this.#commutes && state.active > 0 && this.#chains.mayBegin(runId) ? this.#chains.newId() : undefined;
            requests.push({ runId, expectedVersion: state.version - events.length, events, ...(id !== undefined ? { id } : {}) });
            undos.push(undo);
          }
          if (endsRunEvent(events)) finished.push(runId);
        } catch (e) {
          if (!(e instanceof LovageError && e.code === 'CORRUPT_LOG')) throw e;
          this.#cache.forget(runId);
          const error = new LovageError('CORRUPT_LOG', `run ${runId} is quarantined: ${e.message}`, e.details as Record<string, unknown>);
          quarantined.set(runId, error);
          await this.#store.quarantine(runId, e.message);
        }
      }
      stale.clear();
      // No record flies while this one is on its way: it might overtake it (the store need not keep
      // their order) and start a node of these runs first.
      try {
        const claimed = await this.#send(requests, claim, finished, true);
        // The named appends begin chains, on the states decided on, now the log's (this step's own claim's
        // events were checked on them); a state another call's claim made this step forget begins none.
        for (const r of requests) {
          const state = this.#cache.get(r.runId);
          if (r.id !== undefined && state && state === decided.get(r.runId)) {
            const ended = this.#chains.begin(r.runId, r.id, state.version);
            if (ended !== undefined) this.#cache.forget(ended);
          }
        }
        return { quarantined: [...quarantined].map(([runId, error]) => ({ runId, error })), claimed, alone: false, landed };
      } catch (e) {
        // The cached states were changed optimistically: take the changes back, catch up, decide again.
        for (const undo of undos) rollback(undo);
        if (!(e instanceof LovageError && e.code === 'CONCURRENCY') || attempt >= MAX_CONFLICT_RETRIES) {
          for (const r of requests) this.#cache.forget(r.runId);
          throw e;
        }
        const conflicted = e.details['runId'];
        for (const r of requests) if (conflicted === undefined || conflicted === r.runId) stale.add(r.runId);
      }
    }
  }

  /**
   * Ends a run's chain (in a serial step: none of its records is on its way). Its state holds the log's
   * events in another order; it is kept when its version is the log's (no other process appended, none
   * of its records was refused or lost), else forgotten. When another process appends to the run too
   * (its claims made the versions differ, or its append refused a record) the run does not commute here
   * again: each chain would end in a read of its whole log.
   */
  async #leave(runId: string): Promise<void> {
    const chain = this.#chains.get(runId);
    if (!chain) return;
    while (chain.flying.size > 0) await Promise.all(chain.flying.values());
    // Other chains' records on their way may bring claims of this run: their events, once back, are
    // in the state (else its count would fall short of the log's for no other process's doing).
    await Promise.all(this.#chains.flights());
    this.#chains.delete(runId);
    const state = this.#cache.get(runId);
    this.#cache.forget(runId);
    if (chain.broken) {
      if (chain.foreign) this.#chains.share(runId);
      return;
    }
    if (!state) return;
    // A claim of this process on its way now, or sent from now on, may append to the run too: a count
    // that differs then proves no other process's append.
    const sent = this.#claimsSent;
    const out = this.#claimsOut;
    if ((await this.#store.getRun(runId))?.version !== state.version) {
      if (out === 0 && this.#claimsSent === sent) this.#chains.share(runId);
      return;
    }
    this.#cache.remember(state);
  }

  /** A chain's record was refused, or a claim's event did not apply: its cached state is not the log's. */
  #break(runId: string, chain: Chain): void {
    chain.broken = true;
    if (this.#chains.get(runId) === chain) this.#cache.forget(runId);
  }
}

/**
 * What a record returns: the runs it quarantined, the nodes its claim took, whether it went out beside
 * other records (see `record`), and the completions (`Complete` ones) whose own outcome it recorded:
 * the others were fenced (NodeCompletionFenced: the lease was stale, the run cancelled...) or dropped
 * (the run is gone or quarantined). Hooks tell of these only.
 */
type Recorded = { quarantined: { runId: string; error: LovageError }[]; claimed: ClaimedNode[]; alone: boolean; landed: readonly Completion[] };

/** A record decided to fly: its appends, how to take them back, the chain of each (commuting ones), the runs it ends, the completions it records (see Recorded). */
interface Decided {
  readonly requests: AppendRequest[];
  readonly undos: Undo[];
  readonly chains: (Chain | undefined)[];
  readonly finished: string[];
  readonly landed: Completion[];
}

function byRunOf(completions: readonly Completion[]): Map<string, Completion[]> {
  const byRun = new Map<string, Completion[]>();
  for (const c of completions) {
    const list = byRun.get(c.runId);
    if (list) list.push(c);
    else byRun.set(c.runId, [c]);
  }
  return byRun;
}

/** Whether the events end the run: succeeded, failed, or cancelled (a completion ends a run part of which was cancelled so). */
function endsRunEvent(events: readonly WorkflowEvent[]): boolean {
  return events.some(endsRun);
}

/**
 * Decides each item in turn, applying the events in place (undoably); returns them all. Pushes onto
 * `landed` each `Complete` whose own outcome the events record (neither fenced nor decided to nothing).
 */
function decideAll(undo: Undo, items: readonly Completion[], landed: Completion[]): WorkflowEvent[] {
  const events: WorkflowEvent[] = [];
  for (const c of items) {
    try {
      const decided = decide(undo.state, c);
      for (const e of decided) {
        applyUndoable(undo, e);
        events.push(e);
      }
      if (c.type === 'Complete' && decided.length > 0 && decided[0]!.type !== 'NodeCompletionFenced') landed.push(c);
    } catch (e) {
      if (e instanceof LovageError) throw e;
      // The rules throw nothing else on a log they wrote: this one holds what they cannot read (a DAG
      // appended behind their back). Quarantined, not retried for good with the batch's other runs.
      const runId = undo.state.runId;
      throw new LovageError('CORRUPT_LOG', `run ${runId}: deciding ${c.type} of node ${c.nodeId} failed (${e instanceof Error ? e.message : String(e)}); the log does not fold`, { runId });
    }
  }
  return events;
}



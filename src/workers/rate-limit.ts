import { NOT_LIMITED, type RateLimit } from '../eventstore/rate/window.ts';
import type { EventStore } from '../eventstore/store.ts';

/** Options of {@link RateLimiter}. */
export interface RateLimiterOptions {
  /**
   * How long an answer is trusted without asking the store again, ms (default 1000): "this task has no
   * limit and no override" for a task without a limit in code, and "refused, wait W" for any task (at
   * most this long, never past W). So a run-time override (`store.setRateLimit`) reaches every worker
   * within this time, while a task without a limit costs at most one store call this often.
   */
  readonly recheckMs?: number;
  /** The local clock for those intervals (default `Date.now`; tests inject theirs). */
  readonly clock?: () => number;
}

/**
 * The time between two turns beyond the period: a turn's permits are taken over the few ms its nodes need
 * to be claimed and asked for, so the next turn comes back once they have all left the window (a twentieth
 * of the period, at least 20 ms: turns run that much slower than the limit itself would allow).
 */
function turnMarginMs(limit: RateLimit): number {
  return Math.max(20, Math.ceil(limit.periodMs / 20));
}

/**
 * A worker's door to the store's global rate limits (EventStore.takeToken), one per worker process.
 * `wait(task, limit)` resolves to 0 (go: a permit was taken, or nothing limits the task) or to the ms
 * after which this node should ask again (nothing taken: the worker defers the node that long).
 *
 * A task with a limit in code takes a permit from the store on every call (the store applies the
 * run-time override instead when one is set). A task without one asks the store at most once per
 * `recheckMs` whether an override applies (`takeToken(task, null)`): while none does, calls cost
 * nothing; once one does, every call takes a permit under it, until it is cleared. A refusal is
 * remembered for up to `recheckMs` (never past its wait): a crowd of waiting nodes does not poll the
 * store.
 *
 * Refused nodes take turns: the first `count` of the limit in force (the task's run-time override, read
 * with EventStore.getRateLimit, else its limit in code) are told to come back when the next permit may
 * be free, the next `count` a period (and a twentieth) later, and so on. So a backlog is handed back
 * about once a node, not once a period a node (which made a group of 500 under '50/s' write 2,250
 * NodeDeferred). Each worker plans its own turns: with several workers, the nodes that come back to find
 * the permits taken by another worker's turn are planned again, after the turns already given.
 *
 * @example
 * const limiter = new RateLimiter(store)
 * const wait = await limiter.wait('send-email', parseRateLimit('10/s'))
 * if (wait > 0) deferFor(wait); else run()
 */
export class RateLimiter {
  readonly #store: EventStore;
  readonly #recheckMs: number;
  readonly #clock: () => number;
  /** Tasks without a limit in code, found with no override: trusted until then (local clock). */
  readonly #freeUntil = new Map<string, number>();
  /** Tasks refused: no permit before `until`; the store is asked again from `recheck` on. */
  readonly #refused = new Map<string, { until: number; recheck: number }>();
  /** Tasks without a limit in code found under a run-time override: every call asks the store. */
  readonly #overridden = new Set<string>();
  /** An override check in flight per task (callers meanwhile wait for it instead of asking too). */
  readonly #probes = new Map<string, Promise<number>>();
  /** The limit in force per task, read at a refusal (null: unknown) and trusted until `until` (local clock). */
  readonly #limits = new Map<string, { limit: RateLimit | null; until: number }>();
  /** A read of the limit in force in flight per task (getRateLimit). */
  readonly #reading = new Map<string, Promise<void>>();
  /** Per refused task, the latest turn handed out: `left` more nodes may come back at `at`. */
  readonly #turns = new Map<string, { at: number; left: number }>();

  constructor(store: EventStore, options: RateLimiterOptions = {}) {
    this.#store = store;
    this.#recheckMs = options.recheckMs ?? 1000;
    this.#clock = options.clock ?? Date.now;
  }

  /** 0: go (a permit was taken, or nothing limits `task`); else the ms until this node's turn to ask again. */
  async wait(task: string, limit: RateLimit | undefined): Promise<number> {
    const now = this.#clock();
    const refused = this.#refused.get(task);
    if (refused) {
      if (now < refused.recheck) return this.#turn(task, refused.until - now, now);
      this.#refused.delete(task);
    }
    if (limit !== undefined) return this.#answer(task, limit, await this.#store.takeToken(task, limit), now);
    // Under a run-time override every call takes its own permit (and learns when it is cleared).
    if (this.#overridden.has(task)) return this.#unlimited(task, await this.#store.takeToken(task, null), now);
    const free = this.#freeUntil.get(task);
    if (free !== undefined) {
      if (now < free) return 0;
      this.#freeUntil.delete(task);
    }
    const probe = this.#probes.get(task);
    if (probe) {
      await probe.catch(() => undefined);
      return this.wait(task, limit);
    }
    const asked = this.#store.takeToken(task, null);
    this.#probes.set(task, asked);
    try {
      return this.#unlimited(task, await asked, now);
    } finally {
      this.#probes.delete(task);
    }
  }

  /** Whether `task` may go without asking the store at all: no limit in code, and no override seen lately. Synchronous. */
  freeNow(task: string, limit: RateLimit | undefined): boolean {
    if (limit !== undefined || this.#overridden.has(task)) return false;
    const free = this.#freeUntil.get(task);
    return free !== undefined && this.#clock() < free;
  }

  /** Forgets every remembered answer and planned turn (e.g. right after setting an override in this process). */
  forget(): void {
    this.#freeUntil.clear();
    this.#refused.clear();
    this.#overridden.clear();
    this.#limits.clear();
    this.#turns.clear();
  }

  /** The store's answer for a task without a limit in code. */
  #unlimited(task: string, wait: number, now: number): number | Promise<number> {
    if (wait === NOT_LIMITED) {
      this.#overridden.delete(task);
      this.#freeUntil.set(task, now + this.#recheckMs);
      return 0;
    }
    this.#overridden.add(task);
    return this.#answer(task, undefined, wait, now);
  }

  /** The store's answer: 0 (granted), or a refusal, remembered, and this node's turn. */
  async #answer(task: string, limit: RateLimit | undefined, wait: number, now: number): Promise<number> {
    if (wait <= 0) return 0;
    this.#refused.set(task, { until: now + wait, recheck: now + Math.min(wait, this.#recheckMs) });
    await this.#learnLimit(task, limit, now);
    return this.#turn(task, wait, now);
  }

  /** Reads the limit in force for `task` (its override, else `limit`) unless known lately; concurrent refusals share one read. */
  async #learnLimit(task: string, limit: RateLimit | undefined, now: number): Promise<void> {
    const known = this.#limits.get(task);
    if (known && now < known.until) return;
    let read = this.#reading.get(task);
    if (!read) {
      read = this.#readLimit(task, limit, now).finally(() => this.#reading.delete(task));
      this.#reading.set(task, read);
    }
    await read;
  }

  /** One read of the limit in force; a store that cannot tell (or fails to) leaves it unknown. */
  async #readLimit(task: string, limit: RateLimit | undefined, now: number): Promise<void> {
    let inForce: RateLimit | null = null;
    if (this.#store.getRateLimit) {
      try {
        inForce = (await this.#store.getRateLimit(task)) ?? limit ?? null;
      } catch {
        // Unknown: refused nodes come back when the next permit may be free, as without turns.
      }
    }
    this.#limits.set(task, { limit: inForce, until: now + this.#recheckMs });
  }

  /**
   * How long this refused node waits: `wait` (the next permit may be free then) while the turn there has
   * room for it, else the first turn with room, a period (and a margin) later each (the limit in force:
   * `count` a turn).
   */
  #turn(task: string, wait: number, now: number): number {
    const limit = this.#limits.get(task)?.limit;
    if (!limit) return wait;
    let turn = this.#turns.get(task);
    if (!turn || turn.at < now + wait) {
      turn = { at: now + wait, left: limit.count };
      this.#turns.set(task, turn);
    } else if (turn.left === 0) {
      turn.at += limit.periodMs + turnMarginMs(limit);
      turn.left = limit.count;
    }
    turn.left--;
    return turn.at - now;
  }
}

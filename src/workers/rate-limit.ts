import { NOT_LIMITED, type RateLimit } from '../eventstore/rate/window.ts';
import type { EventStore } from '../eventstore/store.ts';

/** Options of {@link RateLimiter}. */
export interface RateLimiterOptions {
  /**
   * How long an answer is trusted without asking the store again, ms (default 1000): "this task has no
   * limit and no override" for a task without a limit in code, and, on a store that keeps no turns,
   * "refused, wait W" for any task (at most this long, never past W). So a run-time override
   * (`store.setRateLimit`) reaches every worker within this time, while a task without a limit costs at
   * most one store call this often.
   */
  readonly recheckMs?: number;
  /** The local clock for those intervals (default `Date.now`; tests inject theirs). */
  readonly clock?: () => number;
}

/**
 * A worker's door to the store's global rate limits, one per worker process. `wait(task, limit)`
 * resolves to 0 (go: a permit was taken, or nothing limits the task) or to the ms after which this node
 * should ask again (nothing taken: the worker defers the node that long).
 *
 * A task with a limit in code takes a permit from the store on every call (the store applies the
 * run-time override instead when one is set). A task without one asks the store at most once per
 * `recheckMs` whether an override applies: while none does, calls cost nothing; once one does, every
 * call takes a permit under it, until it is cleared.
 *
 * Refused nodes take turns, kept by the store for every worker (EventStore.takeTurn): `count` of the
 * limit in force come back at a time, a period (and a twentieth) apart, so a backlog is handed back about
 * once a node, however many workers share it. A store without takeTurn tells when the next permit may be
 * free: the refusal is remembered for up to `recheckMs` (never past its wait), so a crowd of waiting
 * nodes does not poll the store, and they all come back then.
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
  /** Tasks refused by a store without turns: no permit before `until`; the store is asked again from `recheck` on. */
  readonly #refused = new Map<string, { until: number; recheck: number }>();
  /** Tasks without a limit in code found under a run-time override: every call asks the store. */
  readonly #overridden = new Set<string>();
  /** An override check in flight per task (callers meanwhile wait for it instead of asking too). */
  readonly #probes = new Map<string, Promise<number>>();
  /** One permit, or a refusal: with a turn booked when the store keeps turns. */
  readonly #take: (task: string, limit: RateLimit | null) => Promise<number>;

  constructor(store: EventStore, options: RateLimiterOptions = {}) {
    this.#store = store;
    this.#recheckMs = options.recheckMs ?? 1000;
    this.#clock = options.clock ?? Date.now;
    this.#take = store.takeTurn ? (task, limit) => store.takeTurn!(task, limit) : (task, limit) => store.takeToken(task, limit);
  }

  /** 0: go (a permit was taken, or nothing limits `task`); else the ms until this node's turn to ask again. */
  async wait(task: string, limit: RateLimit | undefined): Promise<number> {
    const now = this.#clock();
    const refused = this.#refused.get(task);
    if (refused) {
      if (now < refused.recheck) return refused.until - now;
      this.#refused.delete(task);
    }
    if (limit !== undefined) return this.#answer(task, await this.#take(task, limit), now);
    // Under a run-time override every call takes its own permit (and learns when it is cleared).
    if (this.#overridden.has(task)) return this.#unlimited(task, await this.#take(task, null), now);
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
    const asked = this.#take(task, null);
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

  /** Forgets every remembered answer (e.g. right after setting an override in this process). */
  forget(): void {
    this.#freeUntil.clear();
    this.#refused.clear();
    this.#overridden.clear();
  }

  /** The store's answer for a task without a limit in code. */
  #unlimited(task: string, wait: number, now: number): number {
    if (wait === NOT_LIMITED) {
      this.#overridden.delete(task);
      this.#freeUntil.set(task, now + this.#recheckMs);
      return 0;
    }
    this.#overridden.add(task);
    return this.#answer(task, wait, now);
  }

  /** The store's answer: 0 (granted), or the wait of a refusal (remembered when the store keeps no turns). */
  #answer(task: string, wait: number, now: number): number {
    if (wait <= 0) return 0;
    if (!this.#store.takeTurn) this.#refused.set(task, { until: now + wait, recheck: now + Math.min(wait, this.#recheckMs) });
    return wait;
  }
}

// Commuting records (see Coordinator.record): the chain a run's records form once this process made
// its last append other than a claim's, and which records may commute with the claims on their way.
import type { WorkflowEvent } from '../engine/events.ts';
import type { Undo } from '../engine/undo.ts';
import { LovageError } from '../errors.ts';
import type { AppendRequest } from '../eventstore/store.ts';
import { newToken } from '../eventstore/token.ts';
import type { Completion } from './coordinator.ts';

/** How many runs a coordinator remembers as shared with another process (see `Chains.share`). */
const SHARED_MAX = 10_000;

/**
 * A run whose records commute (see Coordinator, `#decideFlight`): this process made its last append other than a
 * claim's, and decides its outcomes on a cached state that takes claims' events in whatever order they
 * come back.
 */
export interface Chain {
  /** The id of this process's last append to the run (on its way, or landed). */
  last: string;
  /** The run's version when the chain began: claim events up to it are in the state already. */
  readonly base: number;
  /** This chain's records on their way, by id: each resolves to whether it landed. */
  readonly flying: Map<string, Promise<boolean>>;
  /** The id of its last append that landed (they land in the chain's order). */
  landed: string;
  /** A record of it was refused or lost, or a claim's event did not apply: the cached state is not the log's. */
  broken: boolean;
  /** A record of it was refused because another process had appended to the run. */
  foreign: boolean;
}

/**
 * A coordinator's chains, at most `max` of them, the runs it knows another process appends to (their
 * records never commute here: each chain would end in a read of the run's whole log), and its append ids.
 */
export class Chains {
  readonly #chains = new Map<string, Chain>();
  readonly #shared = new Set<string>();
  readonly #max: number;
  /** This coordinator's append ids begin so. */
  readonly idPrefix = `c${newToken()}-`;
  #ids = 0;

  constructor(max: number) {
    this.#max = max;
  }

  get(runId: string): Chain | undefined {
    return this.#chains.get(runId);
  }

  has(runId: string): boolean {
    return this.#chains.has(runId);
  }

  delete(runId: string): boolean {
    return this.#chains.delete(runId);
  }

  /** Every chain's records on their way. */
  flights(): Promise<boolean>[] {
    return [...this.#chains.values()].flatMap((c) => [...c.flying.values()]);
  }

  /** A new append id. */
  newId(): string {
    return this.idPrefix + String(++this.#ids);
  }

  /** Whether the run may begin a chain here (no other process is known to append to it). */
  mayBegin(runId: string): boolean {
    return !this.#shared.has(runId);
  }

  /** Another process appends to this run too (the oldest such runs are forgotten past SHARED_MAX). */
  share(runId: string): void {
    this.#shared.delete(runId);
    this.#shared.add(runId);
    if (this.#shared.size > SHARED_MAX) this.#shared.delete(this.#shared.values().next().value!);
  }

  /**
   * Begins a run's chain, by the landed append `id` on a state at `base` that is the log's. Past `max`,
   * ends the oldest chain with no record on its way and returns its run: the caller forgets that run's
   * state (it holds the log's events in another order; only ending a chain in a serial step may prove
   * it the log's).
   */
  begin(runId: string, id: string, base: number): string | undefined {
    this.#chains.delete(runId);
    this.#chains.set(runId, { last: id, base, flying: new Map(), landed: id, broken: false, foreign: false });
    if (this.#chains.size <= this.#max) return undefined;
    for (const [oldest, chain] of this.#chains) {
      if (chain.flying.size > 0) continue;
      this.#chains.delete(oldest);
      return oldest;
    }
    return undefined;
  }
}

/**
 * The leases a commuting record of these outcomes must still hold, or undefined when its events may not
 * commute with claims: each event concerns a reported node (its outcome, fenced or not), or readies a
 * node that was pending, or skips pending nodes, or ends the run when no node is left ready or running.
 */
export function commutingLeases(undo: Undo, items: readonly Completion[], events: readonly WorkflowEvent[]): [string, string][] | undefined {
  const reported = new Map(items.map((c) => [c.nodeId, c.leaseToken]));
  const wasPending = (id: string) => (undo.nodes.get(id) ?? undo.state.nodes.get(id))?.status === 'pending';
  const leases = new Map<string, string>();
  for (const e of events) {
    switch (e.type) {
      case 'NodeSucceeded':
      case 'NodeFailed':
      case 'NodeRetryScheduled':
      case 'NodeDeferred':
      case 'NodeReleased': {
        const token = reported.get(e.nodeId);
        if (token === undefined) return undefined;
        leases.set(e.nodeId, token);
        break;
      }
      case 'NodeCompletionFenced':
        if (!reported.has(e.nodeId)) return undefined;
        break;
      case 'NodeReady':
        if (!wasPending(e.nodeId)) return undefined;
        break;
      case 'NodesSkipped':
        if (!e.nodeIds.every(wasPending)) return undefined;
        break;
      case 'WorkflowSucceeded':
      case 'WorkflowFailed':
        if (undo.state.active > 0) return undefined;
        break;
      default:
        return undefined;
    }
  }
  return [...leases];
}

/**
 * When a commuting record was refused because the record it follows had not landed yet (it went by the
 * other connection and came second: the run's last append is still one of this process's, `ours` is
 * its id prefix): whether that one has landed since, once it is known.
 */
export function aheadOf(e: unknown, requests: readonly AppendRequest[], chains: readonly (Chain | undefined)[], ours: string): Promise<boolean> | undefined {
  if (!(e instanceof LovageError && e.code === 'CONCURRENCY' && e.details['reason'] === 'after')) return undefined;
  if (!String(e.details['last']).startsWith(ours)) return undefined;
  const i = requests.findIndex((r) => r.runId === e.details['runId']);
  const after = requests[i]?.after;
  const chain = chains[i];
  if (after === undefined || !chain) return undefined;
  return chain.flying.get(after) ?? (chain.landed === after ? Promise.resolve(true) : undefined);
}

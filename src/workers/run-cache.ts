import type { RunState } from '../engine/state.ts';
import { ChurnMap } from './churn-map.ts';

/**
 * The coordinator's cache of run states, bounded by DAG nodes over all runs: newest last, the oldest
 * go when it holds more than `maxNodes` nodes; a finished run is never kept.
 */
export class RunCache {
  readonly #states = new ChurnMap<string, RunState>();
  readonly #maxNodes: number;
  #nodes = 0;

  constructor(maxNodes: number) {
    this.#maxNodes = maxNodes;
  }

  /** How many runs it holds. */
  get size(): number {
    return this.#states.size;
  }

  get(runId: string): RunState | undefined {
    return this.#states.get(runId);
  }

  /** Keeps a state (newest last), unless its run is over; the oldest go past `maxNodes` nodes. */
  remember(state: RunState): void {
    this.forget(state.runId);
    if (state.status === 'succeeded' || state.status === 'failed') return;
    this.#states.set(state.runId, state);
    this.#nodes += weight(state);
    while (this.#nodes > this.#maxNodes && this.#states.size > 1) this.forget(this.#states.firstKey()!);
  }

  forget(runId: string): void {
    const state = this.#states.get(runId);
    if (!state) return;
    this.#states.delete(runId);
    this.#nodes -= weight(state);
  }
}

function weight(state: RunState): number {
  return Math.max(1, state.nodes.size);
}

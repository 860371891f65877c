/**
 * The order of a coordinator's store calls. Serial steps (records and applies, which change cached
 * states in place over several awaits) take turns, one at a time, each once the calls flying on their
 * own have landed; from the moment one is queued until its turn is over, no call flies but a chain's
 * record of runs no step holds (see Coordinator.record). A step may end its turn early (`release`):
 * the next one starts then.
 */
export class Turns {
  /** Resolves when the last step queued has had its turn. */
  #queue: Promise<void> = Promise.resolve();
  /** Steps queued or running. */
  #steps = 0;
  /** The runs of those steps (how many steps each). */
  readonly #runs = new Map<string, number>();
  /** Calls flying on their own that steps wait for. */
  #flying = 0;
  /** Steps waiting for those to land. */
  #landing: (() => void)[] = [];

  /** Whether a step is queued or running. */
  get blocked(): boolean {
    return this.#steps > 0;
  }

  /** Whether a step of this run is queued or running. */
  holds(runId: string): boolean {
    return this.#runs.has(runId);
  }

  /** A call leaves that steps must wait for. */
  takeOff(): void {
    this.#flying++;
  }

  /** That call is back. */
  land(): void {
    if (--this.#flying === 0) for (const done of this.#landing.splice(0)) done();
  }

  /** Runs `fn` in its turn, a step of `runs`. */
  serially<T>(runs: readonly string[], fn: (release: () => void) => Promise<T>): Promise<T> {
    this.#steps++;
    for (const runId of runs) this.#runs.set(runId, (this.#runs.get(runId) ?? 0) + 1);
    let over!: () => void;
    const turnOver = new Promise<void>((resolve) => { over = resolve; });
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#steps--;
      for (const runId of runs) {
        const n = this.#runs.get(runId)! - 1;
        if (n === 0) this.#runs.delete(runId);
        else this.#runs.set(runId, n);
      }
      over();
    };
    const before = this.#queue;
    this.#queue = turnOver;
    return before.then(async () => {
      try {
        await this.#landed();
        return await fn(release);
      } finally {
        release();
      }
    });
  }

  /** Resolves once no call that steps wait for is on its way. */
  #landed(): Promise<void> {
    return this.#flying === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.#landing.push(resolve));
  }
}

/**
 * The worker loop's waits: for a poke (a store call coming back, a finished task, a store's wake-up),
 * for a poke or a timer, and the backoff after store errors, which `endBackOff` cuts short (the worker
 * stops). A poke that comes while the loop is busy makes its next wait return at once.
 *
 * @example
 * const alarm = new Alarm()
 * setTimeout(() => alarm.poke(), 5)
 * await alarm.idle(1000) // returns after ~5 ms
 */
export class Alarm {
  #wake: (() => void) | undefined;
  /** A poke that came while nothing waited: the next wait returns at once. */
  #woken = false;
  #endBackOff: (() => void) | undefined;

  /** Ends the wait in progress now, or the next one as soon as it begins. */
  poke(): void {
    if (this.#wake) this.#wake();
    else this.#woken = true;
  }

  /** Waits for a poke (no timer: a store call on its way always pokes when it comes back). */
  nudged(): Promise<void> {
    return this.idle(undefined);
  }

  /** Waits for a poke or `ms` (none: no timer). */
  idle(ms: number | undefined): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => done(), Math.max(0, ms));
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        this.#woken = false;
        resolve();
      };
      this.#wake = done;
    });
  }

  /** Waits `ms` after a failed store call, or until `endBackOff()`; pokes do not end it. */
  backOff(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#endBackOff = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#endBackOff = done;
    });
  }

  /** Ends the backoff in progress, if any. */
  endBackOff(): void {
    this.#endBackOff?.();
  }
}

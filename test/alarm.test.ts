// The worker loop's waits (src/workers/alarm.ts), on fake timers.
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { Alarm } from '../src/workers/alarm.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** Whether `p` has settled after the pending microtasks ran. */
async function settled(p: Promise<void>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await vi.advanceTimersByTimeAsync(0);
  return done;
}

it('idle ends at its timer or at a poke, whichever comes first', async () => {
  const alarm = new Alarm();
  const timed = alarm.idle(100);
  await vi.advanceTimersByTimeAsync(99);
  expect(await settled(timed)).toBe(false);
  await vi.advanceTimersByTimeAsync(1);
  expect(await settled(timed)).toBe(true);
  const poked = alarm.idle(100);
  alarm.poke();
  expect(await settled(poked)).toBe(true);
});

it('a poke while nothing waits ends the next wait at once, once', async () => {
  const alarm = new Alarm();
  alarm.poke();
  alarm.poke();
  expect(await settled(alarm.nudged())).toBe(true);
  const next = alarm.nudged();
  await vi.advanceTimersByTimeAsync(60_000);
  expect(await settled(next)).toBe(false); // no timer: only a poke ends it
  alarm.poke();
  expect(await settled(next)).toBe(true);
});

it('a backoff is not ended by pokes, only by its time or endBackOff', async () => {
  const alarm = new Alarm();
  const backoff = alarm.backOff(5_000);
  alarm.poke();
  expect(await settled(backoff)).toBe(false);
  alarm.endBackOff();
  expect(await settled(backoff)).toBe(true);
  alarm.endBackOff(); // none in progress: nothing happens
  const timed = alarm.backOff(10);
  await vi.advanceTimersByTimeAsync(10);
  expect(await settled(timed)).toBe(true);
});

// Time limits may be up to 366 days, Node's timers at most 2^31-1 ms (~24.8 days): beyond it a timer
// fires after 1 ms, so a 30-day time limit used to fail every attempt at once.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApp, type App } from '../src/index.ts';
import { timerAfter } from '../src/workers/execution.ts';

const apps: App[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

const DAY = 86_400_000;

describe('timerAfter', () => {
  it('fires once after 30 days, in steps under the cap; clearing its timers cancels it', () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const timers: NodeJS.Timeout[] = [];
      let fired = 0;
      timerAfter(30 * DAY, () => fired++, timers);
      vi.advanceTimersByTime(1000);
      expect(fired).toBe(0);
      vi.advanceTimersByTime(30 * DAY - 1001);
      expect(fired).toBe(0);
      vi.advanceTimersByTime(1);
      expect(fired).toBe(1);
      expect(timers).toHaveLength(2);

      const cancelled: NodeJS.Timeout[] = [];
      timerAfter(60 * DAY, () => fired++, cancelled);
      vi.advanceTimersByTime(25 * DAY); // past the first step: the second timer is armed
      for (const t of cancelled) clearTimeout(t);
      vi.advanceTimersByTime(60 * DAY);
      expect(fired).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a task with a time limit over 24.8 days', () => {
  it('runs to its end: neither limit fires early (task and call options)', async () => {
    const app = createApp({ store: 'memory:' });
    apps.push(app);
    const slow = app.task('slow', async (x: number) => {
      await new Promise((r) => setTimeout(r, 20));
      return x;
    }, { timeLimit: '30d', softTimeLimit: '30d' });
    app.worker({ pollMs: 10 });
    expect(await (await slow.delay(1)).get({ timeoutMs: 3000 })).toBe(1);
    expect(await (await slow.applyAsync([2], { timeLimit: '366d', softTimeLimit: '366d' })).get({ timeoutMs: 3000 })).toBe(2);
  });
});

// W6: replay of a stored run of ≥100k events: read + JSON.parse + fold, and the fold alone.
import { performance } from 'node:perf_hooks';
import { group } from '../src/canvas/combinators.ts';
import type { WorkflowEvent } from '../src/engine/events.ts';
import { fold, initialState } from '../src/engine/state.ts';
import { count, median, ms, sleep, waitFinished, withApp, workerFor, type Workload } from './harness.ts';

const BUDGET = 170_000; // events/s
const REPEATS = 5;

export const w6Fold: Workload = {
  id: 'W6',
  title: 'fold/replay of a long history',
  async run(ctx) {
    const target = ctx.scale(100_000);
    // A group of m members logs 1 + 3m + 1 events (submitted, ready/started/succeeded each, succeeded).
    const members = Math.ceil((target - 2) / 3);
    await withApp(async (app, store) => {
      const noop = app.task('noop', () => null);
      app.worker(workerFor());
      await app.store();
      await sleep(50);
      const t0 = performance.now();
      const run = await group(Array.from({ length: members }, () => noop.s())).applyAsync();
      const buildMs = (await waitFinished(store, [run.id], 120_000, 'W6 history')) - t0;

      const readTimes: number[] = [];
      const replayTimes: number[] = [];
      const foldTimes: number[] = [];
      let n = 0;
      for (let r = 0; r < REPEATS; r++) {
        const t1 = performance.now();
        const stored = await store.readStream(run.id);
        const t2 = performance.now();
        const state = fold(initialState(run.id), stored.map((e) => e.event));
        const t3 = performance.now();
        readTimes.push(t2 - t1);
        replayTimes.push(t3 - t1);
        if (state.status !== 'succeeded' || state.version !== stored.length) throw new Error(`W6: the fold ended ${state.status} at version ${state.version}`);
        n = stored.length;
        const events: WorkflowEvent[] = stored.map((e) => e.event);
        const t4 = performance.now();
        fold(initialState(run.id), events);
        foldTimes.push(performance.now() - t4);
      }
      const foldMs = median(foldTimes);
      const replayMs = median(replayTimes);
      const foldRate = (n / foldMs) * 1000;
      const replayRate = (n / replayMs) * 1000;
      ctx.report({
        workload: 'W6 fold alone', size: `${count(n)} events`, timeMs: foldMs,
        rate: `${count(foldRate)} events/s`, budget: `≥ ${count(BUDGET)} events/s`, pass: foldRate >= BUDGET,
        note: `median of ${REPEATS}; history built by a group of ${count(members)} in ${ms(buildMs)}`,
      });
      ctx.report({
        workload: 'W6 read+parse+fold', size: `${count(n)} events`, timeMs: replayMs,
        rate: `${count(replayRate)} events/s`, budget: `≥ ${count(BUDGET)} events/s`, pass: replayRate >= BUDGET,
        note: `median of ${REPEATS}; readStream (SELECT + JSON.parse) alone ${ms(median(readTimes))} = ${count((n / median(readTimes)) * 1000)} events/s`,
      });
    });
  },
};

// W3: enqueue→start latency with an idle worker: single tasks submitted one at a time.
import { performance } from 'node:perf_hooks';
import { count, quantile, sleep, waitFinished, withApp, workerFor, type Workload } from './harness.ts';

const BUDGET_P50_MS = 0.5;
const pct = (part: number, whole: number): string => `${((part / whole) * 100).toFixed(0)}%`;

export const w3Latency: Workload = {
  id: 'W3',
  title: 'enqueue→start latency',
  async run(ctx) {
    const samples = ctx.scale(2000);
    const warmup = Math.min(200, samples);
    await withApp(async (app, store) => {
      let startedAt = 0;
      let onStart: () => void = () => {};
      const ping = app.task('ping', () => {
        startedAt = performance.now();
        onStart();
        return null;
      });
      app.worker(workerFor());
      await app.store();
      await sleep(50); // the worker is up and idle

      const total: number[] = [];
      const submit: number[] = [];
      let early = 0;
      for (let i = 0; i < warmup + samples; i++) {
        const started = new Promise<void>((r) => (onStart = r));
        const t0 = performance.now();
        const run = await ping.delay();
        const t1 = performance.now();
        await started;
        if (i >= warmup) {
          total.push(startedAt - t0);
          submit.push(t1 - t0);
          if (startedAt < t1) early++;
        }
        // Let the run finish and the worker park in its idle wait before the next sample.
        await waitFinished(store, [run.id], 10_000, 'W3 sample');
        await sleep(1);
      }
      total.sort((a, b) => a - b);
      submit.sort((a, b) => a - b);
      const p50 = quantile(total, 0.5);
      const p99 = quantile(total, 0.99);
      ctx.shared.set('w3.p50', p50);
      ctx.shared.set('w3.p99', p99);
      ctx.report({
        workload: 'W3 enqueue→start latency', size: `${count(samples)} samples`,
        rate: `p50 ${p50.toFixed(3)} / p99 ${p99.toFixed(3)} ms`, budget: `p50 < ${BUDGET_P50_MS} ms`, pass: p50 < BUDGET_P50_MS,
        note: `delay() resolves at p50 ${quantile(submit, 0.5).toFixed(3)} / p99 ${quantile(submit, 0.99).toFixed(3)} ms (its append wakes the worker at once: ${pct(early, samples)} of tasks start before delay() resolves); max ${total[total.length - 1]!.toFixed(2)} ms`,
      });
    });
  },
};

// W4: a chain of 1000 `inc.s()` steps: the cost of one hop (record a step, make the next ready, claim it).
import { performance } from 'node:perf_hooks';
import { chain } from '../src/canvas/combinators.ts';
import { median, ms, sleep, waitFinished, withApp, workerFor, type Workload } from './harness.ts';

const BUDGET_MS_PER_HOP = 0.2;
const REPEATS = 3;

export const w4Chain: Workload = {
  id: 'W4',
  title: 'chain of inc steps',
  async run(ctx) {
    const steps = ctx.scale(1000);
    await withApp(async (app, store) => {
      const inc = app.task('inc', (x: number) => x + 1);
      app.worker(workerFor());
      await app.store();
      await sleep(50);
      const times: number[] = [];
      for (let r = 0; r < REPEATS; r++) {
        const canvas = chain(inc.s(0), ...Array.from({ length: steps - 1 }, () => inc.s()));
        const t0 = performance.now();
        const run = await canvas.applyAsync();
        times.push((await waitFinished(store, [run.id], 60_000, 'W4 chain')) - t0);
        const result = await run.get({ timeoutMs: 1000 });
        if (result !== steps) throw new Error(`W4: the chain returned ${String(result)}, expected ${steps}`);
      }
      const t = median(times);
      const perHop = t / steps;
      ctx.report({
        workload: 'W4 chain', size: `${steps} steps`, timeMs: t,
        rate: `${perHop.toFixed(3)} ms/hop`, budget: `≤ ${BUDGET_MS_PER_HOP} ms/hop`, pass: perHop <= BUDGET_MS_PER_HOP,
        note: `median of ${REPEATS} (${times.map(ms).join(', ')}), submit included`,
      });
    });
  },
};

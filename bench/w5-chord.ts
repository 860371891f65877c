// W5: chord of N no-op header members and a body that sums them, at two sizes: the per-child cost
// must not grow with N (a join that rescans the header would show here).
import { performance } from 'node:perf_hooks';
import { chord } from '../src/canvas/combinators.ts';
import { count, ms, sleep, waitFinished, withApp, workerFor, type BenchContext, type Workload } from './harness.ts';

const BUDGET_SMALL_MS = 500; // the 10k chord
const FLAT = 1.5; // per-child cost at 100k ≤ 1.5× that at 10k (the machine is noisy)

async function chordOf(n: number): Promise<{ totalMs: number; submitMs: number }> {
  return withApp(async (app, store) => {
    const one = app.task('one', () => 1);
    const xsum = app.task('xsum', (xs: number[]) => xs.reduce((a, b) => a + b, 0));
    app.worker(workerFor());
    await app.store();
    await sleep(50);
    const canvas = chord(Array.from({ length: n }, () => one.s()), xsum.s());
    const t0 = performance.now();
    const run = await canvas.applyAsync();
    const submitMs = performance.now() - t0;
    const totalMs = (await waitFinished(store, [run.id], 120_000, `W5 chord of ${n}`)) - t0;
    const result = await run.get({ timeoutMs: 1000 });
    if (result !== n) throw new Error(`W5: the chord body returned ${String(result)}, expected ${n}`);
    return { totalMs, submitMs };
  });
}

export const w5Chord: Workload = {
  id: 'W5',
  title: 'chord (no-op header, summing body)',
  async run(ctx: BenchContext) {
    const small = ctx.scale(10_000);
    const large = ctx.scale(100_000);
    const a = await chordOf(small);
    const perA = (a.totalMs / small) * 1000;
    ctx.shared.set('w5', a.totalMs);
    if (small === 10_000) ctx.shared.set('w5.10k', a.totalMs);
    ctx.report({
      workload: 'W5 chord', size: `${count(small)} members`, timeMs: a.totalMs,
      rate: `${perA.toFixed(1)} µs/child`, budget: ctx.quick ? '' : `≤ ${ms(BUDGET_SMALL_MS)} total`,
      ...(ctx.quick ? {} : { pass: a.totalMs <= BUDGET_SMALL_MS }),
      note: `submit ${ms(a.submitMs)} included${ctx.quick ? '; the budget applies to the full 10k size' : ''}`,
    });
    const b = await chordOf(large);
    const perB = (b.totalMs / large) * 1000;
    if (large === 10_000) ctx.shared.set('w5.10k', b.totalMs);
    ctx.report({
      workload: 'W5 chord', size: `${count(large)} members`, timeMs: b.totalMs,
      rate: `${perB.toFixed(1)} µs/child`, budget: `≤ ${FLAT}× per child`, pass: perB <= perA * FLAT,
      note: `${(perB / perA).toFixed(2)}× the per-child cost at ${count(small)}; submit ${ms(b.submitMs)} included`,
    });
  },
};

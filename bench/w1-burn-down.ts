// W1: burn-down of a pre-filled queue of no-op tasks, (a) as single-task runs, (b) as one group.
// The runs are submitted by another app on the same store (as a web process would), so the worker's
// app has none of them cached: it learns each run from its claims, or reads it.
import { performance } from 'node:perf_hooks';
import { createApp } from '../src/app/app.ts';
import { group } from '../src/canvas/combinators.ts';
import { assertSucceeded, count, ms, waitFinished, withApp, workerFor, type BenchContext, type Workload } from './harness.ts';

const BUDGET = 50_000; // tasks/s

function ratioNote(ctx: BenchContext, rate: number): string {
  const peer = ctx.shared.get('peerRate');
  return peer === undefined ? '' : `${((rate / peer) * 100).toFixed(0)}% of ${ctx.peerName} (${count(peer)}/s)`;
}

/** (a) `n` runs of one node each: submit all with no worker, then start one and time the burn-down. */
async function singles(ctx: BenchContext, n: number): Promise<void> {
  await withApp(async (app, store) => {
    app.task('noop', () => null);
    const noop = createApp({ store }).task('noop', () => null); // the producer
    const t0 = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await noop.delay()).id);
    const submitMs = performance.now() - t0;

    const t1 = performance.now();
    app.worker(workerFor());
    const timeMs = (await waitFinished(store, ids, 120_000, 'W1a burn-down')) - t1;
    await assertSucceeded(store, [ids[0]!, ids[ids.length - 1]!]);
    const rate = (n / timeMs) * 1000;
    ctx.shared.set('w1a', rate);
    ctx.report({
      workload: 'W1a burn-down, single runs', size: `${count(n)} runs`, timeMs, rate: `${count(rate)} tasks/s`,
      budget: `≥ ${count(BUDGET)} tasks/s`, pass: rate >= BUDGET,
      note: `${ratioNote(ctx, rate)}; pre-fill ${ms(submitMs)} = ${count((n / submitMs) * 1000)} submits/s`,
    });
  });
}

/** (b) one run: a group of `n` no-op members. */
async function oneGroup(ctx: BenchContext, n: number): Promise<void> {
  await withApp(async (app, store) => {
    app.task('noop', () => null);
    const noop = createApp({ store }).task('noop', () => null); // the producer
    const members = Array.from({ length: n }, () => noop.s());
    const t0 = performance.now();
    const run = await group(members).applyAsync();
    const submitMs = performance.now() - t0;

    const t1 = performance.now();
    app.worker(workerFor());
    const timeMs = (await waitFinished(store, [run.id], 120_000, 'W1b burn-down')) - t1;
    await assertSucceeded(store, [run.id]);
    const rate = (n / timeMs) * 1000;
    ctx.shared.set('w1b', rate);
    ctx.report({
      workload: 'W1b burn-down, one group', size: `${count(n)} members`, timeMs, rate: `${count(rate)} tasks/s`,
      budget: `≥ ${count(BUDGET)} tasks/s`, pass: rate >= BUDGET,
      note: `${ratioNote(ctx, rate)}; submit ${ms(submitMs)}`,
    });
  });
}

export const w1BurnDown: Workload = {
  id: 'W1',
  title: 'burn-down of a pre-filled queue of no-op tasks',
  async run(ctx) {
    const n = ctx.scale(100_000);
    await singles(ctx, n);
    await oneGroup(ctx, n);
  },
};

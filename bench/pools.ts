// `npx tsx bench/pools.ts [runs]`: tasks/s of a trivial task through the `async` and the `threads`
// pool, on a temp-file SQLite store. Each pass submits `runs` single-task runs with no worker, then
// starts one (concurrency 8) and times the burn-down from the first completion to the last (thread
// start-up is reported apart: it is paid once per thread). See docs/tasks.md (Pools).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createApp, type WorkerOptions } from '../src/index.ts';
import { defineNoop } from './pools-app.ts';

const runs = Number(process.argv[2] ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'lovage-bench-pools-'));
const appModule = join(import.meta.dirname, 'pools-app.ts');

async function pass(label: string, options: WorkerOptions): Promise<void> {
  const app = createApp({ store: `sqlite:${join(dir, `${label.replace(/\W+/g, '-')}.db`)}` });
  const noop = defineNoop(app);
  const handles = [];
  for (let i = 0; i < runs; i++) handles.push(await noop.delay(i));
  const done: number[] = [];
  const all = new Promise<void>((resolve) => app.on('taskPostrun', () => { if (done.push(performance.now()) === runs) resolve(); }));
  const t0 = performance.now();
  app.worker({ concurrency: 8, pollMs: 10, ...options });
  await all;
  const first = done[0]! - t0;
  const steady = ((runs - 1) / (done[runs - 1]! - done[0]!)) * 1000;
  const total = (runs / (done[runs - 1]! - t0)) * 1000;
  if ((await handles[runs - 1]!.get({ timeoutMs: 10_000 })) !== runs - 1) throw new Error('wrong result');
  await app.close();
  console.log(`${label.padEnd(34)} ${steady.toFixed(0).padStart(6)} tasks/s after the first; first result after ${first.toFixed(0)} ms; ${total.toFixed(0)} tasks/s overall`);
}

console.log(`${runs} single-task runs of a no-op task, SQLite (temp file), concurrency 8; load average ${loadavg()[0]!.toFixed(1)}`);
try {
  await pass('async', {});
  await pass('threads (2 threads)', { pool: 'threads', appModule, threads: 2 });
  await pass('threads (8 threads)', { pool: 'threads', appModule, threads: 8 });
  await pass('threads (2, maxTasksPerChild 100)', { pool: 'threads', appModule, threads: 2, maxTasksPerChild: 100 });
} finally {
  rmSync(dir, { recursive: true, force: true });
}

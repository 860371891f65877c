// W1 with a producer and CPU per task: `npx tsx bench/cpu-per-task.ts redis|postgres a|b [n]`.
// A producer app pre-fills the queue (a: n single-task runs, appended 1,000 a batch; b: one group of
// n), then a worker app that submitted none of them burns it down (the bench's settings, workerFor in harness.ts).
// Prints tasks/s, the worker process's CPU per task (process.cpuUsage) and the server's (Redis
// `INFO cpu`; every postgres process's /proc times, so run it on a Postgres nothing else uses), then
// the worker's store calls a task by method, the nodes claimed, commuting requests and refusals.
// ON_BURN_DOWN='shell command' runs between the pre-fill and the burn-down.
// PROF=file.cpuprofile writes a CPU profile of the burn-down alone; HEAP=file.heapprofile a sampled
// profile of what it allocates (garbage included), and prints the bytes allocated per task.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { createApp } from '../src/app/app.ts';
import { group } from '../src/canvas/combinators.ts';
import { prefillSingleRuns, sampleAllocations, workerFor } from './harness.ts';
import { serverCpuMs, serverDeltaMs } from './server-cpu.ts';
import { openBenchStore } from './stores.ts';

const kind = process.argv[2] ?? 'redis';
const mode = process.argv[3] ?? 'a';
const n = Number(process.argv[4] ?? 50_000);
if ((kind !== 'redis' && kind !== 'postgres') || (mode !== 'a' && mode !== 'b') || !(n > 0)) {
  throw new Error('usage: npx tsx bench/cpu-per-task.ts redis|postgres a|b [n]');
}

/** Counts the worker's store calls by method, the nodes claimed, commuting requests and refusals, from now on. */
function countCalls(s: Record<string, unknown>): Record<string, number> {
  const calls: Record<string, number> = {};
  // Not getRun: this script polls it for the end of the burn-down.
  for (const m of ['append', 'claim', 'appendAndClaim', 'readStream']) {
    const f = s[m] as (...a: unknown[]) => Promise<unknown>;
    s[m] = async (...a: unknown[]) => {
      calls[m] = (calls[m] ?? 0) + 1;
      if (m === 'append' || m === 'appendAndClaim') {
        const commuting = (a[0] as { after?: string }[]).filter((r) => r.after !== undefined).length;
        if (commuting > 0) calls['commuting'] = (calls['commuting'] ?? 0) + commuting;
      }
      let out: unknown;
      try {
        out = await f.apply(s, a);
      } catch (e) {
        const why = `refused:${String((e as { details?: { reason?: string } }).details?.reason ?? (e as { code?: string }).code)}`;
        calls[why] = (calls[why] ?? 0) + 1;
        throw e;
      }
      if (m === 'claim' || m === 'appendAndClaim') calls['claimed'] = (calls['claimed'] ?? 0) + (out as unknown[]).length;
      return out;
    };
  }
  return calls;
}

const bench = await openBenchStore(kind);
const store = bench.store;
try {
  const producer = createApp({ store });
  const worker = createApp({ store });
  const noop = producer.task('noop', () => null);
  worker.task('noop', () => null);
  const ids = mode === 'a' ? await prefillSingleRuns(store, n) : [(await group(Array.from({ length: n }, () => noop.s())).applyAsync()).id];
  const profiler = process.env['PROF'] ? new Session() : undefined;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  // A shell command run once the queue is full, before the clock starts (bench/redis-callgrind.sh zeroes its counters here).
  if (process.env['ON_BURN_DOWN']) execFileSync('sh', ['-c', process.env['ON_BURN_DOWN']], { stdio: 'inherit' });
  const heap = process.env['HEAP'] ? await sampleAllocations() : undefined;
  const calls = countCalls(store as unknown as Record<string, unknown>);
  const cpu0 = process.cpuUsage();
  const server0 = serverCpuMs(kind);
  const t0 = performance.now();
  worker.worker(workerFor(kind));
  const last = ids[ids.length - 1]!;
  while ((await store.getRun(last))?.finishedVersion === undefined) await new Promise((r) => setTimeout(r, 2));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const serverMs = serverDeltaMs(kind, server0);
  if (profiler) writeFileSync(process.env['PROF']!, JSON.stringify((await profiler.post('Profiler.stop')).profile));
  if (heap) {
    const { bytes, profile } = await heap.stop();
    writeFileSync(process.env['HEAP']!, JSON.stringify(profile));
    console.log(`allocated (sampled, garbage included): ${(bytes / n / 1024).toFixed(1)} KB a task`);
  }
  for (const id of [ids[0]!, last]) if ((await store.getRun(id))?.status !== 'succeeded') throw new Error(`run ${id} did not succeed`);
  const nodeMs = (cpu.user + cpu.system) / 1000;
  const perTask = (t: number) => `${((t * 1000) / n).toFixed(1)} µs a task (${((t / ms) * 100).toFixed(0)}% busy)`;
  console.log(`${kind} W1${mode}, ${n} tasks: ${((n / ms) * 1000 / 1000).toFixed(1)}k tasks/s; worker process ${perTask(nodeMs)}, ${((cpu.system / (cpu.user + cpu.system)) * 100).toFixed(0)}% of it in the kernel; server ${perTask(serverMs)}`);
  console.log(`store calls a task: ${Object.entries(calls).map(([k, v]) => `${k} ${(v / n).toFixed(3)}`).join(', ')}`);
  await worker.close();
} finally {
  await store.close();
  await bench.drop();
}

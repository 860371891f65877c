// graphile-worker's W1 burn-down with Postgres's CPU a job, the peer's side of `bench/cpu-per-task.ts
// postgres a`: `npx tsx bench/peer-cpu.ts [n]` (default 100,000 jobs, as W1). Postgres's processes are
// sampled every 20 ms (graphile-worker closes its pool when it stops: its backends end, and their time
// would go with them), so run it on a Postgres nothing else uses. Prints jobs/s, the server's CPU a job
// during the burn-down, and this process's (graphile-worker's) CPU a job.
import { performance } from 'node:perf_hooks';
import { graphileBurnDown } from './peer-graphile.ts';
import { CpuSampler } from './server-cpu.ts';

const n = Number(process.argv[2] ?? 100_000);
if (!(Number.isInteger(n) && n > 0)) throw new Error('usage: npx tsx bench/peer-cpu.ts [n]');

const sampler = new CpuSampler();
let serverAtStart = 0;
let nodeAtStart = process.cpuUsage();
let t0 = 0;
const result = await graphileBurnDown(n, () => {
  serverAtStart = sampler.mark();
  nodeAtStart = process.cpuUsage();
  t0 = performance.now();
});
const serverMs = sampler.stop() - serverAtStart;
const node = process.cpuUsage(nodeAtStart);
if (!result.ok) {
  console.log(result.skipped);
} else {
  const { rate, timeMs } = result.value;
  // The sampler ran until the schema was dropped: a little after the burn-down; its share is the CPU over the whole wait.
  const wallMs = performance.now() - t0;
  console.log(`graphile-worker W1, ${n} jobs: ${(rate / 1000).toFixed(1)}k jobs/s (${(timeMs / 1000).toFixed(2)} s); Postgres ${((serverMs * 1000) / n).toFixed(1)} µs a job (${((serverMs / wallMs) * 100).toFixed(0)}% busy from the burn-down's start to the schema's drop); graphile-worker's process ${(((node.user + node.system) / 1000) * 1000 / n).toFixed(1)} µs a job`);
}

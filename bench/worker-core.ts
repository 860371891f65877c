// The worker's own cost per task, with no store I/O: `npx tsx bench/worker-core.ts [n] [--rounds 3]`.
// One worker (concurrency 100, batches of 100) burns down `n` single-task no-op runs (default 100k)
// from a store that answers at once: each claim makes fresh runs whose log comes with the claim (as
// Postgres and Redis claims bring it), each append only counts the runs that end. So what is left is
// the worker, the coordinator and the engine: claim decoding aside, what a W1a task costs the
// worker's process on any store. Prints tasks/s, CPU µs a task (process.cpuUsage) and, with
// `--heap`, the bytes allocated a task (sampled, garbage included). Stable enough to compare two
// commits in alternating runs on a noisy machine, which W1 against a server is not.
import { performance } from 'node:perf_hooks';
import { createApp } from '../src/app/app.ts';
import { compile } from '../src/canvas/compile.ts';
import { decide, decideStart } from '../src/engine/decide.ts';
import type { StoredEvent } from '../src/engine/events.ts';
import { initialState } from '../src/engine/state.ts';
import { NOT_LIMITED } from '../src/eventstore/rate/window.ts';
import { Signal, type AppendRequest, type ClaimedNode, type ClaimRequest, type EventStore } from '../src/eventstore/store.ts';
import { sampleAllocations, workerFor } from './harness.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const n = Number(args.find((a, i) => /^\d+$/.test(a) && args[i - 1] !== '--rounds') ?? 100_000);
const rounds = Number(flag('--rounds') ?? 1);
const heap = args.includes('--heap');

const dag = compile({ kind: 'signature', task: 'noop', args: [], immutable: false, options: {} });

/**
 * A store that answers at once (after one turn of the event loop, as a reply would come): claims
 * make `limit` fresh single-task runs with their logs, appends count the runs they end. Only what a
 * worker calls is here; anything else throws.
 */
function instantStore(total: number): { store: EventStore; done: () => number } {
  let made = 0;
  let ended = 0;
  let position = 0;
  const signal = new Signal();
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  const claimSome = (c: ClaimRequest): ClaimedNode[] => {
    const out: ClaimedNode[] = [];
    for (; out.length < c.limit && made < total; made++) {
      const runId = `run${made}`;
      const now = Date.now();
      const history: StoredEvent[] = decide(initialState(runId), { type: 'Submit', at: now, dag }).map((event, i) => ({ runId, version: i + 1, position: ++position, event }));
      const leaseToken = `lease${made}`;
      const started = decideStart({ nodeId: '0', attempts: 0, worker: c.worker, leaseToken, leaseExpiresAt: now + c.leaseMs, at: now });
      const events = started.map((event, i) => ({ runId, version: history.length + 1 + i, position: ++position, event }));
      out.push({ runId, nodeId: '0', task: 'noop', args: [], attempt: 1, leaseToken, leaseExpiresAt: now + c.leaseMs, events, history });
    }
    return out;
  };
  const append = (requests: readonly AppendRequest[]): void => {
    for (const r of requests) for (const e of r.events) if (e.type === 'WorkflowSucceeded') ended++;
  };
  const unused = (name: string) => () => { throw new Error(`worker-core's store has no ${name}`); };
  const store = {
    pipelined: true,
    wakesEveryProcess: true,
    now: async () => Date.now(),
    nowSync: () => Date.now(),
    onReady: (listener: () => void) => signal.on(listener),
    claim: async (c: ClaimRequest) => (await turn(), claimSome(c)),
    append: async (requests: readonly AppendRequest[]) => (await turn(), append(requests), requests.map(() => [])),
    appendAndClaim: async (requests: readonly AppendRequest[], c: ClaimRequest) => (await turn(), append(requests), claimSome(c)),
    extend: async (leases: readonly unknown[]) => leases.map(() => true),
    takeToken: async () => NOT_LIMITED,
    close: async () => signal.close(),
    readStream: unused('readStream'), readAll: unused('readAll'), getRun: unused('getRun'), listRuns: unused('listRuns'),
    deleteRuns: unused('deleteRuns'), quarantine: unused('quarantine'), setRateLimit: unused('setRateLimit'),
  } as unknown as EventStore;
  return { store, done: () => ended };
}

async function round(): Promise<void> {
  const { store, done } = instantStore(n);
  const app = createApp({ store });
  app.task('noop', () => null);
  const profiler = heap ? await sampleAllocations() : undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  app.worker(workerFor('sqlite')); // 100/100, as on every store but Postgres
  while (done() < n) await new Promise((resolve) => setTimeout(resolve, 2));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  let allocated = '';
  if (profiler) {
    const { bytes } = await profiler.stop();
    allocated = `; ${(bytes / n / 1024).toFixed(1)} KB allocated a task (sampled; the store's fresh runs included)`;
  }
  console.log(`worker core, ${n} tasks: ${((n / ms) * 1000 / 1000).toFixed(1)}k tasks/s; ${((cpu.user + cpu.system) / n).toFixed(1)} µs CPU a task${allocated}`);
  await app.close();
}

for (let r = 0; r < rounds; r++) await round();

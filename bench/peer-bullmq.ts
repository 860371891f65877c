// PEER on Redis: BullMQ, driven through its npm package on the same Redis as Lovage's Redis store, with
// no-op jobs. Every function uses its own random queue name, obliterated afterwards, and returns
// "skipped: …" when Redis does not answer.
import { performance } from 'node:perf_hooks';
import { FlowProducer, Queue, Worker, type Job } from 'bullmq';
import { quantile, sleep } from './harness.ts';
import { Countdown, installedVersion, ok, randomTag, REDIS, redisDown, skipped, type BurnDown, type Chord, type Latency, type Peer, type PeerResult } from './peer-common.ts';

/**
 * Worker concurrency for every BullMQ workload. Each slot is one "fetch next" loop (moveToActive, then
 * moveToFinished, which also fetches the next job in the same script), so it is how many Redis round
 * trips are in flight. Tried on this 2-core machine for W1 at 100k: 50 to 500 (docs/benchmarks.md);
 * 50–100 were at the top, more only adds event-loop load. 100 is also Lovage's worker concurrency.
 */
export const BULLMQ_CONCURRENCY = Number(process.env['BULLMQ_CONCURRENCY'] ?? 100);
const ADD_CHUNK = 1000;
const connection = { ...REDIS, maxRetriesPerRequest: null };
// Finished jobs are deleted at once (BullMQ's advice for high-throughput queues), so Redis holds only
// what is waiting; a Lovage store keeps every event, which is its point, and is measured as such.
const jobOpts = { removeOnComplete: true, removeOnFail: true } as const;

/** A fresh queue, obliterated (with its workers closed) when `fn` settles. */
async function withQueue<T>(fn: (queue: Queue, name: string) => Promise<T>): Promise<PeerResult<T>> {
  const down = await redisDown();
  if (down) return skipped(down);
  const name = `lovage-bench-${randomTag()}`;
  const queue = new Queue(name, { connection, defaultJobOptions: jobOpts });
  try {
    return ok(await fn(queue, name));
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

/** W1: pre-fills `n` no-op jobs with `addBulk` (chunks of 1000), then starts one Worker and times the burn-down. */
export function bullmqBurnDown(n: number, concurrency = BULLMQ_CONCURRENCY): Promise<PeerResult<BurnDown>> {
  return withQueue(async (queue, name) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i += ADD_CHUNK) {
      await queue.addBulk(Array.from({ length: Math.min(ADD_CHUNK, n - i) }, (_, k) => ({ name: 'noop', data: { i: i + k }, opts: jobOpts })));
    }
    const prefillMs = performance.now() - t0;
    const waiting = await queue.getWaitingCount();
    if (waiting !== n) throw new Error(`BullMQ pre-fill: ${waiting} jobs waiting, expected ${n}`);

    const all = new Countdown(n, 300_000, 'BullMQ W1 burn-down');
    const t1 = performance.now();
    const worker = new Worker(name, async () => null, { connection, concurrency });
    worker.on('completed', () => all.hit());
    worker.on('failed', (job, e) => all.fail(new Error(`BullMQ W1: job ${job?.id ?? '?'} failed: ${e.message}`)));
    try {
      const timeMs = (await all.done) - t1;
      return { n, timeMs, rate: (n / timeMs) * 1000, prefillMs, note: `one Worker, concurrency ${concurrency}, removeOnComplete` };
    } finally {
      await worker.close();
    }
  });
}

/** W3: with an idle Worker, adds one job at a time and measures add() → processor start. */
export function bullmqLatency(samples: number, warmup: number): Promise<PeerResult<Latency>> {
  return withQueue(async (queue, name) => {
    let startedAt = 0;
    let onStart: () => void = () => {};
    let onDone: () => void = () => {};
    const worker = new Worker(name, async () => {
      startedAt = performance.now();
      onStart();
      return null;
    }, { connection, concurrency: BULLMQ_CONCURRENCY });
    worker.on('completed', () => onDone());
    try {
      await worker.waitUntilReady();
      await sleep(50); // the worker is up and blocked waiting for a job
      const total: number[] = [];
      const submit: number[] = [];
      for (let i = 0; i < warmup + samples; i++) {
        const started = new Promise<void>((r) => (onStart = r));
        const finished = new Promise<void>((r) => (onDone = r));
        const t0 = performance.now();
        await queue.add('ping', {});
        const t1 = performance.now();
        await started;
        if (i >= warmup) {
          total.push(startedAt - t0);
          submit.push(t1 - t0);
        }
        await finished; // the job is recorded as completed and the worker waits again
        await sleep(1);
      }
      total.sort((a, b) => a - b);
      submit.sort((a, b) => a - b);
      return {
        samples, p50: quantile(total, 0.5), p99: quantile(total, 0.99), max: total[total.length - 1]!, submitP50: quantile(submit, 0.5),
        note: `idle Worker (concurrency ${BULLMQ_CONCURRENCY}) blocked on its marker key`,
      };
    } finally {
      await worker.close();
    }
  });
}

/**
 * W5: a FlowProducer flow, the parent `xsum` with `n` children `one` (each returns 1); the parent
 * sums `getChildrenValues()`. Timed from just before `add()` to the parent's completion, the Worker
 * already running.
 */
export function bullmqChord(n: number): Promise<PeerResult<Chord>> {
  return withQueue(async (queue, name) => {
    let sum: number | undefined;
    const parent = new Countdown(1, 300_000, `BullMQ W5 flow of ${n}`);
    const worker = new Worker(name, async (job: Job) => {
      if (job.name === 'one') return 1;
      const values = Object.values(await job.getChildrenValues<number>());
      sum = values.reduce((a, b) => a + b, 0);
      return sum;
    }, { connection, concurrency: BULLMQ_CONCURRENCY });
    worker.on('completed', (job) => {
      if (job.name === 'xsum') parent.hit();
    });
    worker.on('failed', (job, e) => parent.fail(new Error(`BullMQ W5: job ${job?.name ?? '?'} failed: ${e.message}`)));
    const flows = new FlowProducer({ connection });
    try {
      await worker.waitUntilReady();
      await sleep(50);
      const t0 = performance.now();
      await flows.add({
        name: 'xsum', queueName: name, opts: jobOpts,
        children: Array.from({ length: n }, () => ({ name: 'one', queueName: name, data: {}, opts: jobOpts })),
      });
      const submitMs = performance.now() - t0;
      const end = await parent.done;
      if (sum !== n) throw new Error(`BullMQ W5: the parent summed ${String(sum)}, expected ${n}`);
      return { n, totalMs: end - t0, submitMs, note: `FlowProducer parent + ${n} children, Worker concurrency ${BULLMQ_CONCURRENCY}` };
    } finally {
      await flows.close();
      await worker.close();
    }
  });
}

/** BullMQ as the harness's PEER for `--store redis`. */
export const bullmqPeer: Peer = {
  name: 'BullMQ',
  version: installedVersion('bullmq'),
  burnDown: (n) => bullmqBurnDown(n),
  latency: bullmqLatency,
  chord: bullmqChord,
};

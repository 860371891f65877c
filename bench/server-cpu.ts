// The CPU time a local Postgres or Redis server has used, read from the machine (run the benchmark on a
// server nothing else uses): bench/cpu-per-task.ts (Lovage) and bench/peer-cpu.ts (graphile-worker).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { REDIS } from './peer-common.ts';

/**
 * The server's CPU time so far, ms, by process (Redis: one entry; Postgres: every `postgres` process's
 * /proc times). A Postgres backend that ends takes its time along: sample often (`CpuSampler`) when
 * backends may end, e.g. a peer closing its pool before the measurement ends.
 */
export function serverCpuMs(kind: 'postgres' | 'redis'): Map<string, number> {
  if (kind === 'redis') {
    const info = execFileSync('redis-cli', ['-p', String(REDIS.port), 'info', 'cpu']).toString();
    const field = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)![1]);
    return new Map([['redis', (field('used_cpu_user') + field('used_cpu_sys')) * 1000]]);
  }
  const ms = new Map<string, number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ms.set(pid, (Number(fields[11]) + Number(fields[12])) * 10); // utime, stime
    } catch {
      // the process ended meanwhile
    }
  }
  return ms;
}

/** The CPU the server's processes used since `before` (a process started since counts from zero; one that ended, not at all). */
export function serverDeltaMs(kind: 'postgres' | 'redis', before: Map<string, number>): number {
  let ms = 0;
  for (const [pid, t] of serverCpuMs(kind)) ms += t - (before.get(pid) ?? 0);
  return ms;
}

/**
 * Postgres's CPU, sampled every `everyMs` and kept per process, so that a backend that ends (its pool
 * closed) keeps the time it had at its last sample. `mark()` notes the total now; `since(mark)` is the
 * CPU used after it, up to the last sample.
 */
export class CpuSampler {
  readonly #last = new Map<string, number>();
  readonly #base: Map<string, number>;
  readonly #timer: NodeJS.Timeout;

  constructor(everyMs = 20) {
    this.#base = serverCpuMs('postgres');
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  #sample(): void {
    for (const [pid, t] of serverCpuMs('postgres')) this.#last.set(pid, t);
  }

  /** The CPU used since the sampler started, ms. */
  mark(): number {
    this.#sample();
    let ms = 0;
    for (const [pid, t] of this.#last) ms += t - (this.#base.get(pid) ?? 0);
    return ms;
  }

  stop(): number {
    clearInterval(this.#timer);
    return this.mark();
  }
}

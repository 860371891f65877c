// Rate-limit turns, simulated: `npx tsx bench/rate-limit-sim.ts <workers> <nodes> <limit> [--no-turns]`,
// e.g. `10 1000 50/s`. Workers (one RateLimiter each) share a memory store on a simulated clock; every
// 10 ms each takes up to 100 due nodes, round robin, and asks its limiter for each: a permit starts the
// node, a refusal makes it due again after the wait it was given. Prints the simulated time to start
// them all and the hand-backs (NodeDeferred) it took. `--no-turns` hides the store's takeTurn, so
// every refused node comes back when the next permit may be free (the limiter before turns).
import { parseRateLimit } from '../src/app/rate-limit.ts';
import { MemoryStore } from '../src/eventstore/memory.ts';
import { RateLimiter } from '../src/workers/rate-limit.ts';

const [workers, nodes] = [Number(process.argv[2] ?? 3), Number(process.argv[3] ?? 1000)];
const limit = parseRateLimit(process.argv[4] ?? '50/s');
const turns = !process.argv.includes('--no-turns');
if (!(Number.isInteger(workers) && workers > 0 && Number.isInteger(nodes) && nodes > 0)) {
  throw new Error('usage: npx tsx bench/rate-limit-sim.ts <workers> <nodes> <limit> [--no-turns]');
}

let now = 1_000_000;
const start = now;
const store = new MemoryStore({ clock: () => now });
if (!turns) Object.defineProperty(store, 'takeTurn', { value: undefined });
const limiters = Array.from({ length: workers }, () => new RateLimiter(store, { clock: () => now }));
const due: number[] = Array.from({ length: nodes }, () => now);
let started = 0;
let deferred = 0;
while (started < nodes) {
  const mine: number[][] = Array.from({ length: workers }, () => []);
  let k = 0;
  for (let i = 0; i < nodes; i++) {
    if (due[i]! > now) continue;
    const w = k++ % workers;
    if (mine[w]!.length < 100) mine[w]!.push(i);
  }
  for (let w = 0; w < workers; w++) {
    const waits = await Promise.all(mine[w]!.map(() => limiters[w]!.wait('t', limit)));
    mine[w]!.forEach((i, j) => {
      if (waits[j] === 0) {
        started++;
        due[i] = Number.POSITIVE_INFINITY;
      } else {
        deferred++;
        due[i] = now + waits[j]!;
      }
    });
  }
  now += 10;
}
console.log(`${workers} workers, ${nodes} nodes, ${limit.count} per ${limit.periodMs} ms${turns ? '' : ', no turns'}: all started after ${((now - start) / 1000).toFixed(2)} s, ${deferred} hand-backs`);

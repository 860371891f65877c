// The closing "side by side" table of `npm run bench`: Lovage's number, the peer's, and their ratio, for
// each workload both measured in this run (values come from `ctx.shared`).
import { count, ms } from './harness.ts';

interface Pair {
  readonly workload: string;
  readonly lovage: string;
  readonly peer: string;
  /** How to format a value. */
  readonly show: (v: number) => string;
  /** true when higher is better (a rate), false for times. */
  readonly higherIsBetter: boolean;
}

const rate = (v: number) => `${count(v)}/s`;
const lat = (v: number) => `${v.toFixed(3)} ms`;

const PAIRS: readonly Pair[] = [
  { workload: 'W1a burn-down, single runs', lovage: 'w1a', peer: 'peerRate', show: rate, higherIsBetter: true },
  { workload: 'W1b burn-down, one group', lovage: 'w1b', peer: 'peerRate', show: rate, higherIsBetter: true },
  { workload: 'W3 enqueue→start p50', lovage: 'w3.p50', peer: 'peer.w3.p50', show: lat, higherIsBetter: false },
  { workload: 'W3 enqueue→start p99', lovage: 'w3.p99', peer: 'peer.w3.p99', show: lat, higherIsBetter: false },
  { workload: 'W5 chord 10k (1k --quick)', lovage: 'w5', peer: 'peer.w5', show: ms, higherIsBetter: false },
];

const WIDTHS = [28, 14, 16, 30];
const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(WIDTHS[i]!)).join('  ').trimEnd();

/**
 * Prints one line per workload the peer measured: Lovage, peer, and "Lovage is N× the peer's rate" or
 * "N× the peer's time". `lovageMissing` replaces Lovage's column when its store could not be opened.
 */
export function printSideBySide(shared: ReadonlyMap<string, number>, peerName: string, lovageMissing: string | undefined): void {
  const rows = PAIRS.filter((p) => shared.has(p.peer) && (lovageMissing !== undefined || shared.has(p.lovage)));
  if (rows.length === 0) return;
  console.log(`\nSide by side with ${peerName} (same machine, same run):\n`);
  console.log(line(['workload', 'Lovage', peerName, 'Lovage ÷ peer']));
  console.log(line(WIDTHS.map((w) => '-'.repeat(w))));
  for (const p of rows) {
    const peer = shared.get(p.peer)!;
    const lovage = shared.get(p.lovage);
    if (lovage === undefined) {
      console.log(line([p.workload, 'n/a', p.show(peer), '']));
      continue;
    }
    const r = lovage / peer;
    const what = p.higherIsBetter ? 'rate' : 'time';
    const verdict = (p.higherIsBetter ? r >= 1 : r <= 1) ? 'Lovage ahead' : `${peerName} ahead`;
    console.log(line([p.workload, p.show(lovage), p.show(peer), `${r.toFixed(2)}× the ${what} (${verdict})`]));
  }
  if (lovageMissing) console.log(`\n${lovageMissing}`);
}

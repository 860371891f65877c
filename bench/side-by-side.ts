// The closing "side by side" table of `npm run bench`: Lovage's number, the peer's, and their ratio, for
// each workload both measured in this run (values come from `ctx.shared`).
import { count, ms } from './harness.ts';
import type { StoreKind } from './stores.ts';

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

/** The budgets of the many-machines issue for the server stores (on these 2-core machines). */
const STORE_BUDGETS: Record<'postgres' | 'redis', { readonly w1: number; readonly w3p50: number; readonly w5: number }> = {
  postgres: { w1: 25_000, w3p50: 2, w5: 1000 },
  redis: { w1: 25_000, w3p50: 1, w5: 1000 },
};

/**
 * Judges this run's numbers on Postgres or Redis against that store's budgets: W1a and W1b ≥ 25k tasks/s
 * and ≥ the peer; W3 p50 ≤ 2 ms (Postgres) / 1 ms (Redis); W5 10k ≤ 1 s and faster than the peer's
 * 10k chord (without --quick: the peer's chord is 1k with it). Prints one line each; returns the counts.
 */
export function judgeStoreBudgets(store: StoreKind, shared: ReadonlyMap<string, number>, peerName: string, quick: boolean): { met: number; missed: number } {
  if (store === 'sqlite') return { met: 0, missed: 0 };
  const b = STORE_BUDGETS[store];
  const verdicts: [string, string, boolean][] = [];
  const peerRate = shared.get('peerRate');
  for (const [key, name] of [['w1a', 'W1a burn-down, single runs'], ['w1b', 'W1b burn-down, one group']] as const) {
    const v = shared.get(key);
    if (v === undefined) continue;
    const vsPeer = peerRate === undefined ? '' : ` and ≥ ${peerName} (${rate(peerRate)})`;
    verdicts.push([name, `${rate(v)} against ≥ ${rate(b.w1)}${vsPeer}`, v >= b.w1 && (peerRate === undefined || v >= peerRate)]);
  }
  const p50 = shared.get('w3.p50');
  if (p50 !== undefined) verdicts.push(['W3 enqueue→start p50', `${lat(p50)} against ≤ ${b.w3p50} ms`, p50 <= b.w3p50]);
  const w5 = shared.get('w5.10k');
  const peerW5 = quick ? undefined : shared.get('peer.w5');
  if (w5 !== undefined) {
    const vsPeer = peerW5 === undefined ? (quick ? ' (the peer\'s chord is 1k with --quick: not compared)' : '') : ` and < ${peerName} (${ms(peerW5)})`;
    verdicts.push(['W5 chord 10k', `${ms(w5)} against ≤ ${ms(b.w5)}${vsPeer}`, w5 <= b.w5 && (peerW5 === undefined || w5 < peerW5)]);
  }
  if (verdicts.length === 0) return { met: 0, missed: 0 };
  console.log(`\nBudgets on ${store} (the many-machines issue; each against the peer in this run):\n`);
  for (const [name, what, pass] of verdicts) console.log(`${name.padEnd(28)}  ${pass ? 'pass' : 'MISS'}  ${what}`);
  const met = verdicts.filter((v) => v[2]).length;
  return { met, missed: verdicts.length - met };
}

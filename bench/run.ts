// `npm run bench [-- --quick] [-- --only W1,W5] [-- --store sqlite|postgres|redis]`: runs the workloads
// against a store (default: a temp-file SQLite store, WAL) with an in-process worker, and the peer of that
// store (raw SQLite, graphile-worker, BullMQ) in the same run; prints one table and the ratios.
// See docs/benchmarks.md.
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { count, ms, useStore, type BenchContext, type Row, type Workload } from './harness.ts';
import { bullmqPeer } from './peer-bullmq.ts';
import { peerWorkload } from './peer-common.ts';
import { graphilePeer } from './peer-graphile.ts';
import { peerSqlite } from './peer-sqlite.ts';
import { machineScale } from './scale.ts';
import { judgeStoreBudgets, printSideBySide } from './side-by-side.ts';
import { probeStore, STORE_KINDS, type StoreKind } from './stores.ts';
import { w1BurnDown } from './w1-burn-down.ts';
import { w3Latency } from './w3-latency.ts';
import { w4Chain } from './w4-chain.ts';
import { w5Chord } from './w5-chord.ts';
import { w6Fold } from './w6-fold.ts';
import { workerFor } from './harness.ts';

/** The commit measured, and whether src/ differs from it (read-only git plumbing; '' outside a checkout). */
function sourceVersion(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    let dirty = false;
    try {
      execFileSync('git', ['diff-index', '--quiet', 'HEAD', '--', 'src'], { stdio: 'ignore' });
    } catch {
      dirty = true;
    }
    return `, commit ${head}${dirty ? ' + uncommitted changes in src/' : ''}`;
  } catch {
    return '';
  }
}

const LOVAGE: readonly Workload[] = [w1BurnDown, w3Latency, w4Chain, w5Chord, w6Fold];
const ALL: readonly Workload[] = [peerSqlite, ...LOVAGE];

/** The peer measured beside Lovage on each store, and how the header describes Lovage's store. */
const STORES: Record<StoreKind, { peer: Workload; peerName: string; where: string }> = {
  sqlite: { peer: peerSqlite, peerName: 'raw SQLite', where: 'SQLite temp file (WAL)' },
  postgres: { peer: peerWorkload(graphilePeer), peerName: graphilePeer.name, where: 'Postgres 127.0.0.1:5432/test, a fresh schema per workload' },
  redis: { peer: peerWorkload(bullmqPeer), peerName: bullmqPeer.name, where: 'Redis 127.0.0.1:6379, a fresh key prefix per workload' },
};

function parseArgs(argv: readonly string[]): { quick: boolean; only: Set<string> | undefined; store: StoreKind } {
  let quick = false;
  let only: Set<string> | undefined;
  let store: StoreKind = 'sqlite';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const list = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (!list) throw new Error('--only needs a list, e.g. --only W1,W5');
      only = new Set(list.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean));
      const known = new Set(ALL.map((w) => w.id));
      for (const id of only) if (!known.has(id)) throw new Error(`--only: unknown workload ${id}; known are ${[...known].join(', ')}`);
    } else if (a === '--store' || a.startsWith('--store=')) {
      const kind = a === '--store' ? argv[++i] : a.slice('--store='.length);
      if (!STORE_KINDS.includes(kind as StoreKind)) throw new Error(`--store: ${JSON.stringify(kind ?? '')} is not a store; allowed are ${STORE_KINDS.join(', ')}`);
      store = kind as StoreKind;
    } else if (a === '--help' || a === '-h') {
      console.log('usage: npm run bench -- [--quick] [--only W1,W3,W4,W5,W6,PEER] [--store sqlite|postgres|redis]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}; allowed are --quick, --only W1,W5 and --store sqlite|postgres|redis`);
  }
  // W1, W3 and W5 are reported as ratios of the peer: selecting one selects the peer.
  if (only?.has('W1') || only?.has('W3') || only?.has('W5')) only?.add('PEER');
  return { quick, only, store };
}

const COLUMNS = ['workload', 'size', 'time', 'rate', 'budget', 'result'] as const;
const WIDTHS = [32, 14, 9, 26, 20, 6];

function cells(row: Row): string[] {
  const result = row.pass === undefined ? '' : row.pass ? 'pass' : 'MISS';
  return [row.workload, row.size, row.timeMs === undefined ? '' : ms(row.timeMs), row.rate, row.budget, result];
}

function line(values: readonly string[]): string {
  return values.map((v, i) => v.padEnd(WIDTHS[i]!)).join('  ').trimEnd();
}

async function main(): Promise<void> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 2;
    return;
  }
  const { quick, only, store } = args;
  const { peer, peerName, where } = STORES[store];
  useStore(store);
  const rows: Row[] = [];
  const ctx: BenchContext = {
    quick,
    scale: (n) => (quick ? Math.max(1, Math.round(n / 10)) : n),
    report(given) {
      // The budgets are SQLite's: on another store they are shown, but not judged.
      let row = given;
      if (store !== 'sqlite' && given.pass !== undefined) {
        const { pass: _judged, ...rest } = given;
        row = { ...rest, budget: `(${given.budget} on SQLite)` };
      }
      rows.push(row);
      console.log(line(cells(row)) + (row.note ? `\n${' '.repeat(4)}· ${row.note}` : ''));
    },
    shared: new Map(),
    store,
    peerName,
  };
  console.log(`Lovage benchmarks — ${where}, in-process worker ${JSON.stringify(workerFor(store))}, no-op tasks${quick ? ', --quick (10× smaller)' : ''}; peer: ${peer.title}`);
  console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${count(totalmem() / 2 ** 30)} GiB, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}${sourceVersion()}\n`);
  const missing = await probeStore(store);
  if (missing) console.log(`${missing}\nRunning the peer only.\n`);
  console.log(line(COLUMNS));
  console.log(line(WIDTHS.map((w) => '-'.repeat(w))));
  const started = Date.now();
  for (const w of [peer, ...LOVAGE]) {
    if (only && !only.has(w.id)) continue;
    if (missing && w !== peer) continue;
    try {
      await w.run(ctx);
    } catch (e) {
      process.exitCode = 1;
      ctx.report({ workload: `${w.id} ${w.title}`, size: '', rate: 'ERROR', budget: '', pass: false, note: e instanceof Error ? e.message : String(e) });
    }
  }

  console.log(`\nSummary (${((Date.now() - started) / 1000).toFixed(0)} s):\n`);
  console.log(line(COLUMNS));
  console.log(line(WIDTHS.map((w) => '-'.repeat(w))));
  for (const row of rows) console.log(line(cells(row)));
  const missed = rows.filter((r) => r.pass === false).length;
  printSideBySide(ctx.shared, peerName, missing);
  if (store === 'sqlite') {
    console.log(`\n${rows.filter((r) => r.pass === true).length} budgets met, ${missed} missed.`);
  } else {
    const judged = judgeStoreBudgets(store, ctx.shared, peerName, quick);
    console.log(`\n${judged.met} budgets met, ${judged.missed} missed (the table's budgets are SQLite's: shown there, not judged).`);
    if (!missing) console.log(await machineScale(store, quick));
  }
}

await main();

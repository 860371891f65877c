// Creates the runs of docs/inspect-and-resume.md in a fresh SQLite file, deterministically: fixed
// run ids, a named worker, and a chord member that fails because a flag file names its SKU.
//   npx tsx examples/failed-run.ts      then: npx lovage runs ls --store sqlite:./.lovage/failed-run.db
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';

const file = '.lovage/failed-run.db';
process.env['LOVAGE_STORE'] = `sqlite:./${file}`;
for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
mkdirSync('.lovage', { recursive: true });

const { app, archive, count, FLAG, load, price, tax, total } = await import('./failed-run-tasks.ts');
const { chain, chord } = await import('../src/index.ts');

writeFileSync(FLAG, 'widget\n'); // price fails for widget until this file is removed
const worker = app.worker({ name: 'worker-1', concurrency: 2 });

// 1. A run that succeeds: load order 7's three lines and count them.
const ok = await chain(load.s(7, 3), count.s()).applyAsync({ runId: 'order-7' });
console.log(`order-7: ${await ok.get({ timeoutMs: 10_000 })}`);

// 2. The failing run: load order 42 (a chain), price three SKUs in parallel (a chord), total them, add tax.
//    price('widget') fails while the flag exists: the chord's body `total` never runs, the run fails.
const failing = await chain(
  load.s(42, 3),
  count.s(),
  chord([price.s('apple'), price.s('widget'), price.s('kiwi')], total.s()),
  tax.s(1.2),
).applyAsync({ runId: 'order-42' });
await failing.get({ timeoutMs: 10_000 }).catch((e: Error) => console.log(`order-42: ${e.message}`));

// 3. A run on a queue no worker serves: it waits, ready, until someone cancels it.
await archive.applyAsync([42], { runId: 'archive-42' });
console.log('archive-42: waiting on queue nightly');

await worker.stop();
await app.close();

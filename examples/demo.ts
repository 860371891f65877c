// The README's example: a chain into a chord, on a SQLite file, with an in-process worker.
// Run it with `npm run demo`.
import { chain, chord, createApp, group } from '../src/index.ts';
import { renderRunTree } from '../src/cli/render-tree.ts';
import { fold, initialState } from '../src/engine/state.ts';

const app = createApp({ store: process.env['LOVAGE_STORE'] ?? 'sqlite:./.lovage/demo.db' });

const add = app.task('add', (a: number, b: number) => a + b);
const mul = app.task('mul', (a: number, b: number) => a * b);
const xsum = app.task('xsum', (xs: number[]) => xs.reduce((a, b) => a + b, 0));

app.worker({ concurrency: 4 });

// add(1, 0) = 1, then the header gets 1: [add(1, 1), add(1, 2), mul(1, 3)] = [2, 3, 3], xsum = 8
const run = await chain(add.s(1, 0), chord(group(add.s(1), add.s(2), mul.s(3)), xsum.s())).applyAsync();
const result = await run.get({ timeoutMs: 10_000 });
console.log(`result: ${result}\n`);

const store = await app.store();
const events = await store.readStream(run.id);
console.log(renderRunTree(fold(initialState(run.id), events.map((e) => e.event)), { color: process.stdout.isTTY }));
console.log(`\nhistory: ${events.length} events`);
for (const { version, event } of events) {
  const { type, at, ...rest } = event;
  const detail = 'nodeId' in rest ? `node ${rest.nodeId}` : '';
  console.log(`  ${String(version).padStart(3)}  ${new Date(at).toISOString()}  ${type.padEnd(18)} ${detail}`);
}
await app.close();

// Retries with backoff, a countdown, a rate limit, a callback and hooks on one small run; prints the
// run's tree and history. Run it with `npx tsx examples/task-options.ts` (see docs/tasks.md).
import { rmSync } from 'node:fs';
import { renderRunTree } from '../src/cli/render-tree.ts';
import { historyLine } from '../src/cli/runs-history.ts';
import { chain, createApp } from '../src/index.ts';

const file = './.lovage/task-options.db';
for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
const app = createApp({ store: `sqlite:${file}` });

// Fails twice ("the API is flaky"), then answers: retried after 50 ms, then 100 ms.
let calls = 0;
const fetchPrice = app.task('fetchPrice', (sku: string) => {
  if (++calls < 3) throw new Error(`503 from the price API (call ${calls})`);
  return 42;
}, { retry: { max: 5, backoff: 'exponential', delay: '50ms', jitter: false } });

// At most 2 a second across every worker on the store.
const applyTax = app.task('applyTax', (price: number, rate: number) => Math.round(price * (1 + rate)), { rateLimit: '2/s' });
const notify = app.task('notify', (total: number) => `told the shop: ${total}`);

app.on('taskRetry', ({ task, attempt, error, retryAt }) => console.log(`hook: ${task} attempt ${attempt} failed (${error.message}); retry at +${retryAt - Date.now()} ms`));
app.on('taskPrerun', ({ task, attempt }) => console.log(`hook: ${task} starts, attempt ${attempt}`));
app.worker({ concurrency: 2, pollMs: 10 });

const run = await chain(fetchPrice.s('sku-1'), applyTax.s(0.2).set({ countdown: '100ms' })).link(notify.s()).applyAsync();
console.log('result', await run.get({ timeoutMs: 10_000 }));

const state = await app.inspect(run.id);
console.log(`\n${renderRunTree(state, { color: false })}\n`);
for (const s of await app.runs.history(run.id)) console.log(historyLine(s, false));
await app.close();

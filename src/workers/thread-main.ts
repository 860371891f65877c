// A threads-pool thread (loaded by thread-entry.mjs): imports the app module once, then runs the
// tasks the pool sends it, one at a time, by name from the app's registry. The thread never opens
// the store: args come in and the outcome goes out as messages; the worker records it.
import { AsyncLocalStorage } from 'node:async_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { parseDuration } from '../app/duration.ts';
import { exportedApp, noAppExported } from '../app/load-app.ts';
import { assertJson } from '../canvas/json.ts';
import { LovageError } from '../errors.ts';
import type { TaskContext } from './context.ts';
import { RetryRequest } from './execution.ts';
import { appInternals, encodeThrown, markPoolThread, reviveThrown, type AppInternals, type FromThread, type ToThread } from './thread-protocol.ts';

const port = parentPort;
if (!port) throw new Error('src/workers/thread-main.ts runs in a threads-pool thread only');
const post = (m: FromThread) => port.postMessage(m);
const { appModule } = workerData as { appModule: string };

/** The task whose code runs now (through its timers and promises): who threw an error no code caught. */
const owner = new AsyncLocalStorage<{ id: number; task: string }>();
// An error no code caught ends the thread, as it would anyway; first the pool is told whose code threw
// it, so that a task is not failed for an error an earlier task left behind (a timer of its own).
process.on('uncaughtException', (e) => {
  const o = owner.getStore();
  post({ type: 'uncaught', error: encodeThrown(e), ...(o ? { owner: o.id, task: o.task } : {}) });
  process.exit(1);
});

async function load(): Promise<AppInternals> {
  // Before the import: `app.worker()` calls in the module are inert here.
  markPoolThread();
  const app = exportedApp((await import(appModule)) as { app?: unknown; default?: unknown });
  if (!app) throw new LovageError('VALIDATION', `appModule ${appModule}: ${noAppExported}`);
  const internals = appInternals(app);
  if (!internals) throw new LovageError('VALIDATION', `appModule ${appModule}: its app does not expose the task registry a pool thread needs (was it made by another version of lovage?)`);
  return internals;
}

/** Abort controllers of the tasks running now, by the pool's id. */
const running = new Map<number, AbortController>();
/** `ctx.heartbeat()` calls waiting for the worker's answer, by call number. */
const beats = new Map<number, { resolve: (held: boolean) => void; reject: (e: unknown) => void }>();
let nextBeat = 1;

/** `ctx.heartbeat()` of task `id`: the worker extends its lease in the store (as in the async pool) and says whether it still holds it. */
function heartbeatOf(id: number): () => Promise<boolean> {
  return () => new Promise<boolean>((resolve, reject) => {
    const seq = nextBeat++;
    beats.set(seq, { resolve, reject });
    post({ type: 'heartbeat', id, seq });
  });
}

async function run(internals: AppInternals, m: Extract<ToThread, { type: 'run' }>): Promise<void> {
  const controller = new AbortController();
  running.set(m.id, controller);
  const ctx: TaskContext = {
    ...m.ctx,
    signal: controller.signal,
    heartbeat: heartbeatOf(m.id),
    retry: (options = {}) => {
      throw new RetryRequest(options.countdown === undefined ? undefined : parseDuration(options.countdown, 'ctx.retry countdown'), options.error);
    },
  };
  try {
    const def = internals.task(m.task);
    if (!def) throw new LovageError('NOT_FOUND', `task "${m.task}" is not registered in the app of ${appModule} (the module the worker's threads import); register it there with app.task("${m.task}", fn)`);
    const value = (await owner.run({ id: m.id, task: m.task }, () => internals.runInContext(ctx, () => def.fn(...(m.args as never[]))))) ?? null;
    assertJson(value, `result of task ${m.task}`);
    post({ type: 'done', id: m.id, ok: true, value });
  } catch (e) {
    post({ type: 'done', id: m.id, ok: false, thrown: encodeThrown(e) });
  } finally {
    running.delete(m.id);
  }
}

try {
  const internals = await load();
  port.on('message', (m: ToThread) => {
    if (m.type === 'abort') running.get(m.id)?.abort(reviveThrown(m.reason));
    else if (m.type === 'heartbeat') {
      const beat = beats.get(m.seq);
      beats.delete(m.seq);
      if ('error' in m) beat?.reject(reviveThrown(m.error));
      else beat?.resolve(m.held);
    } else void run(internals, m);
  });
  post({ type: 'ready' });
} catch (e) {
  // The pool reports it and ends this thread.
  post({ type: 'loadFailed', error: encodeThrown(e) });
}

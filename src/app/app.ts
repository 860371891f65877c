import { nanoid } from 'nanoid';
import { compile, resolveLimits, TASK_NAME, type CompileLimits } from '../canvas/compile.ts';
import type { ApplyOptions, RunHandle, Submitter } from '../canvas/submit.ts';
import type { CanvasData } from '../canvas/types.ts';
import { LovageError, preview } from '../errors.ts';
import type { EventStore } from '../eventstore/store.ts';
import { defaultStoreUrl, openStore } from '../eventstore/url.ts';
import { Coordinator } from '../workers/coordinator.ts';
import { Worker, type WorkerOptions } from '../workers/worker.ts';
import { runHandle } from './run-handle.ts';
import { assertRunId, idempotentRunId, parseDuration } from './duration.ts';
import { runsApi, type RunsApi } from './runs.ts';
import { makeTask, type Task, type TaskOptions } from './task.ts';
import { parseRateLimit, type RateLimit } from './rate-limit.ts';
import { nodeOptions, retryFields, type RetryOptions } from '../canvas/options.ts';
import type { TaskDefinition } from '../workers/execution.ts';
import { Hooks, type HookName, type HookPayloads } from '../workers/hooks.ts';
import type { RunState } from '../engine/state.ts';
import { contextStorage } from '../workers/context.ts';
import { APP_INTERNALS, inPoolThread, type AppInternals } from '../workers/thread-protocol.ts';

/** Options of {@link createApp}. */
export interface AppOptions {
  /** A store URL (`sqlite:./lovage.db`, `sqlite::memory:`, `memory:`, `postgres://…`, `redis://…`) or a store object. Default: `LOVAGE_STORE`, else `sqlite:./.lovage/lovage.db`. */
  readonly store?: string | EventStore;
  /**
   * Limits checked at submit (see `defaultLimits`): integers of at least 1 (`maxDepth` at most 256).
   * A limit left out or given as `undefined` keeps its default; any other value is refused here.
   */
  readonly limits?: Partial<CompileLimits>;
  /**
   * Delete succeeded runs (their whole history) this long after they were created (`7d`, `12h`,
   * or ms). The app's workers prune every `min(resultExpires / 2, 1 min)`. Default: keep forever.
   */
  readonly resultExpires?: string | number;
  /**
   * Queue and priority by task name, for tasks that set none themselves: `{ 'emails.*': { queue:
   * 'mail' } }`. Patterns are names with `*` matching any characters; the first match wins. Field by field, a call's
   * own options come first, then the task's, then the routes, then `default` / 0.
   */
  readonly routes?: Readonly<Record<string, { readonly queue?: string; readonly priority?: number }>>;
}

/** A Lovage app: the task registry, the store, and the way to submit and to work. */
export interface App extends Submitter {
  /** The store URL this app was created with (`undefined` for a store object or the default). */
  readonly storeUrl: string | undefined;
  /**
   * Registers a task. Names are 1-200 of `A-Z a-z 0-9 _ . : - /`, unique per app.
   *
   * @example
   * const add = app.task('add', (a: number, b: number) => a + b)
   */
  task<A extends unknown[], R>(name: string, fn: (...args: A) => R | Promise<R>, options?: TaskOptions): Task<A, Awaited<R>>;
  /** Validates, compiles and appends a canvas as a new run. Nothing is written when it is refused. */
  submit(canvas: CanvasData, options?: ApplyOptions): Promise<RunHandle<unknown>>;
  /** A handle on an existing run. */
  run<T = unknown>(id: string): RunHandle<T>;
  /** Inspect, replay, resume, verify, export and prune runs. */
  readonly runs: RunsApi;
  /**
   * The run's state at event version `at` or at a time (now when omitted): which nodes were
   * running, waiting, done. Same as `app.runs.inspect`.
   *
   * @example
   * const then = await app.inspect(runId, { at: 7 }); then.nodes.get('1.body')?.status // 'pending'
   */
  inspect(runId: string, options?: { at?: number | string | Date }): Promise<RunState>;
  /** Starts a worker in this process. */
  worker(options?: WorkerOptions): Worker;
  /**
   * Calls `fn` on a task or run event in this process's workers: `taskPrerun`, `taskPostrun`,
   * `taskFailure`, `taskRetry`, `runFinished`. Returns an unsubscribe. A hook that throws is reported
   * on stderr, never changes an outcome.
   *
   * @example
   * app.on('taskFailure', ({ task, error }) => alert(`${task} failed: ${error.message}`))
   */
  on<K extends HookName>(name: K, fn: (payload: HookPayloads[K]) => unknown): () => void;
  /**
   * Sets (or, with null, clears) a task's rate limit at run time, for every worker on the store
   * (it overrides the task's `rateLimit` option; workers see it within a second).
   *
   * @example
   * await app.setRateLimit('emails.send', '100/m')
   */
  setRateLimit(task: string, limit: string | RateLimit | null): Promise<void>;
  /** The opened store. */
  store(): Promise<EventStore>;
  /** Stops this app's workers (gracefully) and closes the store. */
  close(): Promise<void>;
}


/**
 * Creates an app.
 *
 * @example
 * const app = createApp({ store: 'sqlite:./lovage.db' })
 * const add = app.task('add', (a: number, b: number) => a + b)
 * app.worker({ concurrency: 4 })
 * console.log(await (await add.delay(1, 2)).get()) // 3
 */
export function createApp(options: AppOptions = {}): App {
  const tasks = new Map<string, TaskDefinition>();
  const hooks = new Hooks((e) => console.error(`lovage: ${e instanceof Error ? e.message : String(e)}`));
  const taskOptions = new Map<string, { queue: string; priority: number }>();
  const route = compileRoutes(options.routes);
  const limits = resolveLimits(options.limits);
  const workers = new Set<Worker>();
  const resultExpires = options.resultExpires === undefined ? undefined : parseDuration(options.resultExpires, 'resultExpires');
  let pruner: NodeJS.Timeout | undefined;
  // Handles waiting on a run, by run id: a finished run wakes only its own waiters.
  const waiters = new Map<string, Set<() => void>>();
  let resolved: { store: EventStore; coordinator: Coordinator } | undefined;
  let opened: Promise<{ store: EventStore; coordinator: Coordinator }> | undefined;
  /** Opens the store once, on first use. */
  const open = () => {
    opened ??= (async () => {
      const store = typeof options.store === 'object' ? options.store : await openStore(options.store ?? defaultStoreUrl());
      // Submitted runs are cached for this app's own workers only (see Coordinator).
      const coordinator = new Coordinator(store, { cacheSubmits: () => workers.size > 0 });
      coordinator.onFinished((id) => {
        for (const wake of waiters.get(id) ?? []) wake();
        hooks.emit('runFinished', { runId: id });
      });
      resolved = { store, coordinator };
      return resolved;
    })();
    return opened;
  };
  const handleHost = {
    store: async () => (await open()).store,
    onFinished: (runId: string, wake: () => void) => {
      let set = waiters.get(runId);
      if (!set) waiters.set(runId, (set = new Set()));
      set.add(wake);
      return () => {
        set.delete(wake);
        if (set.size === 0) waiters.delete(runId);
      };
    },
  };

  const app: App = {
    storeUrl: typeof options.store === 'string' ? options.store : undefined,
    task(name, fn, opts = {}) {
      if (typeof name !== 'string' || !TASK_NAME.test(name)) throw new LovageError('VALIDATION', `task name ${preview(name)} is invalid; allowed are 1-200 of A-Z a-z 0-9 _ . : - /`);
      if (typeof fn !== 'function') throw new LovageError('VALIDATION', `task ${name}: expected a function, got ${typeof fn}`);
      if (tasks.has(name)) throw new LovageError('VALIDATION', `task ${name} is registered already; task names are unique per app`);
      tasks.set(name, taskDefinition(name, fn as (...args: never[]) => unknown, opts));
      const routed = route(name);
      taskOptions.set(name, { queue: opts.queue ?? routed?.queue ?? 'default', priority: opts.priority ?? routed?.priority ?? 0 });
      return makeTask(name, app);
    },
    async submit(canvas, submitOptions = {}) {
      const key = submitOptions.idempotencyKey;
      if (key !== undefined && submitOptions.runId !== undefined) throw new LovageError('VALIDATION', 'give a run id or an idempotency key, not both (the key decides the run id)');
      const runId = key !== undefined ? idempotentRunId(key) : (submitOptions.runId ?? nanoid());
      assertRunId(runId);
      // The local clock bounds eta and expires (366 days ahead): a bound that needs no store round trip.
      const dag = compile(canvas, { limits, resolveTask: (name) => taskOptions.get(name), now: Date.now() });
      const { store, coordinator } = await open();
      if (key !== undefined && (await store.getRun(runId))) return runHandle(handleHost, runId);
      try {
        await coordinator.submit(runId, dag, await store.now(), submitOptions.transaction);
      } catch (e) {
        // Two submits with one key at once: the run id's uniqueness lets one write; the other gets its run.
        // In the caller's transaction (where the store rolled its append back in a subtransaction, so the
        // transaction goes on) only the run's own conflict counts: the key was submitted earlier in it,
        // or by another transaction that committed meanwhile. A deadlock or serialization failure is thrown.
        const raced = key !== undefined && e instanceof LovageError && e.code === 'CONCURRENCY'
          && (submitOptions.transaction === undefined || e.details['runId'] === runId);
        if (!raced) throw e;
      }
      return runHandle(handleHost, runId);
    },
    run: (id) => runHandle(handleHost, id),
    runs: runsApi(open, (id) => runHandle(handleHost, id), (runId, reason, terminate, nodes) => { for (const w of workers) w.abortRun(runId, reason, terminate, nodes); }),
    inspect: (runId, opts) => app.runs.inspect(runId, opts),
    worker(workerOptions = {}) {
      // The worker starts once the store is open; it reads the host only from then on.
      const worker = new Worker({ get store() { return resolved!.store; }, get coordinator() { return resolved!.coordinator; }, tasks, hooks }, workerOptions);
      // In a threads-pool thread the module is imported for its tasks only: the worker is never started
      // and the store never opened (the worker that owns the thread does both).
      if (inPoolThread()) return worker;
      workers.add(worker);
      void open().then(() => worker.start(), (e: unknown) => { worker.lastError = e; });
      if (resultExpires !== undefined && !pruner) {
        pruner = setInterval(() => {
          app.runs.prune({ olderThan: resultExpires, status: ['succeeded'] }).catch((e: unknown) => worker.lastError = e);
        }, Math.max(10, Math.min(resultExpires / 2, 60_000)));
        pruner.unref();
      }
      return worker;
    },
    on: (name, fn) => hooks.on(name, fn),
    async setRateLimit(task, limit) {
      if (typeof task !== 'string' || !TASK_NAME.test(task)) throw new LovageError('VALIDATION', `task name ${preview(task)} is invalid; allowed are 1-200 of A-Z a-z 0-9 _ . : - /`);
      const parsed = limit === null ? null : parseRateLimit(limit, `rate limit of task ${task}`);
      await (await open()).store.setRateLimit(task, parsed);
    },
    store: async () => (await open()).store,
    async close() {
      clearInterval(pruner);
      await Promise.all([...workers].map((w) => w.stop()));
      // A store that failed to open (bad URL...) has nothing to close; its error went to submit already.
      if (opened) await opened.then(({ store }) => store.close(), () => undefined);
    },
  };
  // What a threads-pool thread needs of the app, off the public API (see src/workers/threads.ts).
  const internals: AppInternals = { task: (name) => tasks.get(name), runInContext: (ctx, fn) => contextStorage.run(ctx, fn) };
  Object.defineProperty(app, APP_INTERNALS, { value: internals });
  return app;
}

const TASK_KEYS = new Set(['queue', 'priority', 'retry', 'autoretryFor', 'dontRetryFor', 'softTimeLimit', 'timeLimit', 'maxLeaseExpiries', 'rateLimit']);

/** A task's options, checked once at registration (VALIDATION names the option). */
function taskDefinition(name: string, fn: (...args: never[]) => unknown, opts: TaskOptions): TaskDefinition {
  if (typeof opts !== 'object' || opts === null) throw new LovageError('VALIDATION', `task ${name}: options must be an object`);
  for (const k of Object.keys(opts)) if (!TASK_KEYS.has(k)) throw new LovageError('VALIDATION', `task ${name}: unknown option "${k}"; allowed are ${[...TASK_KEYS].join(', ')}`);
  const what = `task ${name}`;
  // autoretryFor/dontRetryFor alone turn retries on (Celery's autoretry_for does).
  const retryOptions: RetryOptions | undefined = opts.retry ?? (opts.autoretryFor || opts.dontRetryFor ? {} : undefined);
  const fields = retryOptions === undefined ? undefined : retryFields({ ...retryOptions, autoretryFor: undefined, dontRetryFor: undefined }, `${what} retry`);
  const auto = opts.autoretryFor ?? retryOptions?.autoretryFor;
  const dont = opts.dontRetryFor ?? retryOptions?.dontRetryFor;
  if (auto) retryFields({ autoretryFor: auto }, what);
  if (dont) retryFields({ dontRetryFor: dont }, what);
  const maxLeaseExpiries = opts.maxLeaseExpiries ?? 3;
  if (!Number.isInteger(maxLeaseExpiries) || maxLeaseExpiries < 0 || maxLeaseExpiries > 1000) throw new LovageError('VALIDATION', `${what}: maxLeaseExpiries ${String(maxLeaseExpiries)} is invalid; allowed are integers from 0 to 1000`);
  const limits = nodeOptions({ ...(opts.softTimeLimit !== undefined ? { softTimeLimit: opts.softTimeLimit } : {}), ...(opts.timeLimit !== undefined ? { timeLimit: opts.timeLimit } : {}) }, what);
  const rateLimit = opts.rateLimit === undefined ? undefined : parseRateLimit(opts.rateLimit, `${what} rateLimit`);
  return {
    fn, maxLeaseExpiries,
    ...(rateLimit ? { rateLimit } : {}),
    ...(fields ? { retry: fields } : {}),
    ...(auto ? { autoretryFor: auto } : {}),
    ...(dont ? { dontRetryFor: dont } : {}),
    ...(limits?.softTimeLimitMs !== undefined ? { softTimeLimitMs: limits.softTimeLimitMs } : {}),
    ...(limits?.timeLimitMs !== undefined ? { timeLimitMs: limits.timeLimitMs } : {}),
  };
}

/** The route lookup of `routes` (checked now: a bad pattern or option is a VALIDATION error). */
function compileRoutes(routes: AppOptions['routes']): (task: string) => { queue?: string; priority?: number } | undefined {
  if (routes === undefined) return () => undefined;
  if (typeof routes !== 'object' || routes === null || Array.isArray(routes)) throw new LovageError('VALIDATION', 'routes must be an object like { "emails.*": { queue: "mail" } }');
  const table = Object.entries(routes).map(([pattern, target]) => {
    if (!/^[A-Za-z0-9_.:\-/*]{1,200}$/.test(pattern)) throw new LovageError('VALIDATION', `route ${preview(pattern)} is invalid; allowed are task names with * wildcards`);
    if (typeof target !== 'object' || target === null) throw new LovageError('VALIDATION', `route ${pattern}: expected { queue?, priority? }`);
    for (const k of Object.keys(target)) if (k !== 'queue' && k !== 'priority') throw new LovageError('VALIDATION', `route ${pattern}: unknown option "${k}"; allowed are queue, priority`);
    const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    return { re, target };
  });
  return (task) => table.find((r) => r.re.test(task))?.target;
}

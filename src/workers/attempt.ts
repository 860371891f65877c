// One attempt of a claimed node: the checks that may refuse to start it, the task under its time
// limits (in this thread or in the threads pool), and the completion its end becomes. The worker
// decides when an attempt starts and records its completion.
import { assertJson, type Json } from '../canvas/json.ts';
import { parseDuration } from '../app/duration.ts';
import { LovageError } from '../errors.ts';
import type { ClaimedNode, EventStore } from '../eventstore/store.ts';
import { contextStorage, type TaskContext } from './context.ts';
import type { Completion } from './coordinator.ts';
import { errorInfo, limitsFor, planFailure, RetryRequest, SoftTimeLimitExceeded, TaskExpiredError, TimeLimitExceeded, timerAfter, WorkerLostError, type TaskDefinition } from './execution.ts';
import type { HookEmitter } from './hooks.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { ThreadPool, ThreadRun } from './threads.ts';

/** What an attempt needs of its worker (made once, at the worker's start). */
export interface AttemptHost {
  /** The worker's name (in errors). */
  readonly name: string;
  readonly store: EventStore;
  /** Lease length, ms (`ctx.heartbeat` extends the lease by this much). */
  readonly leaseMs: number;
  /** Global rate limits. */
  readonly limiter: RateLimiter;
  /** The threads pool, or undefined for the async pool. */
  readonly pool: ThreadPool | undefined;
  /** The app's hooks; a hook that throws is reported, never fails the task. */
  readonly hooks: HookEmitter | undefined;
  /** Reports an error the worker survives (see WorkerOptions.onError). */
  readonly report: (error: unknown) => void;
}

/** A running node; its AbortController is made only if the task reads `signal` (most never do). */
export class InFlight {
  #controller: AbortController | undefined;
  #reason: unknown;
  #aborted = false;
  /** In the threads pool, the task in its thread: an abort is passed on to the thread's signal. */
  #thread: ThreadRun | undefined;
  constructor(readonly node: ClaimedNode) {}
  get thread(): ThreadRun | undefined {
    return this.#thread;
  }
  set thread(run: ThreadRun) {
    this.#thread = run;
    if (this.#aborted) run.abort(this.#reason);
  }
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#thread?.abort(reason);
  }
}

/**
 * An attempt's end: a value, a thrown error, handed back unstarted for `defer` ms (a rate limit), or
 * `lost` (its pool thread died of an error it did not throw): handed back to run again, counted like a lost lease.
 */
export type Result = { ok: true; value: Json; expired?: true } | { ok: false; thrown: unknown } | { ok: false; defer: number; reason: string } | { ok: false; lost: string };

/** How long a node is handed back when the store did not answer the checks before its start. */
const UNCHECKED_DEFER_MS = 1000;

// Module-level helpers for the per-task hot path: under tsx (esbuild keepNames) every named closure
// made per task costs a defineProperty call.

/** The context of the task of `flight` (see taskContext()). */
export function contextOf(host: AttemptHost, flight: InFlight): TaskContext {
  return new AttemptContext(host, flight);
}

/**
 * A running attempt's TaskContext: its plain fields are set at once (a class of one shape, cheap to
 * make for every task), the rest is made on first use: no object literal with an accessor and no
 * heartbeat closure per task. `heartbeat` is a getter returning a bound function, so
 * `const { heartbeat } = taskContext()` works like `signal` does.
 */
class AttemptContext implements TaskContext {
  readonly runId: string;
  readonly nodeId: string;
  readonly task: string;
  readonly attempt: number;
  readonly idempotencyKey: string;
  readonly #host: AttemptHost;
  readonly #flight: InFlight;
  #heartbeat: (() => Promise<boolean>) | undefined;
  constructor(host: AttemptHost, flight: InFlight) {
    const node = flight.node;
    this.runId = node.runId;
    this.nodeId = node.nodeId;
    this.task = node.task;
    this.attempt = node.attempt;
    this.idempotencyKey = `${node.runId}/${node.nodeId}`;
    this.#host = host;
    this.#flight = flight;
  }
  get signal(): AbortSignal {
    return this.#flight.signal;
  }
  get heartbeat(): () => Promise<boolean> {
    return (this.#heartbeat ??= heartbeatOf(this.#host.store, this.#flight.node, this.#host.leaseMs));
  }
  get retry(): TaskContext['retry'] {
    return retryAttempt;
  }
}

/**
 * One attempt: the checks that may refuse to run it (expired, lost too often, rate limited), then the
 * task under its time limits. Synchronous where it can be: a task that returns without a promise, with
 * no check that needs the store and no time limit, gets its Result at once (no promise per step).
 */
export function runAttempt(host: AttemptHost, def: TaskDefinition | undefined, node: ClaimedNode, ctx: TaskContext, flight: InFlight): Result | Promise<Result> {
  const startedAt = node.events.at(-1)?.event.at ?? Date.now();
  const expiresAt = node.options?.expiresAt;
  if (expiresAt !== undefined && startedAt > expiresAt) {
    if (node.options?.expireSkip) return { ok: true, value: null, expired: true };
    return { ok: false, thrown: new TaskExpiredError(`node ${node.nodeId} expired at ${new Date(expiresAt).toISOString()} before it started (claimed at ${new Date(startedAt).toISOString()}); it was not run`) };
  }
  if (def && node.events.some((e) => e.event.type === 'NodeLeaseExpired')) return afterLeaseCheck(host, def, node, ctx, flight);
  return afterChecks(host, def, node, ctx, flight);
}

/** A node whose lease ran out before: how often (the store knows) decides whether it runs again. */
async function afterLeaseCheck(host: AttemptHost, def: TaskDefinition, node: ClaimedNode, ctx: TaskContext, flight: InFlight): Promise<Result> {
  let lost: number;
  try {
    lost = await lostLeases(host.store, node);
  } catch (e) {
    return unchecked(host, node, e);
  }
  if (lost > def.maxLeaseExpiries) {
    return { ok: false, thrown: new WorkerLostError(`node ${node.nodeId}'s lease ran out ${lost} times (its worker died or stalled, or its pool thread died of an error it did not throw, each time); maxLeaseExpiries is ${def.maxLeaseExpiries}, so it is not run again`) };
  }
  return afterChecks(host, def, node, ctx, flight);
}

function afterChecks(host: AttemptHost, def: TaskDefinition | undefined, node: ClaimedNode, ctx: TaskContext, flight: InFlight): Result | Promise<Result> {
  if (!def) return { ok: false, thrown: new LovageError('NOT_FOUND', `task "${node.task}" is not registered in worker ${host.name}; register it with app.task("${node.task}", fn) in the worker's app`) };
  if (!host.limiter.freeNow(node.task, def.rateLimit)) return afterRateLimit(host, def, node, ctx, flight);
  return start(host, def, node, ctx, flight);
}

/** A task with a rate limit (or under a run-time override): a permit first, or the node is handed back. */
async function afterRateLimit(host: AttemptHost, def: TaskDefinition, node: ClaimedNode, ctx: TaskContext, flight: InFlight): Promise<Result> {
  let wait: number;
  try {
    wait = await host.limiter.wait(node.task, def.rateLimit);
  } catch (e) {
    return unchecked(host, node, e);
  }
  if (wait > 0) return { ok: false, defer: wait, reason: `rate limit of task ${node.task}${def.rateLimit ? ` (${def.rateLimit.count} per ${def.rateLimit.periodMs} ms, or its run-time override)` : ' (run-time override)'}` };
  return start(host, def, node, ctx, flight);
}

function start(host: AttemptHost, def: TaskDefinition, node: ClaimedNode, ctx: TaskContext, flight: InFlight): Result | Promise<Result> {
  // In the threads pool, once a thread starts the task (one cancelled while it waits never starts).
  if (!host.pool && listens(host, 'taskPrerun')) emit(host, 'taskPrerun', infoOf(node));
  const limits = limitsFor(def, node.options);
  // The common case, kept lean: in-process, no time limit.
  if (!host.pool && limits.soft === undefined && limits.hard === undefined) return call(def.fn, node, ctx);
  return limited(host, def, node, ctx, flight, limits);
}

/** The task in the threads pool or under time limits. */
async function limited(host: AttemptHost, def: TaskDefinition, node: ClaimedNode, ctx: TaskContext, flight: InFlight, limits: ReturnType<typeof limitsFor>): Promise<Result> {
  const timers: NodeJS.Timeout[] = [];
  let softFired = false;
  let settled = false;
  let hardLimit: (r: Result) => void = () => undefined;
  const hard = new Promise<Result>((resolve) => { hardLimit = resolve; });
  /** The time limits start: at once in the async pool, when a thread starts the task in the threads pool. */
  const arm = () => {
    if (settled) return;
    if (limits.soft !== undefined) {
      timerAfter(limits.soft, () => {
        softFired = true;
        flight.abort(new SoftTimeLimitExceeded(`task ${node.task} ran past its soft time limit of ${limits.soft} ms`));
      }, timers);
    }
    if (limits.hard !== undefined) {
      timerAfter(limits.hard, () => {
        // The async pool cannot stop the task's code: its outcome is decided now and whatever it
        // returns later is dropped. The threads pool terminates the task's thread.
        const error = new TimeLimitExceeded(`task ${node.task} ran past its time limit of ${limits.hard} ms${flight.thread ? '; its thread was terminated' : ''}`);
        flight.abort(error);
        flight.thread?.terminate(error);
        hardLimit({ ok: false, thrown: error });
      }, timers);
    }
  };
  let run: Promise<Result>;
  if (host.pool) {
    const thread = host.pool.run({ key: node.leaseToken, task: node.task, args: node.args, ctx: { runId: ctx.runId, nodeId: ctx.nodeId, task: ctx.task, attempt: ctx.attempt, idempotencyKey: ctx.idempotencyKey }, heartbeat: ctx.heartbeat });
    flight.thread = thread;
    void thread.started.then(() => {
      if (listens(host, 'taskPrerun')) emit(host, 'taskPrerun', infoOf(node));
      arm();
    });
    run = thread.result;
  } else {
    run = Promise.resolve(call(def.fn, node, ctx));
    arm();
  }
  try {
    const result = await Promise.race(limits.hard !== undefined ? [run, hard] : [run]);
    if ('lost' in result) return await afterLost(host, def, node, result.lost);
    // A task that gave up because its soft limit aborted it failed by the soft limit.
    if (!result.ok && 'thrown' in result && softFired && isAbort(result.thrown)) return { ok: false, thrown: new SoftTimeLimitExceeded(`task ${node.task} was stopped by its soft time limit of ${limits.soft} ms`) };
    return result;
  } finally {
    settled = true;
    for (const t of timers) clearTimeout(t);
  }
}

/** The completion to record for an attempt that ended with `result`, at `at` (store clock). */
export function completionOf(def: TaskDefinition | undefined, node: ClaimedNode, result: Result, at: number): Completion {
  if ('defer' in result) {
    return { type: 'Defer', runId: node.runId, nodeId: node.nodeId, leaseToken: node.leaseToken, until: at + result.defer, reason: result.reason, at };
  }
  if ('lost' in result) return { type: 'Release', runId: node.runId, nodeId: node.nodeId, leaseToken: node.leaseToken, reason: result.lost, lost: true, at };
  let outcome: Extract<Completion, { type: 'Complete' }>['outcome'];
  if (result.ok) {
    outcome = result;
  } else {
    const plan = planFailure(def, node.options, node.attempt, 'thrown' in result ? result.thrown : undefined, at);
    outcome = { ok: false, error: errorInfo(plan.error), ...(plan.retryAt !== undefined ? { retryAt: plan.retryAt } : {}) };
  }
  return { type: 'Complete', runId: node.runId, nodeId: node.nodeId, attempt: node.attempt, leaseToken: node.leaseToken, outcome, at };
}

/** Whether a hook listens to how attempts end (then the worker keeps what `announce` needs until the outcome is recorded). */
export function announced(host: AttemptHost): boolean {
  return listens(host, 'taskPostrun') || listens(host, 'taskRetry') || listens(host, 'taskFailure');
}

/**
 * Tells the hooks how an attempt ended, once its completion `c` was recorded as the node's outcome
 * (never for one fenced or dropped: a cancelled run's attempt that failed is not "retried"), with
 * what was recorded. `durationMs`: the attempt's run time.
 */
export function announce(host: AttemptHost, node: ClaimedNode, c: Completion, durationMs: number): void {
  if (c.type !== 'Complete') return;
  const outcome = c.outcome;
  if (outcome.ok) {
    // An expired node skipped (onExpire 'skip') never ran: no taskPostrun.
    if (!outcome.expired && listens(host, 'taskPostrun')) emit(host, 'taskPostrun', { ...infoOf(node), state: 'succeeded', result: structuredClone(outcome.value), durationMs });
    return;
  }
  const { error, retryAt } = outcome;
  if (listens(host, 'taskPostrun')) emit(host, 'taskPostrun', { ...infoOf(node), state: retryAt !== undefined ? 'retry' : 'failed', error: { ...error }, durationMs });
  if (retryAt !== undefined) {
    if (listens(host, 'taskRetry')) emit(host, 'taskRetry', { ...infoOf(node), error: { ...error }, retryAt });
  } else if (listens(host, 'taskFailure')) emit(host, 'taskFailure', { ...infoOf(node), error: { ...error } });
}

function call(fn: (...args: never[]) => unknown, node: ClaimedNode, ctx: TaskContext): Result | Promise<Result> {
  let value: unknown;
  try {
    value = contextStorage.run(ctx, fn, ...(node.args as never[]));
  } catch (e) {
    return { ok: false, thrown: e };
  }
  if (typeof (value as PromiseLike<unknown> | null)?.then === 'function') {
    return Promise.resolve(value).then((v) => returned(node, v), (e: unknown) => ({ ok: false, thrown: e }));
  }
  return returned(node, value);
}

/** The Result of a task that returned `value` (undefined is null); a value that is not JSON fails it. */
function returned(node: ClaimedNode, value: unknown): Result {
  const json = value ?? null;
  try {
    assertJson(json, `result of task ${node.task}`);
  } catch (e) {
    return { ok: false, thrown: e };
  }
  return { ok: true, value: json as Json };
}

/**
 * A check before the start needed the store and it did not answer (say it is restarting): the node is
 * handed back unstarted for a second (NodeDeferred, the attempt does not count), never failed for it.
 */
function unchecked(host: AttemptHost, node: ClaimedNode, error: unknown): Result {
  host.report(error);
  return { ok: false, defer: UNCHECKED_DEFER_MS, reason: `the store did not answer the checks before node ${node.nodeId} started (${error instanceof Error ? error.message : String(error)}); it was not run` };
}

/**
 * An attempt whose pool thread died of an error it did not throw: handed back to run again (a lost
 * worker), unless this loss is one more than `maxLeaseExpiries` allows: then it fails with
 * WorkerLostError, as a node whose lease ran out too often does. If the store does not answer, it is
 * handed back (the next claim's check counts this loss too).
 */
async function afterLost(host: AttemptHost, def: TaskDefinition, node: ClaimedNode, reason: string): Promise<Result> {
  let lost: number;
  try {
    lost = (await lostLeases(host.store, node)) + 1;
  } catch (e) {
    host.report(e);
    return { ok: false, lost: reason };
  }
  if (lost > def.maxLeaseExpiries) {
    return { ok: false, thrown: new WorkerLostError(`node ${node.nodeId}'s worker was lost ${lost} times (this time ${reason}); maxLeaseExpiries is ${def.maxLeaseExpiries}, so it is not run again`) };
  }
  return { ok: false, lost: reason };
}

/**
 * How many times the node's worker was lost since it was last reset (read from the log: rare): its
 * lease ran out, or it was handed back `lost` (its pool thread died of an error it did not throw).
 */
async function lostLeases(store: EventStore, node: ClaimedNode): Promise<number> {
  let lost = 0;
  for (const { event } of await store.readStream(node.runId)) {
    if ((event.type === 'NodeLeaseExpired' || (event.type === 'NodeReleased' && event.lost)) && event.nodeId === node.nodeId) lost++;
    else if (event.type === 'WorkflowResumed' && event.reset.includes(node.nodeId)) lost = 0;
  }
  return lost;
}

/** Whether any hook listens to `name` (so that a task's payload is built only then). */
function listens(host: AttemptHost, name: Parameters<HookEmitter['has']>[0]): boolean {
  return host.hooks?.has(name) === true;
}

function emit(host: AttemptHost, ...args: Parameters<HookEmitter['emit']>): void {
  try {
    host.hooks?.emit(...args);
  } catch (e) {
    host.report(e);
  }
}

/**
 * What hooks are told of a node. Hooks get copies (of the args here; of a result or an error where
 * they are told one): a hook that writes to its payload changes neither the task's input nor what
 * is recorded. Made only when a hook listens, so the copies cost nothing otherwise.
 */
function infoOf(node: ClaimedNode): { runId: string; nodeId: string; task: string; args: readonly Json[]; attempt: number } {
  return { runId: node.runId, nodeId: node.nodeId, task: node.task, args: structuredClone(node.args), attempt: node.attempt };
}

/** `ctx.heartbeat` of a node. */
function heartbeatOf(store: EventStore, node: ClaimedNode, leaseMs: number): () => Promise<boolean> {
  return async () => (await store.extend([node], leaseMs))[0] === true;
}

/** `ctx.retry`: ends the attempt with a retry request. */
function retryAttempt(options: { countdown?: number | string; error?: unknown } = {}): never {
  throw new RetryRequest(options.countdown === undefined ? undefined : parseDuration(options.countdown, 'ctx.retry countdown'), options.error);
}

function isAbort(e: unknown): boolean {
  return e instanceof SoftTimeLimitExceeded || (e instanceof Error && (e.name === 'AbortError' || e.cause instanceof SoftTimeLimitExceeded));
}

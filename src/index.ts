/**
 * Lovage: Celery's canvas for TypeScript, as an event-sourced state machine.
 *
 * @example
 * import { createApp, chain, chord, group } from 'lovage'
 * const app = createApp({ store: 'sqlite:./lovage.db' })
 * const add = app.task('add', (a: number, b: number) => a + b)
 * const xsum = app.task('xsum', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
 * app.worker()
 * const run = await chain(add.s(1, 0), chord(group(add.s(1), add.s(2)), xsum.s())).applyAsync()
 * console.log(await run.get()) // 5
 */
export { createApp, type App, type AppOptions } from './app/app.ts';
export type { Task, TaskOptions, Signature, TaskSignature } from './app/task.ts';
export type { RunsApi } from './app/runs.ts';
export { parseDuration } from './app/duration.ts';
export { parseRateLimit, type RateLimit } from './app/rate-limit.ts';
export { verifyRun, type VerifyReport, type VerifyDifference } from './engine/verify.ts';
export { chain, group, chord, type ChordOptions } from './canvas/combinators.ts';
export { compile, defaultLimits, type CompileLimits } from './canvas/compile.ts';
export type { CollectMember, Dag, DagNode, DagScope, Expr, ExecOptions, NodeOptions, RetryPolicy } from './canvas/dag.ts';
export { retryDelay, type ErrorMatcher, type ExecutionOptions, type RetryOptions } from './canvas/options.ts';
export type { Json } from './canvas/json.ts';
export type { ApplyOptions, CallbackOptions, RunHandle, RunStatus } from './canvas/submit.ts';
export type { Canvas, CanvasData, InOf, LinkErrorInfo, MemberOutcome, OnMemberFailure, OutOf, SignatureOptions } from './canvas/types.ts';
export { decide, type Command } from './engine/decide.ts';
export type { StoredEvent, TaskErrorInfo, WorkflowEvent } from './engine/events.ts';
export { evolve, fold, initialState, type NodeState, type RunState } from './engine/state.ts';
export { LovageError, type ErrorCode } from './errors.ts';
export { MemoryStore } from './eventstore/memory.ts';
export { SqliteStore, type SqliteStoreOptions } from './eventstore/sqlite.ts';
export type { EventStore, RunFilter, RunRecord } from './eventstore/store.ts';
export { openStore } from './eventstore/url.ts';
export { taskContext, type TaskContext } from './workers/context.ts';
export type { Worker, WorkerOptions } from './workers/worker.ts';
export { MaxRetriesExceededError, NonRetryableError, SoftTimeLimitExceeded, TaskExpiredError, TimeLimitExceeded, WorkerLostError } from './workers/execution.ts';
export type { HookName, HookPayloads } from './workers/hooks.ts';

// The `threads` pool: tasks run in worker threads that import test/fixtures/threads-app.ts. A hard time
// limit terminates the thread (even a loop that never yields), threads are recycled after
// maxTasksPerChild tasks, and results, errors (by name), ctx.retry, taskContext and the soft limit
// all cross the thread. Then `lovage worker --pool threads` in a real process. Thread ids come from
// the tasks themselves (`worker_threads.threadId`).
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseWorkerArgs } from '../src/cli/worker-command.ts';
import type { WorkflowEvent } from '../src/engine/events.ts';
import { createApp, type App, type WorkerOptions } from '../src/index.ts';
import { defineThreadTasks } from './fixtures/thread-tasks.ts';
import { WorkerProcs } from './support/worker-procs.ts';

const dir = mkdtempSync(join(tmpdir(), 'lovage-threads-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const appModule = join(import.meta.dirname, 'fixtures', 'threads-app.ts');
const stores: [string, () => string][] = [['sqlite', () => `sqlite:${join(dir, `t${n++}.db`)}`], ['memory', () => 'memory:']];

type Ev<T extends WorkflowEvent['type']> = Extract<WorkflowEvent, { type: T }>;
const ofType = <T extends WorkflowEvent['type']>(es: WorkflowEvent[], type: T): Ev<T>[] => es.filter((e): e is Ev<T> => e.type === type);
const timeoutMs = 30_000;

for (const [name, url] of stores) {
  describe(`threads pool on ${name}`, () => {
    let app: App;
    let t: ReturnType<typeof defineThreadTasks>;
    beforeEach(() => {
      app = createApp({ store: url() });
      t = defineThreadTasks(app);
    });
    afterEach(() => app.close());
    const events = async (runId: string): Promise<WorkflowEvent[]> => (await app.runs.history(runId)).map((s) => s.event);
    const worker = (options: WorkerOptions = {}) => app.worker({ pool: 'threads', appModule, concurrency: 1, pollMs: 10, ...options });

    it('a CPU-bound task past its time limit fails with TimeLimitExceeded: its thread is terminated, the worker runs on in a fresh one', async () => {
      worker();
      const before = await (await t.whoami.delay()).get({ timeoutMs });
      expect(before.threadId).toBeGreaterThan(0); // not the main thread
      const marks = join(dir, `marks-${name}`);
      writeFileSync(marks, '');
      const run = await t.spin.delay(marks);
      await expect(run.get({ timeoutMs })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      const failed = ofType(await events(run.id), 'NodeFailed');
      expect(failed).toMatchObject([{ error: { name: 'TimeLimitExceeded', message: 'task spin ran past its time limit of 200 ms; its thread was terminated' } }]);
      // The loop ran in the warm thread and it really stopped: the file it grows stays as it is.
      const [spunIn, dots] = readFileSync(marks, 'utf8').split('\n');
      expect(Number(spunIn)).toBe(before.threadId);
      expect(dots!.length).toBeGreaterThan(0);
      await sleep(50); // terminate() stops the thread at its next interrupt check, not synchronously
      const size = statSync(marks).size;
      await sleep(400);
      expect(statSync(marks).size).toBe(size);
      // The worker goes on, in another thread.
      expect(await (await t.add.delay(2, 3)).get({ timeoutMs })).toBe(5);
      const after = await (await t.whoami.delay()).get({ timeoutMs });
      expect(after.threadId).not.toBe(before.threadId);
      expect(after.pid).toBe(process.pid);
    });

    it('maxTasksPerChild: 2 replaces each thread after two tasks, so 5 tasks run in at least 3 threads', async () => {
      worker({ maxTasksPerChild: 2 });
      const runs = await Promise.all([1, 2, 3, 4, 5].map(() => t.whoami.delay()));
      const seen = await Promise.all(runs.map((r) => r.get({ timeoutMs })));
      const threads = new Set(seen.map((s) => s.threadId));
      expect(threads.size).toBeGreaterThanOrEqual(3);
      for (const s of seen) expect(s.ran).toBeLessThanOrEqual(2); // no thread ran a third task
    });

    it('results and thrown errors cross the thread with their names; retries match by name', async () => {
      worker({ concurrency: 2 });
      expect(await (await t.add.delay(1, 2)).get({ timeoutMs })).toBe(3);
      const type = await t.boom.delay('type');
      await expect(type.get({ timeoutMs })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      const typeEvents = await events(type.id);
      // Retried (autoretryFor lists 'Transient' only)? No: TypeError fails at once, name and stack kept.
      expect(ofType(typeEvents, 'NodeRetryScheduled')).toEqual([]);
      const [typeFailed] = ofType(typeEvents, 'NodeFailed');
      expect(typeFailed!.error).toMatchObject({ name: 'TypeError', message: 'a bug' });
      expect(typeFailed!.error.stack).toContain('thread-tasks.ts');
      const fatal = await t.boom.delay('fatal');
      await expect(fatal.get({ timeoutMs })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(ofType(await events(fatal.id), 'NodeFailed')).toMatchObject([{ attempt: 1, error: { name: 'NonRetryableError', message: 'bad input' } }]);
      const transient = await t.boom.delay('transient');
      expect(await transient.get({ timeoutMs })).toBe('transient at 2');
      expect(ofType(await events(transient.id), 'NodeRetryScheduled')).toMatchObject([{ attempt: 1, error: { name: 'Transient', message: 'transient at 1' } }]);
      const value = await t.boom.delay('value');
      await expect(value.get({ timeoutMs })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(ofType(await events(value.id), 'NodeFailed')).toMatchObject([{ error: { name: 'NonError', message: 'a non-Error value was thrown: {"why":"not an Error"}' } }]);
      const dated = await t.dated.delay();
      await expect(dated.get({ timeoutMs })).rejects.toThrow(/result of task dated: an instance of Date/);
      // process.exit() in a task ends its thread only: the task fails with WorkerLostError, the worker runs on.
      const quit = await t.quit.delay();
      await expect(quit.get({ timeoutMs })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(ofType(await events(quit.id), 'NodeFailed')).toMatchObject([{ error: { name: 'WorkerLostError', message: expect.stringContaining('exited with code 3') } }]);
      // An error thrown outside the task's promise ends the thread too; it is the task's error.
      const stray = await t.stray.delay();
      await expect(stray.get({ timeoutMs })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(ofType(await events(stray.id), 'NodeFailed')).toMatchObject([{ error: { name: 'RangeError', message: 'thrown by a stray timer' } }]);
      expect(await (await t.add.delay(4, 5)).get({ timeoutMs })).toBe(9);
    });

    it('ctx.retry in a thread retries with its countdown, and fails with its error once retries are used up', async () => {
      worker();
      const polite = await t.polite.delay();
      expect(await polite.get({ timeoutMs })).toBe(3);
      const retries = ofType(await events(polite.id), 'NodeRetryScheduled');
      expect(retries.map((r) => r.retryAt - r.at)).toEqual([30, 30]);
      expect(retries.map((r) => r.error.message)).toEqual(['busy at 1', 'busy at 2']);
      const stubborn = await t.stubbornRetry.delay();
      await expect(stubborn.get({ timeoutMs })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      const es = await events(stubborn.id);
      expect(ofType(es, 'NodeRetryScheduled').map((r) => r.retryAt - r.at)).toEqual([10]);
      expect(ofType(es, 'NodeFailed')).toMatchObject([{ attempt: 2, error: { name: 'RangeError', message: 'still busy at 2' } }]);
    });

    it('taskContext() works in the thread, and a soft time limit aborts the signal there', async () => {
      worker({ concurrency: 2 });
      const run = await t.context.delay();
      const ctx = await run.get({ timeoutMs });
      expect(ctx).toMatchObject({ runId: run.id, nodeId: '0', task: 'context', attempt: 1, idempotencyKey: `${run.id}/0`, aborted: false, heartbeat: true });
      expect(ctx.threadId).toBeGreaterThan(0);
      const sleepy = await t.sleepy.delay();
      await expect(sleepy.get({ timeoutMs })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(ofType(await events(sleepy.id), 'NodeFailed')).toMatchObject([{ error: { name: 'SoftTimeLimitExceeded' } }]);
      expect(await (await t.tidy.delay()).get({ timeoutMs })).toMatch(/^cleaned up after SoftTimeLimitExceeded in thread [1-9]\d*$/);
    });

    it('a task waiting for a free thread whose run is cancelled never starts: its outcome is fenced, the queue runs on', async () => {
      const prerun: string[] = [];
      app.on('taskPrerun', (p) => void prerun.push(p.task));
      worker({ concurrency: 2, threads: 1 });
      expect(await (await t.block.delay(1)).get({ timeoutMs })).toBe(1); // the thread is warm
      const busy = await t.block.delay(800);
      while (!(await events(busy.id)).some((e) => e.type === 'NodeStarted')) await sleep(10);
      const file = join(dir, `effect-${name}`);
      const run = await t.effect.delay(file);
      // Claimed, waiting in the pool for the only thread.
      while (!(await events(run.id)).some((e) => e.type === 'NodeStarted')) await sleep(10);
      await app.runs.cancel(run.id, 'stop before it starts');
      await expect(run.get({ timeoutMs })).rejects.toMatchObject({ code: 'CANCELLED' });
      expect(await busy.get({ timeoutMs })).toBe(800);
      await sleep(300);
      expect(existsSync(file)).toBe(false);
      expect(ofType(await events(run.id), 'NodeCompletionFenced')).toMatchObject([{ outcome: 'failed' }]);
      expect(prerun).toEqual(['block', 'block']); // the effect never started
      expect(await (await t.add.delay(1, 1)).get({ timeoutMs })).toBe(2);
    });

    it('ctx.heartbeat() in a thread extends the lease as in the async pool: false after a cancel', async () => {
      worker();
      const file = join(dir, `heartbeat-${name}`);
      const run = await t.heartbeatAfterAbort.delay(file);
      while (!existsSync(`${file}.started`)) await sleep(10);
      await app.runs.cancel(run.id, 'stop');
      while (!existsSync(file)) await sleep(10);
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ reason: 'CANCELLED', heartbeat: false });
    });

    it("an error a finished task's timer throws later ends its thread but is not the next task's failure: that one runs again, counted like a lost lease", async () => {
      const errors: string[] = [];
      worker({ onError: (e) => void errors.push(String(e)) });
      expect(await (await t.leaky.delay()).get({ timeoutMs })).toBe('leaky done');
      const run = await t.block.delay(500); // in the same thread when leaky's timer throws
      expect(await run.get({ timeoutMs })).toBe(500);
      const es = await events(run.id);
      expect(ofType(es, 'NodeReleased')).toMatchObject([{ attempt: 1, lost: true, reason: expect.stringContaining('RangeError: late, from leaky') }]);
      expect(ofType(es, 'NodeSucceeded')).toMatchObject([{ attempt: 2 }]);
      expect(ofType(es, 'NodeFailed')).toEqual([]);
      expect(errors).toEqual([expect.stringMatching(/a pool thread died of an error task leaky \(an earlier task in that thread\) left behind: RangeError: late, from leaky; task block, which was running there, did not throw it and runs again/)]);
      // Counted like a lost lease: with maxLeaseExpiries 0 the first loss fails the node with WorkerLostError.
      expect(await (await t.leaky.delay()).get({ timeoutMs })).toBe('leaky done');
      const fragile = await t.fragile.delay(500);
      await expect(fragile.get({ timeoutMs })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(ofType(await events(fragile.id), 'NodeFailed')).toMatchObject([{ attempt: 1, error: { name: 'WorkerLostError', message: expect.stringContaining('maxLeaseExpiries is 0') } }]);
    });

    it.runIf(name === 'sqlite')('an app module that calls app.worker() as it loads: in a thread the call is inert and its store is never opened', async () => {
      const inert = join(dir, 'inert.db');
      process.env['LOVAGE_INERT_STORE'] = `sqlite:${inert}`;
      try {
        worker({ appModule: join(import.meta.dirname, 'fixtures', 'threads-inert-app.ts') });
        expect(await (await t.add.delay(20, 22)).get({ timeoutMs })).toBe(42);
        expect(existsSync(inert)).toBe(false);
      } finally {
        delete process.env['LOVAGE_INERT_STORE'];
      }
    });
  });
}

describe('threads pool options', () => {
  const app = createApp({ store: 'memory:' });
  afterAll(() => app.close());

  it('are checked when the worker is made, naming the option', () => {
    expect(() => app.worker({ pool: 'threads' })).toThrow(/worker appModule is required with pool 'threads'/);
    expect(() => app.worker({ pool: 'threads', appModule: join(dir, 'missing.ts') })).toThrow(/worker appModule ".*missing\.ts": no such file/);
    expect(() => app.worker({ pool: 'threads', appModule, concurrency: 2, threads: 3 })).toThrow(/worker threads \(3\) must be at most concurrency \(2\)/);
    expect(() => app.worker({ pool: 'threads', appModule, maxTasksPerChild: 0 })).toThrow(/worker maxTasksPerChild must be an integer ≥ 1, got 0/);
    expect(() => app.worker({ threads: 2 })).toThrow(/worker threads applies to pool 'threads' only/);
    expect(() => app.worker({ appModule })).toThrow(/worker appModule applies to pool 'threads' only/);
    expect(() => app.worker({ pool: 'fork' as never })).toThrow(/worker pool "fork" is invalid; allowed are 'async', 'threads'/);
  });

  it('lovage worker flags: --pool, --threads, --max-tasks-per-child', () => {
    const base = ['--app', 'test/fixtures/threads-app.ts'];
    expect(parseWorkerArgs([...base, '--pool', 'threads', '-c', '4', '--threads', '2', '--max-tasks-per-child', '10'])).toMatchObject({
      options: { pool: 'threads', appModule: appModule, concurrency: 4, threads: 2, maxTasksPerChild: 10 },
    });
    expect(parseWorkerArgs(base)).not.toHaveProperty('options.pool');
    expect(() => parseWorkerArgs([...base, '--pool', 'fork'])).toThrow(/--pool "fork" is invalid; allowed are async, threads/);
    expect(() => parseWorkerArgs([...base, '--threads', '2'])).toThrow(/--threads applies to --pool threads only/);
    expect(() => parseWorkerArgs([...base, '--max-tasks-per-child', '2'])).toThrow(/--max-tasks-per-child applies to --pool threads only/);
    expect(() => parseWorkerArgs([...base, '-P', 'threads', '-c', '2', '--threads', '3'])).toThrow(/--threads must be an integer from 1 to --concurrency \(2\), got 3/);
    expect(() => parseWorkerArgs([...base, '-P', 'threads', '--max-tasks-per-child', '0'])).toThrow(/--max-tasks-per-child must be an integer ≥ 1, got "0"/);
  });
});

describe('threads pool with a module that exports no app', () => {
  const app = createApp({ store: 'memory:' });
  const t = defineThreadTasks(app);
  afterAll(() => app.close());

  it('fails the tasks with the reason, and says it once through onError', async () => {
    const errors: unknown[] = [];
    app.worker({ pool: 'threads', appModule: join(import.meta.dirname, 'fixtures', 'thread-tasks.ts'), concurrency: 1, pollMs: 10, onError: (e) => errors.push(e) });
    const run = await t.add.delay(1, 1);
    await expect(run.get({ timeoutMs })).rejects.toThrow(/LovageError: threads pool: the app module file:.*thread-tasks\.ts failed to load in a thread: LovageError: appModule .* the module exports no app/);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/failed to load in a thread/);
  });
});

describe('lovage worker --pool threads', () => {
  const store = `sqlite:${join(dir, 'cli.db')}`;
  const procs = new WorkerProcs(store, 'test/fixtures/threads-app.ts');
  const app = createApp({ store });
  const t = defineThreadTasks(app);
  afterAll(async () => {
    await procs.killAll();
    await app.close();
  });

  it('runs tasks in threads, kills a CPU-bound one at its time limit, recycles threads, and stops on SIGTERM', async () => {
    const proc = await procs.start('threads-1', ['--pool', 'threads', '-c', '2', '--threads', '1', '--max-tasks-per-child', '2'], true);
    expect(proc.output).toMatch(/lovage worker threads-1 started: queues default, concurrency 2, pool threads \(1 thread, each replaced after 2 tasks\), store sqlite:/);
    expect(await (await t.add.delay(1, 2)).get({ timeoutMs })).toBe(3);
    const marks = join(dir, 'marks-cli');
    writeFileSync(marks, '');
    const spin = await t.spin.delay(marks);
    await expect(spin.get({ timeoutMs })).rejects.toThrow(/TimeLimitExceeded: task spin ran past its time limit of 200 ms; its thread was terminated/);
    const seen: { threadId: number; pid: number; ran: number }[] = [];
    for (let i = 0; i < 3; i++) seen.push(await (await t.whoami.delay()).get({ timeoutMs }));
    expect(new Set(seen.map((s) => s.pid))).toEqual(new Set([proc.child.pid]));
    expect(seen.map((s) => s.ran)).toEqual([1, 2, 1]); // a fresh thread after the kill, replaced after two tasks
    expect(seen[2]!.threadId).not.toBe(seen[0]!.threadId);
    expect(Number(readFileSync(marks, 'utf8').split('\n')[0])).not.toBe(seen[0]!.threadId);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    expect(proc.output).toContain('lovage worker threads-1 stopped');
  });

  it('cancel with terminate, from another process, ends the thread of a CPU-bound task at the next heartbeat', async () => {
    const proc = await procs.start('threads-2', ['--pool', 'threads', '-c', '1', '--lease-ms', '900'], true);
    const marks = join(dir, 'marks-cancel');
    writeFileSync(marks, '');
    const spin = await t.spin.applyAsync([marks], { timeLimit: '1h' });
    await procs.waitFor(() => readFileSync(marks, 'utf8').length > 2, 'the spin task to start in a thread');
    await app.runs.cancel(spin.id, 'stop spinning', { terminate: true });
    // The worker loses the lease at its next heartbeat (300 ms), reads the cancel and terminates the thread.
    await procs.waitFor(async () => (await app.runs.history(spin.id)).some((e) => e.event.type === 'NodeCompletionFenced'), 'the terminated task to report', 10_000);
    const size = statSync(marks).size;
    await sleep(400);
    expect(statSync(marks).size).toBe(size);
    const events = (await app.runs.history(spin.id)).map((e) => e.event);
    expect(events.find((e) => e.type === 'WorkflowCancelled')).toMatchObject({ reason: 'stop spinning', terminate: true });
    expect(await (await t.add.delay(2, 2)).get({ timeoutMs })).toBe(4); // the worker runs on, in a fresh thread
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toEqual({ code: 0, signal: null });
  });
});

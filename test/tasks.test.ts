// Issue "task execution": retries and backoff, ctx.retry, countdown/eta/expires, time limits, hooks,
// per-call options — on every store, asserted on the recorded history.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WorkflowEvent } from '../src/engine/events.ts';
import { chain, createApp, group, NonRetryableError, taskContext, type App, type HookPayloads } from '../src/index.ts';
import { everyStore } from './support/every-store.ts';

const { stores, cleanup } = await everyStore('tasks');
afterAll(cleanup);

type Ev<T extends WorkflowEvent['type']> = Extract<WorkflowEvent, { type: T }>;

for (const [name, url] of stores) {
  describe(`task execution on ${name}`, () => {
    let app: App;
    beforeEach(() => {
      app = createApp({ store: url() });
    });
    afterEach(() => app.close());

    const events = async (runId: string): Promise<WorkflowEvent[]> => (await app.runs.history(runId)).map((s) => s.event);
    const ofType = <T extends WorkflowEvent['type']>(es: WorkflowEvent[], type: T): Ev<T>[] => es.filter((e): e is Ev<T> => e.type === type);

    it('retries never exceed max and follow the exponential backoff, by the history', async () => {
      let calls = 0;
      const flaky = app.task('flaky', () => {
        calls++;
        throw new Error(`failure ${calls}`);
      }, { retry: { max: 3, backoff: 'exponential', delay: 40, factor: 2, jitter: false } });
      app.worker({ concurrency: 2, pollMs: 10 });
      const run = await flaky.delay();
      await expect(run.get({ timeoutMs: 15_000 })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      const es = await events(run.id);
      const retries = ofType(es, 'NodeRetryScheduled');
      const starts = ofType(es, 'NodeStarted');
      expect(calls).toBe(4);
      expect(starts.map((s) => s.attempt)).toEqual([1, 2, 3, 4]);
      expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3]);
      expect(retries.map((r) => r.retryAt - r.at)).toEqual([40, 80, 160]);
      expect(retries.map((r) => r.error.message)).toEqual(['failure 1', 'failure 2', 'failure 3']);
      // Each retry started no sooner than its time, by the store's clock.
      retries.forEach((r, i) => expect(starts[i + 1]!.at).toBeGreaterThanOrEqual(r.retryAt));
      expect(ofType(es, 'NodeFailed')).toMatchObject([{ attempt: 4, error: { message: 'failure 4' } }]);
      expect(es.at(-1)).toMatchObject({ type: 'WorkflowFailed', nodeId: '0' });
      expect((await app.runs.verify(run.id)).differences).toEqual([]);
    });

    it('jitter keeps each delay between 0 and the backoff; a success ends the retries', async () => {
      let calls = 0;
      const flaky = app.task('flaky2', () => {
        if (++calls < 4) throw new Error('not yet');
        return calls;
      }, { retry: { max: 5, delay: 60, factor: 3, maxDelay: 100 } });
      app.worker({ pollMs: 10 });
      const run = await flaky.delay();
      expect(await run.get({ timeoutMs: 15_000 })).toBe(4);
      const retries = ofType(await events(run.id), 'NodeRetryScheduled');
      const bounds = [60, 100, 100]; // 60, then 180 and 540 capped by maxDelay
      expect(retries).toHaveLength(3);
      retries.forEach((r, i) => {
        expect(r.retryAt - r.at).toBeGreaterThanOrEqual(0);
        expect(r.retryAt - r.at).toBeLessThanOrEqual(bounds[i]!);
      });
    });

    it('NonRetryableError, dontRetryFor and autoretryFor fail at once; a matching error is retried', async () => {
      class Transient extends Error { override name = 'Transient'; }
      let seen: string[] = [];
      const t = app.task('picky', (kind: string) => {
        seen.push(kind);
        if (kind === 'fatal') throw new NonRetryableError('bad input');
        if (kind === 'type') throw new TypeError('a bug');
        if (kind === 'transient' && seen.filter((k) => k === kind).length < 2) throw new Transient('try again');
        if (kind === 'other') throw new Error('not listed');
        return kind;
      }, { retry: { max: 3, delay: 1, jitter: false }, autoretryFor: [Transient, 'TypeError', 'Error'], dontRetryFor: [TypeError] });
      app.worker({ pollMs: 10 });
      for (const kind of ['fatal', 'type']) {
        seen = [];
        const run = await t.delay(kind);
        await expect(run.get({ timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'TASK_FAILED' });
        expect(seen).toEqual([kind]);
        expect(ofType(await events(run.id), 'NodeRetryScheduled')).toEqual([]);
      }
      seen = [];
      const ok = await t.delay('transient');
      expect(await ok.get({ timeoutMs: 10_000 })).toBe('transient');
      expect(seen).toEqual(['transient', 'transient']);
      // A per-call autoretryFor replaces the task's: 'Error' is no longer listed.
      seen = [];
      const other = await t.applyAsync(['other'], { retry: { autoretryFor: ['Transient'] } });
      await expect(other.get({ timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(seen).toEqual(['other']);
    });

    it('ctx.retry retries with its countdown, without a policy, and fails with its error once max is used up', async () => {
      const attempts: number[] = [];
      const polite = app.task('polite', () => {
        const ctx = taskContext();
        attempts.push(ctx.attempt);
        ctx.retry({ countdown: 30, error: new Error(`busy at ${ctx.attempt}`) });
      });
      app.worker({ pollMs: 10 });
      const run = await polite.delay();
      await expect(run.get({ timeoutMs: 10_000 })).rejects.toThrow(/busy at 4/);
      expect(attempts).toEqual([1, 2, 3, 4]); // default max 3
      const retries = ofType(await events(run.id), 'NodeRetryScheduled');
      expect(retries.map((r) => r.retryAt - r.at)).toEqual([30, 30, 30]);
    });

    it('a task may return a value, a promise or any thenable, or throw; taskContext() works after an await and heartbeat destructures', async () => {
      const sync = app.task('sync', (x: number) => x + 1);
      const later = app.task('later', async (x: number) => {
        await sleep(5);
        const { attempt, idempotencyKey, heartbeat } = taskContext();
        return { x, attempt, key: idempotencyKey.endsWith('/0'), held: await heartbeat() };
      });
      const thenable = app.task('thenable', (x: number) => ({ then: (ok: (v: number) => void) => ok(x * 2) }) as unknown as number);
      const rejects = app.task('rejects', () => Promise.reject(new Error('refused')));
      const throws = app.task('throws', (): number => { throw new Error('thrown'); });
      app.worker({ pollMs: 10 });
      expect(await (await sync.delay(1)).get({ timeoutMs: 10_000 })).toBe(2);
      expect(await (await later.delay(7)).get({ timeoutMs: 10_000 })).toEqual({ x: 7, attempt: 1, key: true, held: true });
      expect(await (await thenable.delay(4)).get({ timeoutMs: 10_000 })).toBe(8);
      await expect((await rejects.delay()).get({ timeoutMs: 10_000 })).rejects.toThrow(/refused/);
      await expect((await throws.delay()).get({ timeoutMs: 10_000 })).rejects.toThrow(/thrown/);
    });

    it('a per-call retry policy overrides the task one field by field (recorded in the log)', async () => {
      let calls = 0;
      const t = app.task('often', () => { calls++; throw new Error('no'); }, { retry: { max: 5, delay: 1, jitter: false } });
      app.worker({ pollMs: 10 });
      const run = await t.applyAsync([], { retry: { max: 1 } });
      await expect(run.get({ timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(calls).toBe(2);
      const ready = ofType(await events(run.id), 'NodeReady')[0]!;
      expect(ready.options).toEqual({ retry: { max: 1 } });
    });

    it('countdown and eta hold a node back by the store clock; set() on a signature in a chain', async () => {
      const t = app.task('stamp', (x: number) => x + 1);
      app.worker({ pollMs: 10 });
      const run = await chain(t.s(1), t.s().set({ countdown: '150ms' }), t.s().set({ eta: new Date(Date.now() + 100) })).applyAsync();
      expect(await run.get({ timeoutMs: 10_000 })).toBe(4);
      const es = await events(run.id);
      const ready = ofType(es, 'NodeReady');
      const started = ofType(es, 'NodeStarted');
      expect(ready[1]!.availableAt! - ready[1]!.at).toBe(150);
      expect(started[1]!.at).toBeGreaterThanOrEqual(ready[1]!.availableAt!);
      expect(started[0]!.at).toBeLessThan(ready[1]!.availableAt!);
    });

    it('an ETA far beyond the lease never runs twice: nothing holds a lease while it waits', async () => {
      let calls = 0;
      const t = app.task('once', () => ++calls);
      app.worker({ pollMs: 10, leaseMs: 150 });
      const run = await t.applyAsync([], { eta: Date.now() + 700 });
      expect(await run.get({ timeoutMs: 10_000 })).toBe(1);
      const es = await events(run.id);
      expect(calls).toBe(1);
      expect(ofType(es, 'NodeStarted').map((e) => e.attempt)).toEqual([1]);
      expect(ofType(es, 'NodeLeaseExpired')).toEqual([]);
      expect(ofType(es, 'NodeStarted')[0]!.at).toBeGreaterThanOrEqual(ofType(es, 'NodeReady')[0]!.availableAt!);
    });

    it('an expired node is recorded as expired and not run; the run fails', async () => {
      let ran = false;
      const t = app.task('late', () => { ran = true; });
      app.worker({ pollMs: 10 });
      const run = await t.applyAsync([], { countdown: 100, expires: 20 });
      await expect(run.get({ timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(ran).toBe(false);
      const es = await events(run.id);
      expect(ofType(es, 'NodeFailed')).toMatchObject([{ error: { name: 'TaskExpired' } }]);
      expect(ofType(es, 'NodeReady')[0]!.options!.expiresAt).toBe(ofType(es, 'NodeReady')[0]!.at + 20);
    });

    it("onExpire 'skip': an expired step is recorded as expired, never run, its result null, and the chain goes on", async () => {
      const ran: string[] = [];
      const late = app.task('lateStep', (x: number) => (ran.push('late'), x));
      const after = app.task('afterStep', (x: unknown) => (ran.push('after'), { got: x }));
      const postrun: string[] = [];
      app.on('taskPostrun', (p) => postrun.push(p.task));
      app.worker({ pollMs: 10 });
      const run = await chain(late.si(1).set({ countdown: 100, expires: 20, onExpire: 'skip' }), after.s()).applyAsync();
      expect(await run.get({ timeoutMs: 10_000 })).toEqual({ got: null });
      expect(ran).toEqual(['after']);
      expect(postrun).toEqual(['afterStep']); // the skipped step never ran: no taskPostrun
      const es = await events(run.id);
      expect(ofType(es, 'NodeSucceeded')).toMatchObject([{ nodeId: '0', result: null, expired: true }, { nodeId: '1', result: { got: null } }]);
      expect(ofType(es, 'NodeSucceeded')[1]).not.toHaveProperty('expired');
      expect(ofType(es, 'NodeReady')[0]!.options).toMatchObject({ expireSkip: true });
      expect((await app.runs.verify(run.id)).differences).toEqual([]);
      // Not expired: it runs as usual.
      const inTime = await late.applyAsync([7], { expires: '1h', onExpire: 'skip' });
      expect(await inTime.get({ timeoutMs: 10_000 })).toBe(7);
      expect(ofType(await events(inTime.id), 'NodeSucceeded')[0]).not.toHaveProperty('expired');
    });

    it('a soft time limit aborts the signal: a task that stops fails with SoftTimeLimitExceeded, one that cleans up may finish', async () => {
      const stubborn = app.task('sleepy', async () => {
        await sleep(5000, undefined, { signal: taskContext().signal });
      }, { softTimeLimit: 50 });
      const tidy = app.task('tidy', async () => {
        const { signal } = taskContext();
        await new Promise((r) => signal.addEventListener('abort', r));
        return `cleaned up after ${(signal.reason as Error).name}`;
      }, { softTimeLimit: 50 });
      app.worker({ pollMs: 10 });
      const a = await stubborn.delay();
      await expect(a.get({ timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(ofType(await events(a.id), 'NodeFailed')).toMatchObject([{ error: { name: 'SoftTimeLimitExceeded' } }]);
      const b = await tidy.delay();
      expect(await b.get({ timeoutMs: 10_000 })).toBe('cleaned up after SoftTimeLimitExceeded');
    });

    it('a hard time limit ends the attempt with TimeLimitExceeded, and it is retried like any failure', async () => {
      let calls = 0;
      const hang = app.task('hang', () => { calls++; return new Promise(() => undefined); }, { timeLimit: 50, retry: { max: 1, delay: 1 } });
      app.worker({ pollMs: 10 });
      const run = await hang.delay();
      await expect(run.get({ timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      expect(calls).toBe(2);
      const es = await events(run.id);
      expect(ofType(es, 'NodeRetryScheduled')).toMatchObject([{ error: { name: 'TimeLimitExceeded' } }]);
      expect(ofType(es, 'NodeFailed')).toMatchObject([{ attempt: 2, error: { name: 'TimeLimitExceeded' } }]);
    });

    it('hooks see prerun, postrun, retry, failure and the end of the run; a throwing hook changes nothing', async () => {
      const seen: string[] = [];
      let calls = 0;
      const t = app.task('hooked', (x: number) => {
        if (++calls === 1) throw new Error('first');
        return x;
      }, { retry: { max: 1, delay: 1 } });
      const finished = new Promise<HookPayloads['runFinished']>((resolve) => app.on('runFinished', resolve));
      app.on('taskPrerun', (p) => seen.push(`pre ${p.task} ${p.attempt}`));
      app.on('taskPostrun', (p) => seen.push(`post ${p.state}`));
      app.on('taskRetry', (p) => seen.push(`retry ${p.error.message}`));
      app.on('taskFailure', () => seen.push('failure'));
      app.on('taskPrerun', () => { throw new Error('a broken hook'); });
      app.worker({ pollMs: 10, onError: () => undefined });
      const run = await t.delay(7);
      expect(await run.get({ timeoutMs: 10_000 })).toBe(7);
      expect(await finished).toEqual({ runId: run.id });
      expect(seen).toEqual(['pre hooked 1', 'post retry', 'retry first', 'pre hooked 2', 'post succeeded']);
      expect(() => app.on('taskStart' as never, () => undefined)).toThrow(/unknown hook "taskStart"; allowed are taskPrerun/);
    });

    it('routes send tasks to queues; a worker takes only the queues it names; call > task > route', async () => {
      const routed = createApp({ store: url(), routes: { 'emails.*': { queue: 'mail', priority: 3 }, '*': { queue: 'misc' } } });
      try {
        const send = routed.task('emails.send', (to: string) => `sent to ${to}`);
        const own = routed.task('emails.own', () => 'own', { queue: 'default' });
        const other = routed.task('resize', () => 'resized');
        const runs = [await send.delay('ann'), await own.delay(), await other.delay(), await send.applyAsync(['bob'], { queue: 'urgent' })];
        const queueOf = async (id: string) => ((await routed.runs.history(id)).find((e) => e.event.type === 'NodeReady')!.event as Ev<'NodeReady'>);
        expect(await Promise.all(runs.map(async (r) => { const e = await queueOf(r.id); return [e.queue, e.priority]; }))).toEqual([['mail', 3], ['default', 3], ['misc', 0], ['urgent', 3]]) // field by field;
        routed.worker({ queues: ['mail'], pollMs: 10 });
        expect(await runs[0]!.get({ timeoutMs: 10_000 })).toBe('sent to ann');
        await sleep(100);
        expect(await Promise.all(runs.slice(1).map((r) => r.status()))).toEqual(['running', 'running', 'running']);
        routed.worker({ queues: ['default', 'misc', 'urgent'], pollMs: 10 });
        expect(await runs[3]!.get({ timeoutMs: 10_000 })).toBe('sent to bob');
      } finally {
        await routed.close();
      }
      expect(() => createApp({ routes: { 'a b': { queue: 'x' } } })).toThrow(/route "a b" is invalid/);
    });

    it('cancel stops a 1,000-member group mid-way: no start after the cancel, running tasks see their signal, late outcomes fenced', async () => {
      let started = 0;
      let aborted = 0;
      let holdStarted = false;
      const member = app.task('member', async (i: number) => {
        started++;
        const { signal } = taskContext();
        try {
          // Member 20 runs until it is aborted: at the cancel, at least one task is surely running.
          if (i === 20) {
            holdStarted = true;
            await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
          }
          await sleep(20, undefined, { signal });
        } catch (e) {
          aborted++;
          throw e;
        }
        return i;
      });
      app.worker({ concurrency: 8, pollMs: 10 });
      const run = await member.map(Array.from({ length: 1000 }, (_, i) => i)).applyAsync();
      const store = await app.store();
      while (!holdStarted || (await store.readStream(run.id)).filter((e) => e.event.type === 'NodeSucceeded').length < 16) await sleep(5);
      await app.runs.cancel(run.id, 'enough');
      expect(await run.status()).toBe('cancelled');
      // Wait for the aborted tasks' late outcomes to be recorded (fenced).
      const fencedFailures = async () => ofType(await events(run.id), 'NodeCompletionFenced').filter((e) => e.outcome === 'failed').length;
      for (let t = 0; t < 400 && (await fencedFailures()) < aborted; t++) await sleep(25);
      await sleep(100);
      const es = await events(run.id);
      const cut = es.findIndex((e) => e.type === 'WorkflowCancelled');
      expect(es[cut]).toMatchObject({ reason: 'enough' });
      expect(es.slice(cut + 1).every((e) => e.type === 'NodeCompletionFenced')).toBe(true);
      const starts = ofType(es, 'NodeStarted').length;
      expect(starts).toBeLessThan(500);
      expect(started).toBe(starts);
      expect(aborted).toBeGreaterThan(0);
      // The aborted ones reported failures, any that finished first a success: all fenced, none recorded.
      expect(ofType(es, 'NodeCompletionFenced').filter((e) => e.outcome === 'failed').length).toBe(aborted);
      await expect(run.get({ timeoutMs: 1000 })).rejects.toMatchObject({ code: 'CANCELLED' });
    });

    it('a rate limit set at run time applies to a task without one: the waits are NodeDeferred, attempts do not count', async () => {
      const times: number[] = [];
      const burst = app.task('burst', (i: number) => { times.push(Date.now()); return i; });
      await app.setRateLimit('burst', '5/s');
      app.worker({ concurrency: 4, pollMs: 10 });
      const run = await burst.map([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).applyAsync();
      expect(await run.get({ timeoutMs: 15_000 })).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      times.sort((a, b) => a - b);
      expect(times[9]! - times[0]!).toBeGreaterThanOrEqual(900);
      const es = await events(run.id);
      const deferred = ofType(es, 'NodeDeferred');
      expect(deferred.length).toBeGreaterThan(0);
      expect(deferred[0]!.reason).toMatch(/rate limit of task burst/);
      // A deferral hands the attempt back: every node succeeds at attempt 1.
      expect(ofType(es, 'NodeSucceeded').every((e) => e.attempt === 1)).toBe(true);
      await app.setRateLimit('burst', null);
      await expect(app.setRateLimit('burst', '0/s')).rejects.toThrow(/rate limit of task burst "0\/s" is invalid \(the count is 0\)/);
      expect(() => app.task('limited', () => 1, { rateLimit: '10/fortnight' })).toThrow(/rateLimit "10\/fortnight" is invalid/);
    });

    it('cancel of a subtree stops only it: the rest runs on, the run ends cancelled, and a resume finishes it', async () => {
      const gate = { open: false };
      const ran: string[] = [];
      const slow = app.task('slow', async (tag: string) => {
        ran.push(tag);
        const { signal } = taskContext();
        while (!gate.open) await sleep(10, undefined, { signal });
        return tag;
      });
      const quick = app.task('quick', (tag: string) => (ran.push(tag), tag));
      const join = app.task('join', (xs: string[]) => xs.join('+'));
      app.worker({ concurrency: 4, pollMs: 10 });
      // 0: a slow chain whose second step never starts; 1: a quick branch that finishes; then a join.
      const run = await chain(
        group(chain(slow.si('a'), quick.si('b')), quick.si('c')),
        join.s(),
      ).applyAsync();
      while (!ran.includes('a') || !ran.includes('c')) await sleep(5);
      await app.runs.cancel(run.id, 'not needed', { nodes: ['0.0'] });
      await expect(run.get({ timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'CANCELLED' });
      let es = await events(run.id);
      expect(ofType(es, 'NodesAborted')).toMatchObject([{ nodeIds: ['0.0.0', '0.0.1'], reason: 'not needed', byRequest: true }]);
      expect(ofType(es, 'WorkflowCancelled')).toMatchObject([{ partial: true, reason: expect.stringContaining('part of the run was cancelled') }]);
      // a and c were ready together: either may start first. b never started; the join never ran.
      expect([...ran].sort()).toEqual(['a', 'c']);
      const state = await app.inspect(run.id);
      expect([...state.nodes].map(([id, n]) => [id, n.status])).toEqual([['0.0.0', 'cancelled'], ['0.0.1', 'skipped'], ['0.1', 'succeeded'], ['1', 'skipped']]);
      expect((await app.runs.verify(run.id)).differences).toEqual([]);
      // Resume: the cancelled subtree and what follows run; c keeps its result.
      gate.open = true;
      const again = await app.runs.resume(run.id);
      expect(await again.get({ timeoutMs: 10_000 })).toBe('b+c');
      expect(ran.slice(2)).toEqual(['a', 'b']);
      es = await events(run.id);
      expect((await app.runs.verify(run.id)).differences).toEqual([]);
      await expect(app.runs.cancel(run.id, 'x', { nodes: ['9'] })).rejects.toThrow(/only a running run can be cancelled/);
    });

    it('bad options are refused with the option named and nothing written', async () => {
      const t = app.task('plain', () => 1);
      await expect(t.applyAsync([], { retry: { max: -1 } })).rejects.toThrow(/retry\.max: -1 is invalid; allowed are integers from 0 to 1000/);
      await expect(t.applyAsync([], { retry: { backof: 'fixed' } as never })).rejects.toThrow(/unknown option "backof"/);
      await expect(t.applyAsync([], { countdown: 'soon' })).rejects.toThrow(/countdown "soon" is invalid; allowed are a number followed by ms/);
      await expect(t.applyAsync([], { eta: 'not a date' })).rejects.toThrow(/eta: "not a date" is not a time/);
      await expect(t.applyAsync([], { timeLimit: 0 })).rejects.toThrow(/timeLimit: 0 ms is out of range/);
      await expect(t.applyAsync([], { colour: 'red' } as never)).rejects.toThrow(/unknown option "colour"/);
      await expect(t.applyAsync([], { expires: '1m', onExpire: 'ignore' as never })).rejects.toThrow(/onExpire must be 'fail' or 'skip', got "ignore"/);
      await expect(t.applyAsync([], { onExpire: 'skip' })).rejects.toThrow(/onExpire needs expires/);
      expect(() => app.task('x', () => 1, { retry: { factor: 0.5 } })).toThrow(/retry\.factor: 0.5 is invalid/);
      expect(() => app.task('y', () => 1, { autoretryFor: [42 as never] })).toThrow(/autoretryFor\[0\]/);
      expect(await app.runs.list()).toEqual([]);
    });

    it("a task mutating its input changes neither a sibling's input nor the recorded result", async () => {
      const make = app.task('make', () => [1, 2, 3]);
      const pop = app.task('pop', (xs: number[]) => xs.pop()!);
      const len = app.task('len', (xs: number[]) => xs.length);
      app.worker({ concurrency: 1, pollMs: 5 });
      const run = await chain(make.s(), group(pop.s(), len.s())).applyAsync();
      expect(await run.get({ timeoutMs: 5000 })).toEqual([3, 3]);
      expect(ofType(await events(run.id), 'NodeSucceeded').find((e) => e.nodeId === '0')).toMatchObject({ result: [1, 2, 3] });
    });
  });
}

// Careless calls and sparse arrays are refused with a VALIDATION error naming what was passed and what
// is allowed, before anything is written: never a raw TypeError, never silently accepted.
/* eslint-disable no-sparse-arrays */
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, group, type App, type CanvasData } from '../src/index.ts';
import { expectRefused } from './support/refusal.ts';

const apps: App[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

function setup(store = 'memory:') {
  const app = createApp({ store });
  apps.push(app);
  const echo = app.task('echo', (...xs: unknown[]) => xs);
  const one = app.task('one', (x: unknown) => x);
  return { app, echo, one };
}

const sig = (...args: unknown[]): CanvasData => ({ kind: 'signature', task: 'echo', args, immutable: false, options: {} });

describe('sparse arrays: holes are refused, naming the index', () => {
  it('map, starmap and chunks over a sparse array', async () => {
    const { app, echo, one } = setup();
    await expectRefused(app, () => one.map([1, , 3]).applyAsync(), 'VALIDATION', 'task one: map(items): index 1 is a hole (a sparse array); holes are refused');
    await expectRefused(app, () => echo.starmap([[1], , [3]] as never).applyAsync(), 'VALIDATION', 'task echo: starmap(argLists): index 1 is a hole');
    await expectRefused(app, () => echo.starmap([[1, , 3]]).applyAsync(), 'VALIDATION', 'task echo: starmap(argLists)[0]: index 1 is a hole');
    await expectRefused(app, () => echo.chunks([[1], [2], , [4]] as never, 2).applyAsync(), 'VALIDATION', 'task echo: chunks(argLists, size): index 2 is a hole');
    await expectRefused(app, () => echo.applyAsync([1, , 3]), 'VALIDATION', 'task echo: applyAsync(args, options): index 1 is a hole');
  });

  for (const [what, canvas, path, message] of [
    ['map items', { kind: 'map', task: 'echo', argLists: [[1], , [3]], options: {} }, '0.1', 'map items has a hole at index 1'],
    ['chunks argument lists', { kind: 'chunks', task: 'echo', argLists: [[1], , [3]], size: 2, options: {} }, '0.1', 'chunks argument lists has a hole at index 1'],
    ['group members', { kind: 'group', members: [sig(1), , sig(3)] }, '0.1', 'group members has a hole at index 1'],
    ['chord header members', { kind: 'chord', header: { kind: 'group', members: [, sig(2)] }, body: sig() }, '0.header.0', 'chord header members has a hole at index 0'],
    ['chain steps', { kind: 'chain', steps: [sig(1), , sig()] }, '1', 'chain steps has a hole at index 1'],
  ] as [string, CanvasData, string, string][]) {
    it(`raw canvas data: ${what} (SQLite, as another process would read it back)`, async () => {
      const { app } = setup('sqlite::memory:');
      const error = await expectRefused(app, () => app.submit(canvas), 'VALIDATION', `canvas at ${path}: ${message}`, 'holes are refused');
      expect(error.details['path']).toBe(path);
    });
  }

  it('group() given a sparse array refuses the hole too', async () => {
    const { app, echo } = setup();
    await expectRefused(app, () => group([echo.s(1), , echo.s(3)] as never).applyAsync(), 'VALIDATION', 'canvas at 0.1');
  });
});

describe('careless calls', () => {
  it('applyAsync without an argument array, or with a string', async () => {
    const { app, echo } = setup();
    const applyAsync = echo.applyAsync as (args?: unknown) => Promise<unknown>;
    await expectRefused(app, () => applyAsync(), 'VALIDATION', 'task echo: applyAsync(args, options): expected an array, got undefined', 'applyAsync([]) for no arguments');
    // Not spread into characters (echo('a', 'b')).
    await expectRefused(app, () => applyAsync('ab'), 'VALIDATION', 'expected an array, got a string "ab"');
    await expectRefused(app, () => applyAsync({ 0: 1, length: 1 }), 'VALIDATION', 'expected an array, got an object');
  });

  it('map, starmap and chunks of something that is not an array of arrays', async () => {
    const { app, echo } = setup();
    await expectRefused(app, () => echo.map(undefined as never).applyAsync(), 'VALIDATION', 'task echo: map(items): expected an array, got undefined; for example map([1, 2, 3])');
    await expectRefused(app, () => echo.map('abc' as never).applyAsync(), 'VALIDATION', 'map(items): expected an array, got a string "abc"');
    await expectRefused(app, () => echo.starmap([1] as never).applyAsync(), 'VALIDATION', 'task echo: starmap(argLists)[0]: expected an array, got a number 1; for example starmap([[1, 2], [3, 4]])');
    await expectRefused(app, () => echo.starmap(null as never).applyAsync(), 'VALIDATION', 'starmap(argLists): expected an array, got null');
    await expectRefused(app, () => echo.chunks([[1], 'x'] as never, 2).applyAsync(), 'VALIDATION', 'chunks(argLists, size)[1]: expected an array, got a string "x"');
  });

  it('the well-formed calls still work', async () => {
    const { app, echo, one } = setup();
    app.worker({ pollMs: 5 });
    expect(await (await echo.applyAsync([])).get({ timeoutMs: 3000 })).toEqual([]);
    expect(await (await one.map([1, null]).applyAsync()).get({ timeoutMs: 3000 })).toEqual([1, null]);
    expect(await (await echo.chunks([[1, 2], [3, 4], [5, 6]], 2).applyAsync()).get({ timeoutMs: 3000 })).toEqual([[[1, 2], [3, 4]], [[5, 6]]]);
  });
});

describe('times and durations', () => {
  const DAY = 86_400_000;

  it('eta and expires times are bounded like countdown: at most 366 days ahead', async () => {
    const { app, echo } = setup();
    for (const eta of [1e300, Date.now() + 367 * DAY, new Date(Date.now() + 400 * DAY)]) {
      await expectRefused(app, () => echo.applyAsync([1], { eta }), 'VALIDATION', 'task echo eta:', 'is more than 366 days ahead', 'at most 366 days from now');
    }
    await expectRefused(app, () => echo.applyAsync([1], { expires: new Date(Date.now() + 400 * DAY) }), 'VALIDATION', 'task echo expires:', 'more than 366 days ahead');
    const inAYear = await echo.applyAsync([1], { eta: Date.now() + 365 * DAY, expires: new Date(Date.now() + 366 * DAY - 1000) });
    expect(await inAYear.status()).toBe('running');
  });

  it('a time string must be ISO 8601: loose forms Date.parse reads are refused', async () => {
    const { app, echo } = setup();
    for (const eta of ['5', '2001', 'Tue 1', '1/2/2030', 'tomorrow', '2030-01-31 12:00']) {
      await expectRefused(app, () => echo.applyAsync([1], { eta }), 'VALIDATION', `eta: ${JSON.stringify(eta)} is not a time; allowed are epoch ms, a Date or an ISO 8601 string (2030-01-31 or 2030-01-31T12:00:00Z)`);
    }
    // '5' is not a duration either, so as expires it is a time: refused too (Date.parse made it the year 2001: expired at once).
    await expectRefused(app, () => echo.applyAsync([1], { expires: '5' }), 'VALIDATION', 'expires: "5" is not a time');
    const tomorrow = new Date(Date.now() + DAY);
    for (const eta of [tomorrow.toISOString(), tomorrow.toISOString().slice(0, 10), tomorrow.toISOString().replace('Z', '+02:00')]) {
      await app.submit({ kind: 'signature', task: 'echo', args: [eta], immutable: false, options: { eta } });
    }
  });

  it('messages name NaN, Infinity and an invalid Date instead of printing null', async () => {
    const { app, echo } = setup();
    await expectRefused(app, () => echo.applyAsync([1], { countdown: Number.NaN }), 'VALIDATION', 'task echo countdown NaN is invalid; allowed are a number followed by ms');
    await expectRefused(app, () => echo.applyAsync([1], { timeLimit: Number.POSITIVE_INFINITY }), 'VALIDATION', 'timeLimit Infinity is invalid');
    await expectRefused(app, () => echo.applyAsync([1], { eta: new Date('nope') }), 'VALIDATION', 'eta: Invalid Date is not a time');
    await expectRefused(app, () => echo.applyAsync([1], { eta: Number.NaN }), 'VALIDATION', 'eta: NaN is not a time');
    await expectRefused(app, () => echo.applyAsync([1], { expires: -Infinity }), 'VALIDATION', 'expires -Infinity is invalid');
    await expectRefused(app, () => app.runs.prune({ olderThan: Number.POSITIVE_INFINITY }), 'VALIDATION', 'olderThan Infinity is invalid');
    await expectRefused(app, () => echo.applyAsync([1], { retry: { backoff: Number.NaN as never } }), 'VALIDATION', 'backoff: NaN is invalid');
  });
});

describe('createApp({ limits })', () => {
  const names = 'allowed are maxDepth, maxGroupWidth, maxNodes, maxArgsBytes';
  for (const [limits, message] of [
    [{ maxArgsBytes: Number.NaN }, 'limits.maxArgsBytes NaN is invalid; allowed are integers from 1 to Number.MAX_SAFE_INTEGER (default 1048576'],
    [{ maxNodes: -1 }, 'limits.maxNodes -1 is invalid'],
    [{ maxGroupWidth: 0 }, 'limits.maxGroupWidth 0 is invalid'],
    [{ maxGroupWidth: 2.5 }, 'limits.maxGroupWidth 2.5 is invalid'],
    [{ maxNodes: Number.POSITIVE_INFINITY }, 'limits.maxNodes Infinity is invalid'],
    [{ maxArgsBytes: '1000' }, 'limits.maxArgsBytes "1000" is invalid'],
    [{ maxDepth: 257 }, 'limits.maxDepth 257 is invalid; allowed are integers from 1 to 256 (default 16'],
    [{ maxArgBytes: 10 }, `limits.maxArgBytes is not a limit; ${names}`],
    ['big', `limits "big" are invalid; allowed is an object with any of maxDepth, maxGroupWidth, maxNodes, maxArgsBytes`],
    [null, 'limits null are invalid'],
  ] as [unknown, string][]) {
    it(`${JSON.stringify(limits, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)) ?? String(limits)} is refused at createApp, naming the limit`, () => {
      expect(() => createApp({ store: 'memory:', limits: limits as never })).toThrow(expect.objectContaining({ code: 'VALIDATION', message: expect.stringContaining(message) }));
    });
  }

  it('a limit given as undefined keeps its default, like one left out (it is not turned off)', async () => {
    const app = createApp({ store: 'memory:', limits: { maxArgsBytes: undefined } as never });
    apps.push(app);
    const echo = app.task('echo', (x: unknown) => x);
    await expectRefused(app, () => echo.applyAsync(['x'.repeat(2_000_000)]), 'LIMIT', 'the limit is maxArgsBytes = 1048576');
  });

  it('maxDepth 256: a group nested 255 deep compiles and runs without overflowing the stack', async () => {
    const app = createApp({ store: 'memory:', limits: { maxDepth: 256 } });
    apps.push(app);
    app.task('echo', (x: unknown) => x);
    app.worker({ pollMs: 5 });
    let canvas: CanvasData = { kind: 'signature', task: 'echo', args: [1], immutable: false, options: {} };
    for (let i = 0; i < 254; i++) canvas = { kind: 'group', members: [canvas] };
    let expected: unknown = 1;
    for (let i = 0; i < 254; i++) expected = [expected];
    expect(await (await app.submit(canvas)).get({ timeoutMs: 5000 })).toEqual(expected);
    await expect(app.submit({ kind: 'group', members: [{ kind: 'group', members: [canvas] }] })).rejects.toMatchObject({ code: 'LIMIT' });
  });
});

// Bad input is refused before anything is written, with an error that names the path and what is
// allowed (DESIGN.md, Guarantees). Each refusal checks the code, the path, the allowed forms, and that
// the store holds no events afterwards.
import { afterEach, describe, expect, it } from 'vitest';
import { chain, chord, createApp, group, type App, type AppOptions, type CanvasData } from '../src/index.ts';
import { preview } from '../src/errors.ts';
import { openStore } from '../src/eventstore/url.ts';
import { compile } from '../src/canvas/compile.ts';
import { expectRefused, refusal } from './support/refusal.ts';

const apps: App[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** An app on a fresh in-memory store (unless told otherwise) with a few tasks; closed after each test. */
function setup(options: AppOptions = {}) {
  const app = createApp({ store: 'memory:', ...options });
  apps.push(app);
  const add = app.task('add', (a: number, b: number) => a + b);
  const xsum = app.task('xsum', (xs: number[]) => xs.reduce((a, b) => a + b, 0));
  const echo = app.task('echo', (x: unknown) => x);
  return { app, add, xsum, echo };
}

const raw = (task: string, args: unknown[] = []): Extract<CanvasData, { kind: 'signature' }> => ({ kind: 'signature', task, args, immutable: false, options: {} });

describe('unknown task names', () => {
  it('a task of another app, in a chord header: refused naming 0.header.1', async () => {
    const { app, add, xsum } = setup();
    const other = createApp({ store: 'memory:' });
    apps.push(other);
    const nope = other.task('nope', (n: number) => n);
    const error = await expectRefused(app, () => app.submit(chord([add.s(1, 1), nope.s(1)], xsum.s())), 'VALIDATION', 'canvas at 0.header.1', 'unknown task "nope"', 'register it with app.task("nope", fn)');
    expect(error.details['path']).toBe('0.header.1');
    expect(await (await other.store()).readAll()).toEqual([]);
  });

  it('raw canvas data naming an unknown task', async () => {
    const { app } = setup();
    const error = await expectRefused(app, () => app.submit(raw('nope')), 'VALIDATION', 'canvas at 0:', 'unknown task "nope"', 'register it');
    expect(error.details['path']).toBe('0');
  });

  it('applyAsync submits through the app of the first signature; names it does not know are refused', async () => {
    const { app, add } = setup();
    const other = createApp({ store: 'memory:' });
    apps.push(other);
    const nope = other.task('nope', (n: number) => n);
    // Submitted through `other` (it made the first step), which has no task "add".
    await expectRefused(other, () => chain(nope.s(1), add.s(1)).applyAsync(), 'VALIDATION', 'canvas at 1:', 'unknown task "add"');
    expect(await (await app.store()).readAll()).toEqual([]);
  });

  it('on a SQLite store too (sqlite::memory:)', async () => {
    const { app, add } = setup({ store: 'sqlite::memory:' });
    await expectRefused(app, () => app.submit(group(add.s(1, 2), raw('nope'))), 'VALIDATION', 'canvas at 0.1:', 'unknown task "nope"');
    await expectRefused(app, () => chain(add.s(1, 2), add.s({ big: 1n } as never)).applyAsync(), 'VALIDATION', 'canvas at 1 (task add) args[0].big: a bigint');
  });
});

describe('arguments that are not JSON', () => {
  const cycle: Record<string, unknown> = { a: 1 };
  cycle['self'] = cycle;
  class Point { x = 1; }
  const cases: [string, unknown, string, string][] = [
    ['a function', () => 1, 'args[0]', 'a function'],
    ['a BigInt', 10n, 'args[0]', 'a bigint (10n)'],
    ['a cycle', [cycle], 'args[0][0].self', 'a cycle'],
    ['NaN', { x: [1, NaN] }, 'args[0].x[1]', 'NaN (not a finite number) cannot be stored'],
    ['Infinity', -Infinity, 'args[0]', '-Infinity (not a finite number) cannot be stored'],
    ['a Date', new Date(0), 'args[0]', 'an instance of Date'],
    ['a Map', new Map([[1, 2]]), 'args[0]', 'an instance of Map'],
    ['a class instance', { p: new Point() }, 'args[0].p', 'an instance of Point'],
    ['undefined inside an array', [1, undefined], 'args[0][1]', 'undefined cannot be stored'],
    ['undefined as a property', { a: undefined }, 'args[0].a', 'undefined cannot be stored'],
    ['a hole in an array', [1, , 3], 'args[0][1]', 'a hole in an array'],
    ['a symbol', Symbol('s'), 'args[0]', 'a symbol'],
  ];
  it.each(cases)('%s is refused, naming node and path inside the value', async (_name, value, path, what) => {
    const { app, add, echo } = setup();
    const error = await expectRefused(app, () => chain(add.s(1, 2), group(add.s(1), echo.si(value))).applyAsync(), 'VALIDATION', `canvas at 1.1 (task echo) ${path}: ${what}`, 'allowed are JSON values');
    expect(error.details['path']).toBe(path.slice('args'.length));
  });
});

describe('limits', () => {
  it('maxArgsBytes: one node over the limit is refused; exactly at the limit is accepted', async () => {
    const { app, echo } = setup({ limits: { maxArgsBytes: 1000 } });
    // JSON of the args is `["x...x"]`: 4 bytes around the string.
    await expectRefused(app, () => group(echo.si('x'), echo.si('x'.repeat(997))).applyAsync(), 'LIMIT', 'canvas at 0.1:', 'arguments of task echo are 1001 bytes', 'the limit is maxArgsBytes = 1000');
    await echo.si('x'.repeat(996)).applyAsync();
    expect(await (await app.store()).readAll()).not.toEqual([]);
  });

  it('maxArgsBytes counts UTF-8 bytes, not characters', async () => {
    const { app, echo } = setup({ limits: { maxArgsBytes: 1000 } });
    // 600 characters, 1200 bytes.
    await expectRefused(app, () => echo.si('é'.repeat(600)).applyAsync(), 'LIMIT', 'are 1204 bytes', 'maxArgsBytes = 1000');
  });

  it('the default maxArgsBytes is 1 MiB', async () => {
    const { app, echo } = setup();
    await expectRefused(app, () => echo.si('x'.repeat(1024 * 1024)).applyAsync(), 'LIMIT', 'maxArgsBytes = 1048576');
  });

  it('maxDepth: nesting one level too deep is refused at the deepest path', async () => {
    const { app, add, echo } = setup({ limits: { maxDepth: 3 } });
    await expectRefused(app, () => chain(add.s(1, 2), group(group(group(add.s(1))))).applyAsync(), 'LIMIT', 'canvas at 1.0.0.0:', 'nesting is deeper than maxDepth = 3');
    await expectRefused(app, () => chord([group(group(add.s(1, 1)))], echo.s()).applyAsync(), 'LIMIT', 'canvas at 0.header.0.0.0:', 'maxDepth = 3');
    await chain(add.s(1, 2), group(group(add.s(1)))).applyAsync();
  });

  it('maxGroupWidth: groups, chord headers, map, starmap and chunks', async () => {
    const { app, add, xsum } = setup({ limits: { maxGroupWidth: 3 } });
    const four = [add.s(1, 1), add.s(1, 2), add.s(1, 3), add.s(1, 4)];
    await expectRefused(app, () => group(four).applyAsync(), 'LIMIT', 'canvas at 0:', 'group has 4 members', 'the limit is maxGroupWidth = 3');
    await expectRefused(app, () => chain(add.s(1, 1), chord([add.s(1), add.s(2), add.s(3), add.s(4)], xsum.s())).applyAsync(), 'LIMIT', 'canvas at 1:', 'chord header has 4 members');
    await expectRefused(app, () => chain(add.s(1, 1), group(add.s(1), xsum.map([[1], [2], [3], [4]]))).applyAsync(), 'LIMIT', 'canvas at 1.1:', 'map has 4 members');
    await expectRefused(app, () => add.starmap([[1, 1], [1, 2], [1, 3], [1, 4]]).applyAsync(), 'LIMIT', 'canvas at 0:', 'map has 4 members');
    // chunks counts argument lists, not chunks.
    await expectRefused(app, () => add.chunks([[1, 1], [1, 2], [1, 3], [1, 4]], 2).applyAsync(), 'LIMIT', 'canvas at 0:', 'chunks has 4 members');
    await group(four.slice(0, 3)).applyAsync();
  });

  it('maxNodes: the node past the limit is named', async () => {
    const { app, add, xsum } = setup({ limits: { maxNodes: 5 } });
    await expectRefused(app, () => chain(group(add.s(1, 1), add.s(1, 2), add.s(1, 3)), group(xsum.s(), xsum.s(), xsum.s())).applyAsync(), 'LIMIT', 'canvas at 1.2:', 'more than maxNodes = 5 nodes');
    await expectRefused(app, () => add.chunks([[1, 1], [1, 2], [1, 3], [1, 4], [1, 5], [1, 6]], 4).applyAsync(), 'LIMIT', 'canvas at 0.1.1:', 'maxNodes = 5');
    await add.chunks([[1, 1], [1, 2], [1, 3], [1, 4], [1, 5]], 4).applyAsync();
  });
});

describe('run ids', () => {
  it.each([['bad id!'], [''], ['x'.repeat(129)], ['a/b'], ['run\n1']])('%j is refused', async (runId) => {
    const { app, add } = setup();
    await expectRefused(app, () => add.applyAsync([1, 2], { runId }), 'VALIDATION', `run id ${preview(runId)} is invalid`, 'allowed are 1-128 of A-Z a-z 0-9 _ . : -');
    await expectRefused(app, () => app.submit(raw('add', [1, 2]), { runId }), 'VALIDATION', 'run id');
  });

  it('128 characters of the allowed set are accepted', async () => {
    const { app, add } = setup();
    const run = await add.applyAsync([1, 2], { runId: `a-b_c.d:${'x'.repeat(120)}` });
    expect(await (await app.store()).getRun(run.id)).toBeDefined();
  });

  it('an id already taken is refused; the first run is untouched', async () => {
    const { app, add } = setup();
    await add.applyAsync([1, 2], { runId: 'r1' });
    const before = await (await app.store()).readAll();
    const error = await refusal(() => add.applyAsync([3, 4], { runId: 'r1' }));
    expect(error.code).toBe('CONCURRENCY');
    expect(error.message).toContain('r1');
    expect(await (await app.store()).readAll()).toEqual(before);
  });
});

describe('malformed canvas data', () => {
  const cases: [string, CanvasData, string][] = [
    ['an unknown kind', { kind: 'bogus' } as never, 'unknown canvas kind "bogus"; allowed are signature, chain, group, chord, map, chunks'],
    ['an invalid task name', raw('bad name'), 'task name "bad name" is invalid; allowed are 1-200 of'],
    ['an empty task name', raw(''), 'task name "" is invalid'],
    ['args that are not an array', { ...raw('add'), args: 'x' } as never, 'args must be an array'],
    ['a chord header that is not a group', { kind: 'chord', header: raw('add', [1, 2]), body: raw('xsum') } as never, 'chord header must be a group'],
    ['a chunk size of 0', { kind: 'chunks', task: 'add', argLists: [[1, 2]], size: 0, options: {} }, 'chunk size 0 is invalid; allowed are integers ≥ 1'],
    ['a fractional chunk size', { kind: 'chunks', task: 'add', argLists: [[1, 2]], size: 1.5, options: {} }, 'chunk size 1.5 is invalid'],
    ['an invalid queue', { ...raw('add', [1, 2]), options: { queue: 'no spaces' } }, 'queue "no spaces" is invalid; allowed are 1-100 of'],
    ['a fractional priority', { ...raw('add', [1, 2]), options: { priority: 1.5 } }, 'priority 1.5 is invalid; allowed are integers from -1000000 to 1000000'],
    ['a priority out of range', { ...raw('add', [1, 2]), options: { priority: 2_000_000 } }, 'priority 2000000 is invalid'],
  ];
  it.each(cases)('%s is refused', async (_name, canvas, message) => {
    const { app } = setup();
    await expectRefused(app, () => app.submit({ kind: 'chain', steps: [raw('add', [1, 2]), { kind: 'group', members: [canvas] }] }), 'VALIDATION', 'canvas at 1.0:', message);
  });

  it('task options are checked the same way', async () => {
    const { app, add } = setup();
    await expectRefused(app, () => add.applyAsync([1, 2], { queue: 'a b' }), 'VALIDATION', 'canvas at 0:', 'queue "a b" is invalid');
  });

  it('a canvas method taken off its canvas says so; bound, it works', async () => {
    const { app, add } = setup();
    const sig = add.s(1, 2);
    const { applyAsync, set } = sig;
    await expect(applyAsync()).rejects.toThrow(/applyAsync\(\) was called without its canvas; call it on the canvas \(sig\.applyAsync\(\.\.\.\)\)/);
    expect(() => set({ queue: 'q' })).toThrow(/set\(\) was called without its canvas/);
    const bound = sig.applyAsync.bind(sig);
    expect((await bound()).id).toEqual(expect.any(String));
    expect(await app.runs.list()).toHaveLength(1);
  });

  it('chain() with no steps throws at once', async () => {
    const error = await refusal(() => (chain as unknown as () => unknown)());
    expect(error.code).toBe('VALIDATION');
    expect(error.message).toContain('at least one step');
  });
});

describe('store URLs', () => {
  it.each([
    ['mysql://x', 'store URL "mysql://x" is not recognised'],
    ['', 'store URL "" is empty'],
    ['sqlite:', 'store URL "sqlite:" names no file'],
    ['sqlite://', 'store URL "sqlite://" names no file'],
    ['memory', 'store URL "memory" is not recognised'],
  ])('openStore(%j) is refused', async (url, message) => {
    const error = await refusal(() => openStore(url));
    expect(error.code).toBe('VALIDATION');
    expect(error.message).toContain(message);
    expect(error.message).toContain('allowed are sqlite:<path> (sqlite:./lovage.db), sqlite::memory:, memory:');
  });

  it('a malformed Postgres URL is refused before connecting, with the password hidden', async () => {
    const error = await refusal(() => openStore('postgres://user:s3cret@db.example:notaport/app?schema=x'));
    expect(error.code).toBe('VALIDATION');
    expect(error.message).toContain('postgres://user:***@db.example:notaport/app');
    expect(error.message).toContain('allowed is postgres://[user[:password]@]host[:port]/database[?schema=name&migrate=true|false&max=connections]');
    expect(error.message).not.toContain('s3cret');
    const flag = await refusal(() => openStore('postgres://user:s3cret@db.example/app?migrate=maybe'));
    expect(flag.message).toContain('migrate=maybe is not allowed; allowed are migrate=true and migrate=false');
    expect(flag.message).not.toContain('s3cret');
  });

  it('an app with a malformed store URL refuses to submit, and still closes', async () => {
    const app = createApp({ store: 'mysql://x' });
    const add = app.task('add', (a: number, b: number) => a + b);
    const error = await refusal(() => add.delay(1, 2));
    expect(error.code).toBe('VALIDATION');
    expect(error.message).toContain('"mysql://x" is not recognised');
    await expect(app.close()).resolves.toBeUndefined();
  });
});

describe('task results that are not JSON', () => {
  it('a BigInt result fails its node; run.get() names the node and the task', async () => {
    const { app } = setup();
    const big = app.task('big', () => 10n as unknown);
    app.worker();
    const run = await big.s().applyAsync();
    const error = await refusal(() => run.get({ timeoutMs: 10_000 }));
    expect(error.code).toBe('TASK_FAILED');
    expect(error.message).toContain(`run ${run.id} failed: node 0 (task big)`);
    expect(error.message).toContain('result of task big: a bigint (10n) cannot be stored');
    expect(error.details).toMatchObject({ runId: run.id, nodeId: '0', task: 'big' });
    expect(await run.status()).toBe('failed');
  });

  it('a function result in a chord header: the node fails, the body never runs', async () => {
    const { app, add, xsum } = setup();
    // Typed as returning a number; returns a function at run time.
    const fn = app.task('fn', (): number => (() => 1) as never);
    app.worker();
    const run = await chord([add.s(1, 2), fn.s()], xsum.s()).applyAsync();
    const error = await refusal(() => run.get({ timeoutMs: 10_000 }));
    expect(error.code).toBe('TASK_FAILED');
    expect(error.message).toContain('node 0.header.1 (task fn)');
    expect(error.message).toContain('a function');
    const events = (await (await app.store()).readStream(run.id)).map((s) => s.event);
    expect(events.some((e) => e.type === 'NodeReady' && e.nodeId === '0.body')).toBe(false);
    expect(events.some((e) => e.type === 'NodeSucceeded' && e.nodeId === '0.header.0')).toBe(true);
  });
});

describe('run handles', () => {
  it('an unknown run id is NOT_FOUND', async () => {
    const { app } = setup();
    for (const f of [() => app.run('no-such-run').get({ timeoutMs: 50 }), () => app.run('no-such-run').status()]) {
      const error = await refusal(f);
      expect(error.code).toBe('NOT_FOUND');
      expect(error.message).toContain('run no-such-run does not exist');
    }
  });

  it('get({ timeoutMs }) on a run nobody works is a TIMEOUT', async () => {
    const { add } = setup();
    const run = await add.delay(1, 2);
    const started = Date.now();
    const error = await refusal(() => run.get({ timeoutMs: 50 }));
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toContain(`run ${run.id} did not finish within 50 ms`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(await run.status()).toBe('running');
  });
});

describe('hostile nesting: refused with a LovageError or run, never a stack overflow', () => {
  it('a chain nested 100,000 deep, and arguments nested 100,000 deep', async () => {
    const app = createApp({ store: 'memory:' });
    app.task('t', (x: unknown) => x);
    let canvas: CanvasData = { kind: 'signature', task: 't', args: [], immutable: false, options: {} };
    for (let i = 0; i < 100_000; i++) canvas = { kind: 'chain', steps: [canvas] };
    await expect(app.submit(canvas)).rejects.toMatchObject({ code: 'LIMIT', message: expect.stringContaining('maxDepth = 16') });
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    await expect(app.submit({ kind: 'signature', task: 't', args: [deep], immutable: false, options: {} })).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('nesting deeper than 256 levels') });
    expect(await (await app.store()).readAll()).toEqual([]);
    await app.close();
  });

  it('a chain of 10,000 empty groups (maps, collect chords) is accepted and runs: the expression stays flat', async () => {
    const { app, echo } = setup();
    app.worker({ pollMs: 5 });
    const many = <T,>(make: () => T): T[] => Array.from({ length: 10_000 }, make);
    const steps: CanvasData[][] = [
      many(() => group()),
      many(() => echo.map([])),
      many(() => group(group())),
      many(() => chord([], echo.s(), { onMemberFailure: 'collect' })),
    ];
    const results = [[], [], [[]], []];
    for (const [i, middle] of steps.entries()) {
      const canvas: CanvasData = { kind: 'chain', steps: [echo.si(1), ...middle, echo.s()] };
      const depth = (v: unknown): number => (typeof v === 'object' && v !== null ? 1 + Math.max(0, ...Object.values(v).map(depth)) : 0);
      const dag = compile(canvas);
      expect(depth(dag.result) + Math.max(...dag.nodes.map((n) => depth(n.input)))).toBeLessThan(20);
      expect(await (await app.submit(canvas)).get({ timeoutMs: 10_000 })).toEqual(results[i]);
    }
  }, 30_000);
});

// Type tests: `npx tsc --noEmit` (run by `npm test` before vitest) checks every `expectTypeOf` and every
// `// @ts-expect-error` below; vitest only runs the few runtime assertions. An `@ts-expect-error` whose
// line compiles is itself an error, so each refusal below can fail, as can each `toEqualTypeOf`.
//
// Not checked by the types (checked at submit or run time instead; see test/validation.test.ts):
// - JSON-ness of arguments and results. NaN and Infinity are `number`, so no type can refuse them; a
//   `Json` constraint on task signatures would also refuse ordinary interfaces. Non-JSON arguments
//   are refused at submit (VALIDATION); a non-JSON result fails its node.
// - Whether the submitting app registered a signature's task: a signature carries only the name.
// - Limits (maxDepth, maxGroupWidth, maxNodes, maxArgsBytes), chunk sizes (integers >= 1), run ids.
// - Known gaps the types could express but do not today (so there are no assertions pinning them):
//   `chain()` with no steps compiles (it throws VALIDATION at run time); a partial signature such as
//   `add.s(1)` can be submitted on its own (`add.s(1).applyAsync()`), though nothing will supply its
//   missing argument; `t.map(items)` checks only the task's first parameter.
import { afterAll, afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { chain, chord, createApp, group, type App, type Canvas, type InOf, type LinkErrorInfo, type MemberOutcome, type OutOf, type RunHandle, type Signature, type TaskSignature, type Task } from '../src/index.ts';

/** Type-checks `f` without running it (for calls that would submit, or throw at run time). */
const typeOnly = (_f: () => unknown): void => {};

const app = createApp({ store: 'memory:' });
afterAll(() => app.close());

const add = app.task('add', (a: number, b: number) => a + b);
const toStr = app.task('toStr', (n: number) => String(n));
const str = app.task('str', (s: string) => s.length);
const double = app.task('double', (n: number) => n * 2);
const xsum = app.task('xsum', (xs: number[]) => xs.reduce((a, b) => a + b, 0));
const pair = app.task('pair', (p: [number, string]) => `${p[1]}${p[0]}`);
const fetchN = app.task('fetchN', async (n: number) => ({ n }));

describe('tasks and signatures', () => {
  it('a task keeps its argument and result types; async results are unwrapped', () => {
    expectTypeOf(add).toEqualTypeOf<Task<[number, number], number>>();
    expectTypeOf(fetchN).toEqualTypeOf<Task<[number], { n: number }>>();
    expectTypeOf(fetchN.s(1)).toEqualTypeOf<TaskSignature<never, { n: number }>>();
  });

  it('add.s(1) is a partial: it expects one more number and returns a number', () => {
    expectTypeOf(add.s(1)).toEqualTypeOf<TaskSignature<number, number>>();
  });

  it('add.s(1, 2) is complete: it takes no input (In = never)', () => {
    expectTypeOf(add.s(1, 2)).toEqualTypeOf<TaskSignature<never, number>>();
    expectTypeOf<InOf<Signature<never, number>>>().toBeNever();
  });

  it('add.si(1, 2) is immutable: it ignores its input (In = unknown)', () => {
    expectTypeOf(add.si(1, 2)).toEqualTypeOf<TaskSignature<unknown, number>>();
  });

  it('signature arguments are checked', () => {
    // @ts-expect-error a string where add wants a number
    add.s('1');
    // @ts-expect-error a string in the second place
    add.s(1, '2');
    // @ts-expect-error too many arguments
    add.s(1, 2, 3);
    // @ts-expect-error add.s() would leave two arguments open; a parent supplies only one
    add.s();
    // @ts-expect-error an immutable signature needs every argument (it gets none from a parent)
    add.si(1);
  });
});

describe('chain', () => {
  it('the output is the last step, the input the first step', () => {
    const c = chain(add.s(1, 2), toStr.s());
    expectTypeOf(c).toEqualTypeOf<Signature<never, string>>();
    expectTypeOf(chain(add.s(1, 2), toStr.s(), str.s())).toEqualTypeOf<Signature<never, number>>();
    expectTypeOf(chain(add.s(1), toStr.s())).toEqualTypeOf<Signature<number, string>>();
    expectTypeOf<OutOf<typeof c>>().toEqualTypeOf<string>();
  });

  it('a step that cannot accept the previous result is a compile error', () => {
    // @ts-expect-error str wants a string; add returns a number
    chain(add.s(1, 0), str.s());
    // @ts-expect-error the third step gets toStr's string
    chain(add.s(1, 2), toStr.s(), add.s(1));
    // @ts-expect-error a complete signature after a step takes no input (the parent's result would be prepended)
    chain(add.s(1, 0), add.s(1, 2));
  });

  it('immutable steps accept any previous result', () => {
    expectTypeOf(chain(toStr.s(1), add.si(1, 2))).toEqualTypeOf<Signature<never, number>>();
  });

  it('nested chains splice: types flow through them', () => {
    const nested = chain(chain(add.s(1, 2), add.s(3)), chain(toStr.s(), str.s()));
    expectTypeOf(nested).toEqualTypeOf<Signature<never, number>>();
    // @ts-expect-error the inner chain starts with str (string) after add (number)
    chain(chain(add.s(1, 2), add.s(3)), chain(str.s(), toStr.s()));
  });
});

describe('group', () => {
  it('the output is a tuple of member outputs, in member order', () => {
    const g = group(add.s(1, 2), toStr.s(3), fetchN.s(4));
    expectTypeOf<OutOf<typeof g>>().toEqualTypeOf<[number, string, { n: number }]>();
    expectTypeOf(g).toEqualTypeOf<Signature<never, [number, string, { n: number }]>>();
  });

  it('an empty group outputs [] and ignores its input', () => {
    expectTypeOf(group()).toEqualTypeOf<Signature<unknown, []>>();
  });

  it('the input is what every member accepts (immutable members accept anything)', () => {
    const g = group(add.s(1), add.si(2, 3));
    expectTypeOf<InOf<typeof g>>().toEqualTypeOf<number>();
    expectTypeOf(chain(add.s(1, 2), group(add.s(1), toStr.s(), add.si(1, 1)))).toEqualTypeOf<Signature<never, [number, string, number]>>();
  });

  it('in a chain, every member must accept the previous result', () => {
    // @ts-expect-error add.s(1) wants a number; toStr returns a string
    chain(toStr.s(1), group(add.s(1), add.si(2, 3)));
    // @ts-expect-error str wants a string, add a number: no value is both
    chain(add.s(1, 2), group(add.s(1), str.s()));
    // @ts-expect-error complete members take no input
    chain(add.s(1, 2), group(add.s(1, 2), add.s(3, 4)));
  });
});

describe('chord', () => {
  it('the body receives the header tuple; the output is the body', () => {
    expectTypeOf(chord(group(add.s(1, 1), toStr.s(2)), pair.s())).toEqualTypeOf<Signature<never, string>>();
    expectTypeOf(chord(group(add.s(1, 1), add.s(2, 2)), xsum.s())).toEqualTypeOf<Signature<never, number>>();
    expectTypeOf(chord([add.s(1, 1), add.s(2, 2)], xsum.s())).toEqualTypeOf<Signature<never, number>>();
  });

  it('a chord in a chain takes the header input', () => {
    const c = chord(group(add.s(1), add.s(2)), xsum.s());
    expectTypeOf<InOf<typeof c>>().toEqualTypeOf<number>();
    expectTypeOf(chain(add.s(1, 0), c, toStr.s())).toEqualTypeOf<Signature<never, string>>();
    // @ts-expect-error the header wants a number; toStr gives a string
    chain(toStr.s(1), c);
  });

  it('a body that cannot accept the header results is a compile error', () => {
    // @ts-expect-error str wants a string, the header gives [number, number]
    chord(group(add.s(1, 1), add.s(2, 2)), str.s());
    // @ts-expect-error the same with an array header
    chord([add.s(1, 1), add.s(2, 2)], str.s());
    // @ts-expect-error xsum wants number[], the header gives [number, string]
    chord(group(add.s(1, 1), toStr.s(2)), xsum.s());
    // @ts-expect-error pair wants [number, string], the header gives [string, number]
    chord(group(toStr.s(2), add.s(1, 1)), pair.s());
  });
});

describe('map, starmap, chunks', () => {
  it('map: one node per item, an array of results; it ignores any parent result', () => {
    expectTypeOf(double.map([1, 2, 3])).toEqualTypeOf<Signature<unknown, number[]>>();
    expectTypeOf(chain(toStr.s(1), double.map([1, 2]), xsum.s())).toEqualTypeOf<Signature<never, number>>();
    // @ts-expect-error double takes numbers
    double.map(['a']);
  });

  it('starmap: one node per argument list', () => {
    expectTypeOf(add.starmap([[1, 2], [3, 4]])).toEqualTypeOf<Signature<unknown, number[]>>();
    expectTypeOf(toStr.starmap([[1]])).toEqualTypeOf<Signature<unknown, string[]>>();
    // @ts-expect-error every argument list must be complete
    add.starmap([[1]]);
  });

  it('chunks: an array of arrays', () => {
    expectTypeOf(add.chunks([[1, 2], [3, 4], [5, 6]], 2)).toEqualTypeOf<Signature<unknown, number[][]>>();
    // @ts-expect-error argument lists are checked
    add.chunks([[1, '2']], 2);
    // @ts-expect-error the chunk size is required
    add.chunks([[1, 2]]);
    // @ts-expect-error str wants a string, chunks give number[][]
    chain(add.chunks([[1, 2]], 1), str.s());
  });
});

describe('submitting', () => {
  it('applyAsync resolves to a handle whose get() resolves to the canvas output', () => {
    const c = chain(add.s(1, 2), toStr.s());
    expectTypeOf(c.applyAsync).returns.resolves.toEqualTypeOf<RunHandle<string>>();
    expectTypeOf<RunHandle<string>['get']>().returns.resolves.toEqualTypeOf<string>();
    expectTypeOf(group(add.s(1, 2), toStr.s(3)).applyAsync).returns.resolves.toEqualTypeOf<RunHandle<[number, string]>>();
    expectTypeOf(chord([add.s(1, 1)], xsum.s()).applyAsync).returns.resolves.toEqualTypeOf<RunHandle<number>>();
    expectTypeOf(double.map([1]).applyAsync).returns.resolves.toEqualTypeOf<RunHandle<number[]>>();
    expectTypeOf(add.chunks([[1, 2]], 1).applyAsync).returns.resolves.toEqualTypeOf<RunHandle<number[][]>>();
    expectTypeOf(fetchN.s(1).applyAsync).returns.resolves.toEqualTypeOf<RunHandle<{ n: number }>>();
  });

  it('delay and applyAsync check their arguments', () => {
    expectTypeOf(add.delay).parameters.toEqualTypeOf<[number, number]>();
    expectTypeOf(add.delay).returns.toEqualTypeOf<Promise<RunHandle<number>>>();
    expectTypeOf(fetchN.delay).returns.toEqualTypeOf<Promise<RunHandle<{ n: number }>>>();
    // @ts-expect-error one argument missing
    typeOnly(() => add.delay(1));
    // @ts-expect-error a string where a number is wanted
    typeOnly(() => add.delay(1, '2'));
    // @ts-expect-error too many arguments
    typeOnly(() => add.delay(1, 2, 3));
    // @ts-expect-error applyAsync takes the arguments as one array
    typeOnly(() => add.applyAsync([1]));
    // @ts-expect-error an unknown option
    typeOnly(() => add.applyAsync([1, 2], { queu: 'fast' }));
    typeOnly(() => add.applyAsync([1, 2], { queue: 'fast', priority: 5, runId: 'r1' }));
  });

  it('raw canvas data submits untyped; app.run takes the type you give it', () => {
    expectTypeOf<App['submit']>().returns.resolves.toEqualTypeOf<RunHandle<unknown>>();
    expectTypeOf(app.run<number>('some-run').get).returns.resolves.toEqualTypeOf<number>();
    expectTypeOf(app.run('some-run').get).returns.resolves.toBeUnknown();
    // @ts-expect-error raw data must be a canvas
    typeOnly(() => app.submit({ kind: 'signature', task: 'add' }));
  });

  it('Canvas<In, Out> is what the combinators build', () => {
    expectTypeOf(add.s(1)).toExtend<Canvas<number, number>>();
    expectTypeOf(add.s(1)).not.toExtend<Canvas<number, string>>();
  });
});

describe('types and values agree', () => {
  const live = createApp({ store: 'memory:' });
  const ladd = live.task('add', (a: number, b: number) => a + b);
  const ltoStr = live.task('toStr', (n: number) => String(n));
  const lxsum = live.task('xsum', (xs: number[]) => xs.reduce((a, b) => a + b, 0));
  afterEach(() => live.close());

  it('run.get() resolves to the typed value', async () => {
    live.worker({ concurrency: 4 });
    const run = await chain(ladd.s(1, 2), chord(group(ladd.s(10), ladd.s(20)), lxsum.s()), ltoStr.s()).applyAsync();
    const value = await run.get({ timeoutMs: 10_000 });
    expectTypeOf(value).toEqualTypeOf<string>();
    expect(value).toBe('36');
    const g = await (await group(ladd.s(1, 2), ltoStr.s(3)).applyAsync()).get({ timeoutMs: 10_000 });
    expectTypeOf(g).toEqualTypeOf<[number, string]>();
    expect(g).toEqual([3, '3']);
  });
});

describe('array forms keep their tuple types', () => {
  it('group([...]) and chord([...], body) type like group(a, b)', () => {
    expectTypeOf(group([add.s(1, 1), toStr.s(2)])).toEqualTypeOf(group(add.s(1, 1), toStr.s(2)));
    expectTypeOf(chord([add.s(1, 1), toStr.s(2)], pair.s())).toEqualTypeOf<Signature<never, string>>();
    // @ts-expect-error pair wants [number, string], the header array gives [string, number]
    chord([toStr.s(2), add.s(1, 1)], pair.s());
  });
});

describe('callbacks and chord modes', () => {
  const note = app.task('note', (value: number, label: string) => `${label}=${value}`);
  const alert = app.task('alert', (info: LinkErrorInfo, label: string) => `${label}: ${info.nodeId} ${info.error.message}`);
  const report = app.task('report', (xs: [MemberOutcome<number>, MemberOutcome<string>]) => xs.filter((x) => x.ok).length);
  const okCount = app.task('okCount', (xs: MemberOutcome<number>[]) => xs.filter((x) => x.ok).length);

  it('link and linkError keep the canvas type (a task signature keeps set())', () => {
    expectTypeOf(add.s(1, 2).link(note.s('sum'))).toEqualTypeOf<TaskSignature<never, number>>();
    expectTypeOf(add.s(1).linkError(alert.s('add'))).toEqualTypeOf<TaskSignature<number, number>>();
    expectTypeOf(add.s(1, 2).link(note.s('sum')).set({ queue: 'q' })).toEqualTypeOf<TaskSignature<never, number>>();
    expectTypeOf(chain(add.s(1, 2), toStr.s()).link(str.s())).toEqualTypeOf<Signature<never, string>>();
    expectTypeOf(group(add.s(1, 1), add.s(2, 2)).link(xsum.s())).toEqualTypeOf<Signature<never, [number, number]>>();
    expectTypeOf(chord([add.s(1, 1)], xsum.s()).linkError(alert.s('chord'))).toEqualTypeOf<Signature<never, number>>();
  });

  it('a callback must accept the result; an errback a LinkErrorInfo (immutable ones accept anything)', () => {
    // @ts-expect-error str wants a string, add returns a number
    add.s(1, 2).link(str.s());
    // @ts-expect-error xsum wants number[], the group gives [number, string]
    group(add.s(1, 1), toStr.s(2)).link(xsum.s());
    // @ts-expect-error double wants a number, an errback gets a LinkErrorInfo
    add.s(1, 2).linkError(double.s());
    // @ts-expect-error a complete signature takes no input
    add.s(1, 2).link(add.s(1, 2));
    add.s(1, 2).link(add.si(1, 2)).linkError(note.si(0, 'failed'));
    // @ts-expect-error the callback of applyAsync must accept the result too
    typeOnly(() => add.applyAsync([1, 2], { link: str.s() }));
    typeOnly(() => add.applyAsync([1, 2], { link: note.s('sum'), linkError: [alert.s('a'), alert.s('b')] }));
    typeOnly(() => chain(add.s(1, 2), toStr.s()).applyAsync({ link: str.s() }));
  });

  it('collect hands the body one MemberOutcome per member; the other modes keep the header tuple', () => {
    expectTypeOf(chord([add.s(1, 1), toStr.s(2)], report.s(), { onMemberFailure: 'collect' })).toEqualTypeOf<Signature<never, number>>();
    expectTypeOf(chord(group(add.s(1, 1), add.s(2, 2)), okCount.s(), { onMemberFailure: 'collect' })).toEqualTypeOf<Signature<never, number>>();
    expectTypeOf(chord([add.s(1, 1), add.s(2, 2)], xsum.s(), { onMemberFailure: 'failFast' })).toEqualTypeOf<Signature<never, number>>();
    expectTypeOf(chord([add.s(1, 1), add.s(2, 2)], xsum.s(), { onMemberFailure: 'waitAll' })).toEqualTypeOf<Signature<never, number>>();
    // @ts-expect-error with collect the body gets outcomes, not numbers
    chord([add.s(1, 1), add.s(2, 2)], xsum.s(), { onMemberFailure: 'collect' });
    // @ts-expect-error without collect the body gets the results, not outcomes
    chord([add.s(1, 1), toStr.s(2)], report.s());
    // @ts-expect-error an unknown mode (refused at run time too)
    typeOnly(() => chord([add.s(1, 1)], xsum.s(), { onMemberFailure: 'later' }));
  });
});

// A task may throw anything. What is recorded must serialize and reading it must never throw: a record
// that cannot be written is retried forever (the run never ends), and a throw there stops the worker.
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/index.ts';
import { errorInfo } from '../src/workers/execution.ts';
import { encodeThrown } from '../src/workers/thread-protocol.ts';

const apps: App[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

const withField = (field: 'name' | 'message', value: unknown): Error => Object.assign(new Error('x'), { [field]: value });
const cyclic = (): Record<string, unknown> => {
  const o: Record<string, unknown> = {};
  o['self'] = o;
  return o;
};
const hostile = (): [string, unknown][] => [
  ['a BigInt message', withField('message', 10n)],
  ['a cyclic object as message', withField('message', cyclic())],
  ['a Symbol name', withField('name', Symbol('s'))],
  ['a number name', withField('name', 42)],
  ['a null-prototype object with a BigInt field', Object.assign(Object.create(null) as object, { id: 1n })],
  ['a cyclic object', cyclic()],
  ['a Symbol', Symbol('thrown')],
  ['a BigInt', 7n],
  ['undefined', undefined],
  ['an error whose message getter throws', Object.defineProperty(new Error('x'), 'message', { get: () => { throw new Error('no'); } })],
  ['a revoked proxy', (() => { const p = Proxy.revocable({}, {}); p.revoke(); return p.proxy; })()],
];

describe('errorInfo', () => {
  for (const [what, thrown] of hostile()) {
    it(`${what}: strings only, JSON round-trips, never throws`, () => {
      const info = errorInfo(thrown);
      expect(typeof info.name).toBe('string');
      expect(typeof info.message).toBe('string');
      if ('stack' in info) expect(typeof info.stack).toBe('string');
      expect(JSON.parse(JSON.stringify(info))).toEqual(info);
    });
  }

  it('names the value where it can', () => {
    expect(errorInfo(withField('message', 10n))).toMatchObject({ name: 'Error', message: '10n' });
    expect(errorInfo(withField('name', Symbol('s')))).toMatchObject({ name: 'Symbol(s)', message: 'x' });
    expect(errorInfo(Symbol('thrown'))).toEqual({ name: 'NonError', message: 'a non-Error value was thrown: Symbol(thrown)' });
    expect(errorInfo('boom')).toEqual({ name: 'NonError', message: 'a non-Error value was thrown: "boom"' });
    expect(errorInfo({ why: 1 })).toEqual({ name: 'NonError', message: 'a non-Error value was thrown: {"why":1}' });
  });
});

describe('encodeThrown (what a pool thread posts back)', () => {
  for (const [what, thrown] of hostile()) {
    it(`${what}: can be posted (structured clone) and never throws`, () => {
      const encoded = encodeThrown(thrown);
      expect(() => structuredClone(encoded)).not.toThrow();
    });
  }
});

describe('a run whose task throws such a value ends, failed', () => {
  for (const [what, make] of [
    ['an Error with a BigInt message', () => withField('message', 10n)],
    ['an Error with a Symbol name', () => withField('name', Symbol('s'))],
    ['a null-prototype object with a BigInt field', () => Object.assign(Object.create(null) as object, { id: 1n })],
  ] as const) {
    it(`${what} (SQLite)`, async () => {
      const app = createApp({ store: 'sqlite::memory:' });
      apps.push(app);
      const t = app.task('t', () => {
        throw make();
      });
      app.worker({ pollMs: 10 });
      const run = await t.delay();
      await expect(run.get({ timeoutMs: 3000 })).rejects.toMatchObject({ code: 'TASK_FAILED' });
    });
  }
});

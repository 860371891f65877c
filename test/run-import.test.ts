// Importing exported runs (app.runs.import): what moves between stores, and the edited or damaged
// exports that are refused, naming the line, before anything is written.
import { createHash } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { exportRun } from '../src/app/run-export.ts';
import { compile } from '../src/canvas/compile.ts';
import type { CanvasData } from '../src/canvas/types.ts';
import { MemoryStore } from '../src/eventstore/memory.ts';
import { chain, createApp, group, taskContext, type App } from '../src/index.ts';
import { Coordinator } from '../src/workers/coordinator.ts';
import { everyStore } from './support/every-store.ts';
import { ManualClock } from './support/store-conformance.ts';

const { stores, dir, cleanup } = await everyStore('runimport');
afterAll(cleanup);
const apps: App[] = [];
afterEach(async () => { for (const a of apps.splice(0)) await a.close(); });
const open = (store: string) => { const app = createApp({ store }); apps.push(app); return app; };
const sqlite = (name: string) => `sqlite:${dir}/${name}-${Math.random().toString(36).slice(2)}.db`;

/** An export file as a hostile or careless user would write it: valid header, count and checksum. */
const exportOf = (lines: string[], runId = 'r') => {
  const h = createHash('sha256');
  for (const l of lines) h.update(l).update('\n');
  return `${JSON.stringify({ format: 'lovage-run', formatVersion: 1, runId, events: lines.length })}\n${lines.join('\n')}${lines.length ? '\n' : ''}${JSON.stringify({ checksum: `sha256:${h.digest('hex')}` })}\n`;
};
const lineOf = (event: unknown, version: number) => JSON.stringify({ version, event });
const eventsOf = (text: string) => text.trimEnd().split('\n').slice(1, -1).map((l) => JSON.parse(l).event);
const oneNodeDag = { nodes: [{ id: '0', task: 'a', args: [1], immutable: false, input: null, queue: 'default', priority: 0 }], result: { ref: '0' } };
const submitted = lineOf({ type: 'WorkflowSubmitted', at: 1000, dag: oneNodeDag }, 1);
const ready = { type: 'NodeReady', at: 1000, nodeId: '0', task: 'a', args: [1], queue: 'default', priority: 0 };
/** The message of the import's refusal, or `imported` (then the run must not exist either way). */
const refusal = (app: App, text: string, runId: string) => app.runs.import(text, { runId }).then(() => 'imported', (e: Error & { code?: string }) => `${e.code}: ${e.message}`);

for (const [name, url] of stores) {
  describe(`export/import of a resumed run on ${name}`, () => {
    it('an untouched export of a run that was resumed imports (two NodeReady for one node)', async () => {
      const app = open(url());
      let fail = true;
      const a = app.task('a', (x: number) => x + 1);
      const b = app.task('b', (x: number) => { if (fail) throw new Error('not yet'); return x * 10; });
      app.worker();
      const run = await chain(a.s(1), b.s()).applyAsync();
      await expect(run.get({ timeoutMs: 5000 })).rejects.toMatchObject({ code: 'TASK_FAILED' });
      fail = false;
      expect(await (await app.runs.resume(run.id)).get({ timeoutMs: 5000 })).toBe(20);
      const text = await app.runs.export(run.id);
      const copy = await app.runs.import(text, { runId: 'copy' });
      expect((await app.inspect(copy)).status).toBe('succeeded');
      expect(await app.runs.export(copy)).toBe(text.replace(`"runId":"${run.id}"`, '"runId":"copy"'));
    });
  });
}

describe('import of edited exports', () => {
  it('refuses a log whose run ended while a node is still ready (else a worker runs the task of a finished run)', async () => {
    const app = open(sqlite('ended'));
    const ranFor: string[] = [];
    const a = app.task('a', (x: number) => x + 1);
    const b = app.task('b', (x: number) => (ranFor.push(taskContext().runId), x * 10), { queue: 'later' });
    app.worker({ queues: ['default'] });
    const run = await chain(a.s(1), b.s()).applyAsync();
    const store = await app.store();
    for (let i = 0; i < 500 && (await store.readStream(run.id)).length < 5; i++) await new Promise((r) => setTimeout(r, 5));
    const events = eventsOf(await app.runs.export(run.id)); // ..., NodeSucceeded 0, NodeReady 1 (b waits on queue "later")
    expect(events.at(-1)).toMatchObject({ type: 'NodeReady', nodeId: '1' });
    const forged = exportOf([...events, { type: 'WorkflowSucceeded', at: events.at(-1).at, result: 42 }].map((e, i) => lineOf(e, i + 1)));
    expect(await refusal(app, forged, 'forged')).toBe('VALIDATION: export line 7: the run ends (WorkflowSucceeded) while node 1 is still ready; a run ends only when no node is ready or running (else a worker would run a node of a finished run)');
    app.worker({ queues: ['later'] });
    await new Promise((r) => setTimeout(r, 300));
    expect({ ranForForged: ranFor.filter((id) => id === 'forged'), run: await store.getRun('forged') }).toEqual({ ranForForged: [], run: undefined });
  });

  it('refuses non-finite numbers (1e400) instead of storing a log that differs from the file', async () => {
    const app = open(sqlite('inf'));
    const text = exportOf([submitted, '{"version":2,"event":{"type":"NodeReady","at":1000,"nodeId":"0","task":"a","args":[1e400],"queue":"default","priority":0}}']);
    expect(await refusal(app, text, 'inf')).toMatch(/^VALIDATION: export line 3: event\.args\[0\]: Infinity \(not a finite number\) cannot be stored/);
    expect(await (await app.store()).getRun('inf')).toBeUndefined();
  });

  it('refuses an export with no events instead of returning the id of a run that does not exist', async () => {
    const app = open(sqlite('empty'));
    expect(await refusal(app, exportOf([], 'nothing'), 'nothing')).toBe('VALIDATION: export line 2: the export holds no events; a run has at least its WorkflowSubmitted');
    expect(await (await app.store()).getRun('nothing')).toBeUndefined();
  });

  it('refuses malformed event fields with the line and the field, as VALIDATION (not a raw store error, not a stuck run)', async () => {
    const app = open(sqlite('fields'));
    const cases: [event: Record<string, unknown>, message: string][] = [
      [{ type: 'NodeReady', at: 1000, nodeId: '0', task: 'a', queue: 'default', priority: 0 }, 'NodeReady field args is missing; allowed is an array'],
      [{ ...ready, queue: 5, priority: 'x' }, 'NodeReady field queue is 5; allowed is a queue name (1-100 of A-Z a-z 0-9 _ . : -)'],
      [{ ...ready, priority: 'x' }, 'NodeReady field priority is "x"; allowed is a priority (an integer from -1000000 to 1000000)'],
      [{ ...ready, task: '' }, 'NodeReady field task is ""; allowed is a task name'],
      [{ ...ready, availableAt: 'soon' }, 'NodeReady field availableAt is "soon"; allowed is a time'],
      [{ ...ready, at: undefined }, 'NodeReady field at is missing; allowed is a time'],
    ];
    for (const [event, message] of cases) {
      expect(await refusal(app, exportOf([submitted, lineOf(event, 2)]), 'bad')).toContain(`VALIDATION: export line 3: ${message}`);
    }
    const badDag = lineOf({ type: 'WorkflowSubmitted', at: 1000, dag: { ...oneNodeDag, nodes: [{ ...oneNodeDag.nodes[0], queue: 7 }] } }, 1);
    expect(await refusal(app, exportOf([badDag]), 'bad')).toContain('VALIDATION: export line 2: WorkflowSubmitted field dag is');
    const started = { type: 'NodeStarted', at: 1000, nodeId: '0', attempt: 1, worker: 'w', leaseToken: 't' };
    expect(await refusal(app, exportOf([submitted, lineOf(ready, 2), lineOf(started, 3)]), 'bad')).toContain('VALIDATION: export line 4: NodeStarted field leaseExpiresAt is missing');
    expect(await (await app.store()).getRun('bad')).toBeUndefined();
  });

  it('imports a run with no nodes (an empty group)', async () => {
    const app = open(sqlite('nodes0'));
    app.worker();
    const run = await app.submit({ kind: 'group', members: [] });
    expect(await run.get({ timeoutMs: 5000 })).toEqual([]);
    expect(await app.runs.import(await app.runs.export(run.id), { runId: 'none' })).toBe('none');
  });

  it('reads a file whose line endings became CRLF', async () => {
    const app = open(sqlite('crlf'));
    const a = app.task('a', (x: number) => x + 1);
    app.worker();
    const run = await a.delay(1);
    await run.get({ timeoutMs: 5000 });
    const text = await app.runs.export(run.id);
    const copy = await app.runs.import(text.replace(/\n/g, '\r\n'), { runId: 'crlf' });
    expect(await app.runs.export(copy)).toBe(text.replace(`"runId":"${run.id}"`, '"runId":"crlf"'));
  });
});

/** A nested array `depth` levels deep: [[[...[1]...]]]. */
const nested = (depth: number, leaf: unknown = 1): unknown => { let v: unknown = leaf; for (let i = 0; i < depth; i++) v = [v]; return v; };

describe('import of genuine exports', () => {
  it('imports a run whose argument and result nest 255 levels (accepted at submit and as a result)', async () => {
    const app = open('memory:');
    const deep = app.task('deep', (x: unknown) => x);
    app.worker({ pollMs: 5 });
    const run = await deep.s(nested(255)).applyAsync();
    expect(await run.get({ timeoutMs: 5000 })).toEqual(nested(255));
    const text = await app.runs.export(run.id);
    expect(await app.runs.import(text, { runId: 'copy' }).catch((e: Error) => e.message)).toBe('copy');
    expect(await app.runs.export('copy')).toBe(text.replace(`"runId":"${run.id}"`, '"runId":"copy"'));
  });

  it('imports a run of groups nested 130 deep (limits.maxDepth 200; deeper than 256 levels of expression in the event)', async () => {
    const app = createApp({ store: 'memory:', limits: { maxDepth: 200 } });
    apps.push(app);
    app.task('echo', (...xs: unknown[]) => xs);
    app.worker({ pollMs: 5 });
    let canvas: CanvasData = { kind: 'signature', task: 'echo', args: [1], immutable: false, options: {} };
    for (let i = 0; i < 130; i++) canvas = { kind: 'group', members: [canvas] };
    const run = await app.submit(canvas);
    expect(await run.get({ timeoutMs: 5000 })).toEqual(nested(130, [1]));
    const text = await app.runs.export(run.id);
    expect(await app.runs.import(text, { runId: 'copy-deep' }).catch((e: Error) => e.message.slice(0, 200))).toBe('copy-deep');
  });

  it('imports a run of collect chords nested 255 deep (limits.maxDepth 256; about 760 levels of expression)', async () => {
    const app = createApp({ store: 'memory:', limits: { maxDepth: 256 } });
    apps.push(app);
    app.task('echo', (...xs: unknown[]) => xs);
    app.worker({ pollMs: 5 });
    let canvas: CanvasData = { kind: 'signature', task: 'echo', args: [1], immutable: false, options: {} };
    for (let i = 0; i < 255; i++) canvas = { kind: 'chord', header: { kind: 'group', members: [canvas] }, body: { kind: 'group', members: [] }, onMemberFailure: 'collect' };
    const run = await app.submit(canvas);
    expect(await run.get({ timeoutMs: 5000 })).toEqual([]);
    const text = await app.runs.export(run.id);
    expect(await app.runs.import(text, { runId: 'copy-collect' }).catch((e: Error) => e.message.slice(0, 200))).toBe('copy-collect');
  });

  it('imports a run of a step and 10,000 empty groups in a chain (a long DAG the checks walk without recursion)', async () => {
    const app = open('memory:');
    const a = app.task('a', (x: number) => x + 1);
    app.worker({ pollMs: 5 });
    const run = await chain(a.s(1), ...Array.from({ length: 10_000 }, () => group([]))).applyAsync();
    expect(await run.get({ timeoutMs: 10_000 })).toEqual([]);
    expect(await app.runs.import(await app.runs.export(run.id), { runId: 'long' })).toBe('long');
  }, 30_000);

  it('imports a run where a worker\'s lease ran out (NodeLeaseExpired) and its late completion was fenced', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock: clock.now });
    const coordinator = new Coordinator(store);
    await coordinator.submit('leased', compile({ kind: 'signature', task: 't', args: [1], immutable: false, options: {} }), clock.t);
    const [a] = await store.claim({ queues: ['default'], limit: 1, worker: 'A', leaseMs: 1000 });
    clock.t += 2000;
    const [b] = await store.claim({ queues: ['default'], limit: 1, worker: 'B', leaseMs: 1000 });
    coordinator.observe([a!, b!]);
    await coordinator.record([{ type: 'Complete', runId: 'leased', nodeId: '0', attempt: b!.attempt, leaseToken: b!.leaseToken, outcome: { ok: true, value: 'B' }, at: clock.t }]);
    await coordinator.record([{ type: 'Complete', runId: 'leased', nodeId: '0', attempt: a!.attempt, leaseToken: a!.leaseToken, outcome: { ok: true, value: 'A' }, at: clock.t }]);
    const text = exportRun('leased', await store.readStream('leased'));
    expect(eventsOf(text).map((e) => e.type)).toEqual(
      ['WorkflowSubmitted', 'NodeReady', 'NodeStarted', 'NodeLeaseExpired', 'NodeStarted', 'NodeSucceeded', 'WorkflowSucceeded', 'NodeCompletionFenced']);
    const app = open('memory:');
    app.task('t', (x: number) => x);
    expect(await app.runs.import(text, { runId: 'leased' })).toBe('leased');
    expect(await app.inspect('leased')).toMatchObject({ status: 'succeeded', result: 'B' });
    expect(await app.runs.export('leased')).toBe(text);
  });
});

describe('import of exports with a malformed DAG', () => {
  const node = (id: string, input: unknown, more: Record<string, unknown> = {}) => ({ id, task: 'a', args: [1], immutable: false, input, queue: 'default', priority: 0, ...more });
  const withDag = (dag: unknown) => exportOf([lineOf({ type: 'WorkflowSubmitted', at: 1000, dag }, 1), lineOf(ready, 2)]);

  it('refuses a DAG result of {} before anything is written; other runs go on (else the run never ends and the others stall)', async () => {
    const app = open('memory:');
    const a = app.task('a', (x: number) => x + 1);
    const text = withDag({ nodes: [node('0', null)], result: {} });
    expect(await refusal(app, text, 'crafted')).toBe(
      'VALIDATION: export line 2: WorkflowSubmitted dag.result is {}; allowed is an expression: { ref } naming a node, { list: [...], after? }, { collect: [{ scope, value }], after? } or { failure } naming a linkError scope');
    app.worker({ pollMs: 5 });
    const other = await a.s(41).applyAsync();
    expect(await other.get({ timeoutMs: 2000 })).toBe(42);
    expect(await (await app.store()).getRun('crafted')).toBeUndefined();
  });

  it('refuses malformed expressions, unknown nodes and scopes, duplicate ids, naming the path of the bad part', async () => {
    const app = open('memory:');
    const one = [node('0', null)];
    const cases: [dag: unknown, message: string][] = [
      [{ nodes: one, result: { ref: '9' } }, 'dag.result.ref is "9"; allowed is the id of a node of the DAG'],
      [{ nodes: one, result: { list: { ref: '0' } } }, 'dag.result.list is {"ref":"0"}; allowed is an array of expressions'],
      [{ nodes: one, result: { list: [{ ref: '0' }, { lst: [] }] } }, 'dag.result.list[1] is {"lst":[]}; allowed is an expression'],
      [{ nodes: one, result: { ref: '0', list: [] } }, 'dag.result is {"ref":"0","list":[]}; allowed is an expression'],
      [{ nodes: one, result: { list: [], after: 5 } }, 'dag.result.after is 5; allowed is an expression'],
      [{ nodes: one, result: [{ ref: '0' }] }, 'field dag is'], // an array is no object: the field check's
      [{ nodes: [node('0', null), node('1', { list: [{ ref: 'x' }] })], result: { ref: '1' } }, 'dag.nodes[1].input.list[0].ref is "x"; allowed is the id of a node of the DAG'],
      [{ nodes: [node('0', null), node('1', { ref: '1' })], result: { ref: '1' } }, 'dag.nodes[1].input.ref is "1"; allowed is the id of a node listed before node 1 (a node that waits for itself or a later node never runs)'],
      [{ nodes: [node('0', null), node('0', null)], result: { ref: '0' } }, 'dag.nodes[1].id is "0"; allowed is an id no other node has'],
      [{ nodes: one, result: { failure: '0.linkError.0' } }, 'dag.result.failure is "0.linkError.0"; allowed is the id of a linkError scope of the DAG'],
      [{ nodes: one, result: { collect: [{ scope: 'm', value: { ref: '0' } }] } }, 'dag.result.collect[0].scope is "m"; allowed is the id of a member scope of the DAG'],
      [{ nodes: one, result: { collect: [{ value: { ref: '0' } }] } }, 'dag.result.collect[0] is {"value":{"ref":"0"}}; allowed is a collect member { scope, value }'],
      [{ nodes: [node('0', null, { scope: 's' })], result: { ref: '0' } }, 'dag.nodes[0].scope is "s"; allowed is the id of a scope of the DAG'],
      [{ nodes: one, result: { ref: '0' }, scopes: [{ id: 's', kind: 'link', parent: 'p' }] }, 'dag.scopes[0].parent is "p"; allowed is the id of a scope listed before it'],
      [{ nodes: one, result: { ref: '0' }, scopes: [{ id: 's', kind: 'loop' }] }, 'dag.scopes[0].kind is "loop"; allowed is "link", "linkError" or "member"'],
      [{ nodes: one, result: { ref: '0' }, scopes: [{ id: 's', kind: 'linkError', on: ['7'] }] }, 'dag.scopes[0].on[0] is "7"; allowed is the id of a node of the DAG'],
    ];
    for (const [dag, message] of cases) expect(await refusal(app, withDag(dag), 'bad')).toContain(`VALIDATION: export line 2: WorkflowSubmitted ${message}`);
    expect(await (await app.store()).getRun('bad')).toBeUndefined();
  });

  it('imports a result expression 1,200 lists deep (2,400 JSON levels: more than 255 nested collect chords reach), and the run ends', async () => {
    const app = open('memory:');
    app.task('a', (x: number) => x + 1);
    app.worker({ pollMs: 5 });
    const result = `${'{"list":['.repeat(1200)}{"ref":"0"}${']}'.repeat(1200)}`;
    const dag = `{"nodes":${JSON.stringify([node('0', null)])},"result":${result}}`;
    const text = exportOf([`{"version":1,"event":{"type":"WorkflowSubmitted","at":1000,"dag":${dag}}}`, lineOf(ready, 2)]);
    expect(await app.runs.import(text, { runId: 'deep-ok' })).toBe('deep-ok');
    let value: unknown = await app.run('deep-ok').get({ timeoutMs: 5000 });
    let depth = 0;
    while (Array.isArray(value)) [value, depth] = [value[0], depth + 1];
    expect({ value, depth }).toEqual({ value: 2, depth: 1200 });
  });

  it('refuses an expression nested deeper than the engine walks, naming where, without overflowing the stack', async () => {
    const app = open('memory:');
    // Written out: JSON.stringify itself recurses, and would overflow on it.
    const result = `${'{"list":['.repeat(100_000)}{"ref":"0"}${']}'.repeat(100_000)}`;
    const dag = `{"nodes":${JSON.stringify([node('0', null)])},"result":${result}}`;
    const text = exportOf([`{"version":1,"event":{"type":"WorkflowSubmitted","at":1000,"dag":${dag}}}`, lineOf(ready, 2)]);
    const message = await refusal(app, text, 'bad');
    expect(message).toMatch(/^VALIDATION: export line 2: event\.dag\.result\.list\[0\]\.list\[0\].*: nesting deeper than 3000 levels cannot be stored/);
    expect(message.length).toBeLessThan(400);
  });

  it.each(['queue', 'args'])('refuses a %s nested 100,000 deep as VALIDATION, writing nothing (the stores\' JSON.stringify would overflow)', async (field) => {
    const app = open('memory:');
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const fields = { queue: '"default"', args: '[1]', [field]: deep };
    const line = `{"version":2,"event":{"type":"NodeReady","at":1000,"nodeId":"0","task":"a","args":${fields.args},"queue":${fields.queue},"priority":0}}`;
    expect(await refusal(app, exportOf([submitted, line]), 'deep')).toMatch(/^VALIDATION: export line 3: event\.\w+\[0\]\[0\].*: nesting deeper than 3000 levels cannot be stored/);
    expect(await (await app.store()).getRun('deep')).toBeUndefined();
  });

  it('refuses a non-finite number deep in an event with a shortened path', async () => {
    const app = open('memory:');
    const line = `{"version":2,"event":{"type":"NodeReady","at":1000,"nodeId":"0","task":"a","args":${'['.repeat(255)}1e400${']'.repeat(255)},"queue":"default","priority":0}}`;
    const message = await refusal(app, exportOf([submitted, line]), 'inf');
    expect(message).toMatch(/^VALIDATION: export line 3: event\.args\[0\]\[0\].*Infinity \(not a finite number\) cannot be stored/);
    expect(message.length).toBeLessThan(400);
  });
});

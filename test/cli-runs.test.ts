// `lovage runs` reading subcommands, driven in-process through main() against a SQLite file whose runs
// an app with an in-process worker made (test/support/cli-runs-fixture.ts). The subcommands that change
// runs are in cli-runs-manage.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runsFixture, type RunsFixture } from './support/cli-runs-fixture.ts';

let fx: RunsFixture;
beforeAll(async () => {
  fx = await runsFixture('cli-runs');
});
afterAll(() => fx.close());

const ids = (out: string) => out.split('\n').slice(1).filter((l) => !l.startsWith('next page')).map((l) => l.split(/\s+/)[0]);

describe('lovage runs ls', () => {
  it('lists runs newest first, one line each, with status, time, duration and tasks', async () => {
    const { code, out } = await fx.cli('runs', 'ls');
    expect(code).toBe(0);
    expect(out.split('\n')[0]).toMatch(/^RUN\s+STATUS\s+CREATED\s+DURATION\s+CANVAS$/);
    expect(ids(out)).toEqual(['wait-1', 'chord-1', 'chain-1', 'ok-1']);
    expect(out).toMatch(/chord-1\s+failed\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+\d+ ms\s+4 nodes: add ×2, flaky, sum/);
    expect(out).toMatch(/wait-1\s+running .* so far\s+parked \(7\)/);
    expect(out).not.toContain('next page');
  });

  it('filters by status, task, text and time', async () => {
    expect(ids((await fx.cli('runs', 'ls', '--status', 'failed')).out)).toEqual(['chord-1', 'chain-1']);
    expect(ids((await fx.cli('runs', 'ls', '--status', 'succeeded,running')).out)).toEqual(['wait-1', 'ok-1']);
    expect(ids((await fx.cli('runs', 'ls', '--task', 'sum')).out)).toEqual(['chord-1']);
    expect(ids((await fx.cli('runs', 'ls', '--text', 'parked')).out)).toEqual(['wait-1']);
    expect(ids((await fx.cli('runs', 'ls', '--since', '1h')).out)).toHaveLength(4);
    expect((await fx.cli('runs', 'ls', '--until', '1h')).out).toBe('no runs match');
    expect(ids((await fx.cli('runs', 'ls', '--since', '2000-01-01T00:00:00Z', '--until', '2999-01-01')).out)).toHaveLength(4);
  });

  it('pages with --after, the cursor plain or in base64', async () => {
    const first = await fx.cli('runs', 'ls', '--limit', '3');
    expect(ids(first.out)).toEqual(['wait-1', 'chord-1', 'chain-1']);
    const cursor = /next page: --after (\S+)$/.exec(first.out)![1]!;
    expect(cursor).toMatch(/^\d+:chain-1$/);
    expect(ids((await fx.cli('runs', 'ls', '--limit', '3', '--after', cursor)).out)).toEqual(['ok-1']);
    expect(ids((await fx.cli('runs', 'ls', '--after', Buffer.from(cursor).toString('base64'))).out)).toEqual(['ok-1']);
    const page = JSON.parse((await fx.cli('runs', 'ls', '--limit', '2', '--json')).out) as { runs: { runId: string; status: string; tasks: string[] }[]; next: string };
    expect(page.runs.map((r) => r.runId)).toEqual(['wait-1', 'chord-1']);
    expect(page.runs[1]).toMatchObject({ status: 'failed', tasks: ['add', 'flaky', 'sum'] });
    expect(page.next).toMatch(/:chord-1$/);
  });
});

describe('lovage runs show / history / replay / graph', () => {
  it('show: the run and its error at the top, then every node with status, attempt, worker, times and stack', async () => {
    const { code, out } = await fx.cli('runs', 'show', 'chord-1');
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^run chord-1 {2}failed {2}\d+ ms {2}submitted \S+Z$/);
    expect(lines[1]).toBe('error  node 0.header.1 (task flaky) raised Error: flaky failed on 1');
    expect(out).toMatch(/0\.header\.0 {2}add {2}\(0,0\) {2}succeeded {2}attempt 1 {2}worker w1 {2}queued \d+ ms {2}ran \d+ ms {2}→ 0/);
    expect(out).toMatch(/0\.header\.1 {2}flaky {2}\(1\) {2}failed {2}attempt 1 {2}worker w1 .*✗ Error: flaky failed on 1/);
    expect(out).toMatch(/└─ 0\.body {2}sum {2}\(·\) {2}skipped$/m);
    expect(out).toMatch(/^ {3}│ {2}│ {6}at .*cli-runs-fixture\.ts/m); // the stack, indented under its node
    const colored = await fx.cliColor('runs', 'show', 'chord-1');
    expect(colored.out).toContain('\u001b[31mfailed\u001b[0m');
    expect(out).not.toContain('\u001b[');
    const json = JSON.parse((await fx.cli('runs', 'show', 'chord-1', '--json')).out) as { status: string; nodes: { id: string; status: string; error?: { stack: string } }[] };
    expect(json.status).toBe('failed');
    expect(json.nodes.map((n) => `${n.id}:${n.status}`)).toEqual(['0.header.0:succeeded', '0.header.1:failed', '0.header.2:succeeded', '0.body:skipped']);
    expect(json.nodes[1]!.error!.stack).toContain('flaky failed on 1');
  });

  it('history: one line an event, with version, time, type, node and details', async () => {
    const { code, out } = await fx.cli('runs', 'history', 'chain-1');
    expect(code).toBe(0);
    const lines = out.split('\n');
    const events = await fx.app.runs.history('chain-1');
    expect(lines).toHaveLength(events.length);
    expect(lines[0]).toMatch(/^ {3}1 {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}WorkflowSubmitted +3 nodes: add ×2, flaky$/);
    expect(out).toMatch(/NodeStarted +0 +attempt 1 {2}worker w1 {2}lease 30 s/);
    expect(out).toMatch(/NodeSucceeded +0 +attempt 1 {2}→ 2/);
    expect(out).toMatch(/NodeFailed +1 +attempt 1 {2}✗ Error: flaky failed on 2/);
    expect(out).toMatch(/NodesSkipped +2 +reason: /);
    expect(lines.at(-1)).toMatch(/^ +\d+ .*WorkflowFailed +1 +task flaky/);
    const json = JSON.parse((await fx.cli('runs', 'history', 'chain-1', '--json')).out) as { version: number; event: { type: string } }[];
    expect(json.map((e) => e.event.type)).toEqual(events.map((e) => e.event.type));
  });

  it('history --follow prints what exists, then new events until the run ends', async () => {
    await fx.app.submit({ kind: 'signature', task: 'slow', args: [300], immutable: false, options: {} }, { runId: 'slow-1' });
    const started = Date.now();
    const { code, out } = await fx.cli('runs', 'history', 'slow-1', '--follow');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(out.split('\n').map((l) => l.split(/\s+/)[3])).toEqual(['WorkflowSubmitted', 'NodeReady', 'NodeStarted', 'NodeSucceeded', 'WorkflowSucceeded']);
    const lines = (await fx.cli('runs', 'history', 'slow-1', '--follow', '--json')).out.split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { version: number }).version)).toEqual([1, 2, 3, 4, 5]);
  });

  it('replay: the state at a version or a time, with counts per status', async () => {
    const events = await fx.app.runs.history('chord-1');
    const atSubmit = await fx.cli('runs', 'replay', 'chord-1', '--at', '1');
    expect(atSubmit.code).toBe(0);
    expect(atSubmit.out.split('\n').slice(0, 2)).toEqual([
      `replay of run chord-1 at version 1 of ${events.length} (${new Date(events[0]!.event.at).toISOString()}, after WorkflowSubmitted)`,
      'nodes: 4 pending',
    ]);
    const v = events.findIndex((e) => e.event.type === 'NodeFailed') + 1;
    const atFail = await fx.cli('runs', 'replay', 'chord-1', '--at', String(v));
    expect(atFail.out).toMatch(new RegExp(`at version ${v} of ${events.length} \\(\\S+, after NodeFailed 0\\.header\\.1\\)`));
    expect(atFail.out).toMatch(/0\.header\.1 {2}flaky {2}\(1\) {2}failed/);
    expect(atFail.out).toMatch(/body {2}sum {2}\(·\) {2}pending/);
    expect((await fx.cli('runs', 'replay', 'chord-1', '--at', '0')).out).toContain('at version 0 of');
    const byTime = await fx.cli('runs', 'replay', 'chord-1', '--at', new Date(events[0]!.event.at).toISOString());
    expect(byTime.out).toMatch(/at version \d+ of/);
    const json = JSON.parse((await fx.cli('runs', 'replay', 'chord-1', '--at', '1', '--json')).out) as { at: { version: number }; state: { counts: Record<string, number> } };
    expect(json).toMatchObject({ at: { version: 1, of: events.length }, state: { counts: { pending: 4 } } });
  });

  it('graph: mermaid and dot with an edge per input reference and a style per status', async () => {
    const mermaid = (await fx.cli('runs', 'graph', 'chain-1', '--format', 'mermaid')).out.split('\n');
    expect(mermaid[0]).toBe('graph TD');
    expect(mermaid).toContain('  n0["0 · add<br/>succeeded"]');
    expect(mermaid.filter((l) => /^ {2}n\d+ --> n\d+$/.test(l))).toEqual(['  n0 --> n1', '  n1 --> n2']);
    expect(mermaid).toContain('  class n1 failed');
    expect(mermaid.some((l) => l.startsWith('  classDef failed fill:'))).toBe(true);
    const dot = (await fx.cli('runs', 'graph', 'chord-1', '--format', 'dot')).out.split('\n');
    expect(dot[0]).toBe('digraph "run chord-1" {');
    expect(dot.at(-1)).toBe('}');
    expect(dot.filter((l) => l.includes(' -> '))).toHaveLength(3);
    expect(dot).toContain('  "0.header.1" -> "0.body";');
    for (const line of dot.slice(1, -1)) expect(line).toMatch(/^ {2}(\w+=("[^"]*"|\w+);|node \[.*\];|"[^"]+"( -> "[^"]+")?( \[label="[^"]*", fillcolor="#[0-9a-f]{6}", color="#[0-9a-f]{6}"\])?;)$/);
    const json = JSON.parse((await fx.cli('runs', 'graph', 'chord-1', '--json')).out) as { nodes: { id: string; deps: string[] }[] };
    expect(json.nodes.at(-1)).toMatchObject({ id: '0.body', deps: ['0.header.0', '0.header.1', '0.header.2'] });
  });
});

describe('lovage runs: help and errors', () => {
  it('--help lists the subcommands; each subcommand has its own', async () => {
    const help = await fx.cli('runs', '--help');
    expect(help.code).toBe(0);
    for (const sub of ['ls', 'show', 'history', 'replay', 'graph', 'resume', 'retry', 'cancel', 'verify', 'export', 'import', 'prune']) expect(help.out).toMatch(new RegExp(`^ {2}${sub} +\\S`, 'm'));
    const show = await fx.cli('runs', 'show', '--help');
    expect([show.code, show.out.split('\n')[0]]).toEqual([0, 'Usage: lovage runs show <id> [options]']);
    expect((await fx.cli('--help')).out).toMatch(/^ {2}runs +inspect/m);
  });

  it('usage errors exit 2 naming the flag and what is allowed; LovageErrors exit 1', async () => {
    const usage = async (argv: string[], message: string | RegExp) => {
      const r = await fx.cli(...argv);
      expect(r).toMatchObject({ code: 2, out: '' });
      expect(r.err).toMatch(message);
    };
    await usage(['runs', 'ls', '--bogus'], /unknown option --bogus; allowed are --status, --task/);
    await usage(['runs', 'ls', '--status', 'done'], /--status: unknown status "done"; allowed are running, succeeded, failed, cancelled, quarantined/);
    await usage(['runs', 'ls', '--limit', '0'], /--limit must be an integer ≥ 1/);
    await usage(['runs', 'ls', '--since', 'yesterday'], /--since "yesterday" is invalid; allowed are an ISO time .* or an age such as 30m/);
    await usage(['runs', 'ls', '--after', 'nope!'], /--after "nope!" is not a cursor/);
    await usage(['runs', 'show'], /missing <id>/);
    await usage(['runs', 'show', 'a', 'b'], /unexpected argument "b"/);
    await usage(['runs', 'replay', 'chord-1'], /--at <version \| ISO time> is required/);
    await usage(['runs', 'replay', 'chord-1', '--at', 'noon'], /--at "noon" is invalid/);
    await usage(['runs', 'graph', 'chord-1', '--format', 'svg'], /--format "svg" is not supported; allowed are mermaid, dot/);
    await usage(['runs', 'frob'], /unknown subcommand "frob"; allowed are ls, show/);
    const missing = await fx.cli('runs', 'show', 'nope');
    expect(missing).toMatchObject({ code: 1, err: 'error: run nope does not exist in this store' });
    const noStore = await fx.cli('runs', 'ls', '--store', `sqlite:${fx.dir}/absent.db`);
    expect(noStore.code).toBe(1);
    expect(noStore.err).toContain('no such SQLite file');
  });
});

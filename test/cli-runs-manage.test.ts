// `lovage runs` subcommands that change runs or check them: resume, retry, cancel, verify,
// export/import, prune — in-process through main(), with the fixture's worker running the resumed nodes.
import Database from 'better-sqlite3';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runsFixture, type RunsFixture } from './support/cli-runs-fixture.ts';

let fx: RunsFixture;
beforeAll(async () => {
  fx = await runsFixture('cli-runs-manage');
});
afterAll(() => fx.close());

/** Runs SQL on the fixture's file, as someone editing the log behind Lovage's back would. */
const sql = (statement: string, ...params: unknown[]) => {
  const db = new Database(fx.db);
  try {
    db.prepare(statement).run(...params);
  } finally {
    db.close();
  }
};
const eventOf = (runId: string, version: number) => `run_key = (SELECT run_key FROM runs WHERE run_id = '${runId}') AND version = ${version}`;

describe('lovage runs verify', () => {
  it('exit 0 for clean runs, 1 for a forged decision or a corrupt line, with the difference shown', async () => {
    expect(await fx.cli('runs', 'verify', 'chord-1')).toMatchObject({ code: 0, out: expect.stringMatching(/^run chord-1: clean {2}\d+ steps, \d+ events: every recorded decision/) });
    expect((await fx.cli('runs', 'verify', '--all')).out.split('\n').at(-1)).toBe('verified 4 runs: 4 clean, 0 with differences, 0 corrupt');
    const exported = join(fx.dir, 'ok-1.jsonl');
    expect((await fx.cli('runs', 'export', 'ok-1', '-o', exported)).code).toBe(0);
    for (const copy of ['forged-1', 'corrupt-1']) expect((await fx.cli('runs', 'import', exported, '--as', copy)).code).toBe(0);
    // Forged: the second step's arguments changed in the log (v5 is NodeReady 1 with the parent's result 1 prepended).
    sql(`UPDATE events SET data = json_set(data, '$.args', json('[99,2]')) WHERE ${eventOf('forged-1', 5)}`);
    const forged = await fx.cli('runs', 'verify', 'forged-1');
    expect(forged.code).toBe(1);
    expect(forged.out).toMatch(/^run forged-1: 1 difference in \d+ steps/);
    expect(forged.out).toMatch(/version 4 {2}Complete 0\n {4}recorded {2}= NodeSucceeded 0 .*\n {14}≠ NodeReady 1 add \(99,2\) {2}\[differs in args\]\n {4}expected {2}= NodeSucceeded 0 .*\n {14}≠ NodeReady 1 add \(1,2\)/);
    const json = JSON.parse((await fx.cli('runs', 'verify', 'forged-1', '--json')).out) as { clean: boolean; differences: { version: number }[] };
    expect(json).toMatchObject({ clean: false, differences: [{ version: 4 }] });
    sql(`UPDATE events SET data = '{"type":"NodeSucc' WHERE ${eventOf('corrupt-1', 4)}`);
    const corrupt = await fx.cli('runs', 'verify', 'corrupt-1');
    expect(corrupt).toMatchObject({ code: 1, out: expect.stringMatching(/^run corrupt-1: CORRUPT {2}run corrupt-1 event 4 is unreadable/) });
    const all = await fx.cli('runs', 'verify', '--all');
    expect(all.code).toBe(1);
    expect(all.out.split('\n').at(-1)).toBe('verified 6 runs: 4 clean, 1 with differences, 1 corrupt');
    for (const id of ['forged-1', 'corrupt-1']) await (await fx.app.store()).deleteRuns([id]);
    expect((await fx.cli('runs', 'verify')).code).toBe(2);
    expect((await fx.cli('runs', 'verify', 'nope')).code).toBe(1);
  });
});

describe('lovage runs export / import', () => {
  it('export → import → show prints the same, byte for byte, but for the run id', async () => {
    const text = (await fx.cli('runs', 'export', 'chord-1')).out;
    expect(text.split('\n')[0]).toBe(`{"format":"lovage-run","formatVersion":1,"runId":"chord-1","events":${(await fx.app.runs.history('chord-1')).length}}`);
    const file = join(fx.dir, 'chord-1.jsonl');
    writeFileSync(file, `${text}\n`);
    expect(await fx.cli('runs', 'import', file, '--as', 'chord-copy')).toMatchObject({ code: 0, out: `imported run chord-copy: ${text.split('\n').length - 2} events from ${file}` });
    const show = async (id: string) => (await fx.cli('runs', 'show', id)).out.replaceAll(id, 'ID');
    expect(await show('chord-copy')).toBe(await show('chord-1'));
    expect((await fx.cli('runs', 'export', 'chord-copy')).out).toBe(text.replace('"runId":"chord-1"', '"runId":"chord-copy"'));
    const again = await fx.cli('runs', 'import', file);
    expect(again).toMatchObject({ code: 1, err: expect.stringContaining('exists in this store already; import it under another id (--as <id>)') });
    writeFileSync(file, text.split('\n').slice(0, 4).join('\n'));
    expect(await fx.cli('runs', 'import', file, '--as', 'damaged')).toMatchObject({ code: 1, err: expect.stringContaining('export line 5: the file ends after 3 of') });
    expect((await fx.cli('runs', 'import', file, '--as', 'bad id')).code).toBe(2);
    expect((await fx.cli('runs', 'import', join(fx.dir, 'absent.jsonl'))).err).toContain('no such file');
    expect(JSON.parse((await fx.cli('runs', 'export', 'chord-1', '-o', file, '--json')).out)).toMatchObject({ runId: 'chord-1', file });
    expect(readFileSync(file, 'utf8')).toBe(`${text}\n`);
    await (await fx.app.store()).deleteRuns(['chord-copy']);
  });
});

describe('lovage runs resume / retry / cancel', () => {
  it('resume: prints what was reset; the run then succeeds and the succeeded node is not run again', async () => {
    rmSync(fx.flag);
    const { code, out } = await fx.cli('runs', 'resume', 'chain-1');
    expect(code).toBe(0);
    expect(out.split('\n')).toEqual([
      'resumed run chain-1',
      '  reset to pending (2): 1, 2',
      '  ready now: 1',
      expect.stringMatching(/^status: (running|succeeded) /),
    ]);
    expect(await fx.app.run('chain-1').get({ timeoutMs: 10_000 })).toBe(23); // add(1,1)=2 → flaky(2)=20 → add(20,3)
    expect(fx.ledger.filter((l) => l.startsWith('chain-1:'))).toEqual(['chain-1:0', 'chain-1:1', 'chain-1:1', 'chain-1:2']);
    expect((await fx.cli('runs', 'show', 'chain-1')).out).toMatch(/^run chain-1 {2}succeeded .* {2}resumed 1×\nresult 23$/m);
    expect(await fx.cli('runs', 'resume', 'chain-1')).toMatchObject({ code: 1, err: expect.stringContaining('it succeeded; there is nothing to resume') });
    expect((await fx.cli('runs', 'verify', 'chain-1')).code).toBe(0);
  });

  it('retry runs one node again with the frontier; a bad --args is a usage error', async () => {
    const retried = await fx.cli('runs', 'retry', 'chord-1', '0.header.0', '--json');
    expect(JSON.parse(retried.out)).toMatchObject({ runId: 'chord-1', reset: ['0.header.0', '0.header.1', '0.body'], nodes: ['0.header.0'], ready: ['0.header.0', '0.header.1'] });
    expect(await fx.app.run('chord-1').get({ timeoutMs: 10_000 })).toBe(12); // [0, 10, 2]
    expect(fx.ledger.filter((l) => l.startsWith('chord-1:')).sort()).toEqual(['chord-1:0.body', 'chord-1:0.header.0', 'chord-1:0.header.0', 'chord-1:0.header.1', 'chord-1:0.header.1', 'chord-1:0.header.2']);
    expect(await fx.cli('runs', 'retry', 'ok-1', 'x')).toMatchObject({ code: 1 });
    expect((await fx.cli('runs', 'retry', 'ok-1')).code).toBe(2);
    expect((await fx.cli('runs', 'resume', 'ok-1', '--args', '0=5')).err).toMatch(/--args "0=5": the value after "=" is not a JSON array; allowed is <node>=<JSON array>/);
  });

  it('cancel: the waiting run is cancelled with its reason; resume with new arguments', async () => {
    const { code, out } = await fx.cli('runs', 'cancel', 'wait-1', '--reason', 'not needed');
    expect(code).toBe(0);
    expect(out.split('\n').slice(0, 3)).toEqual(['cancelled run wait-1', '  nodes cancelled (1): 0', '  reason: not needed']);
    expect(await fx.app.run('wait-1').status()).toBe('cancelled');
    expect(await fx.cli('runs', 'cancel', 'wait-1')).toMatchObject({ code: 1, err: expect.stringContaining('only a running run can be cancelled') });
    const resumed = await fx.cli('runs', 'resume', 'wait-1', '--node', '0', '--args', '0=[8]');
    expect(resumed.out).toContain('  asked for: 0\n  arguments of 0 replaced: [8]\n  ready now: 0');
    expect((await fx.cli('runs', 'history', 'wait-1')).out).toMatch(/WorkflowResumed +reset 0; asked for 0; args 0=\[8\]\n.*NodeReady +0 +parked \(8\) {2}queue nobody$/);
    expect((await fx.cli('runs', 'cancel', 'wait-1', '--json')).out).toContain('"status": "cancelled"');
  });
});

describe('lovage runs prune', () => {
  it('deletes finished runs older than the cut, of the statuses asked for, and nothing else', async () => {
    expect((await fx.cli('runs', 'prune', '--older-than', '1h')).out).toMatch(/^pruned 0 runs \(succeeded, failed, cancelled\) created before \S+Z$/);
    await new Promise((r) => setTimeout(r, 20));
    expect((await fx.cli('runs', 'prune', '--older-than', '10ms', '--status', 'cancelled', '--dry-run')).out).toMatch(/^would prune 1 run \(cancelled\)/);
    expect(JSON.parse((await fx.cli('runs', 'prune', '--older-than', '10ms', '--status', 'cancelled', '--json')).out)).toMatchObject({ pruned: 1, status: ['cancelled'] });
    expect((await fx.cli('runs', 'ls', '--json')).out).not.toContain('wait-1');
    expect((await fx.cli('runs', 'prune')).err).toContain('--older-than <age> is required');
    expect((await fx.cli('runs', 'prune', '--older-than', 'a week')).err).toMatch(/--older-than "a week" is invalid; allowed are a number followed by ms, s, m, h, d or w/);
    expect((await fx.cli('runs', 'prune', '--older-than', '1d', '--status', 'running')).code).toBe(2);
    expect((await fx.cli('runs', 'prune', '--older-than', '10ms')).out).toMatch(/^pruned 3 runs/);
    expect((await fx.cli('runs', 'ls')).out).toBe('no runs match');
  });
});

// Real processes: `lovage worker` children on one SQLite file, killed with SIGKILL or stopped
// with SIGTERM while they run tasks. Only outcomes are asserted, never timings.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp, type App, type EventStore, type WorkflowEvent } from '../src/index.ts';
import { defineTasks } from './fixtures/crash-tasks.ts';

const root = resolve(import.meta.dirname, '..');
const bin = join(root, 'bin', 'lovage.mjs');
const WAIT_MS = 15_000;

interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: string;
}

let dir: string;
let procs: Proc[];
let app: App | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lovage-crash-'));
  procs = [];
  app = undefined;
});

afterEach(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The test's own app on the shared file: it submits and reads the history. */
async function openApp() {
  app = createApp({ store: `sqlite:${join(dir, 'x.db')}` });
  const tasks = defineTasks(app);
  return { app, tasks, store: await app.store() };
}

/** Starts `lovage worker` in a child process; resolves once it printed its start line. */
async function startWorker(name: string, flags: string[]): Promise<Proc> {
  const env = { ...process.env };
  delete env['LOVAGE_STORE'];
  const child = spawn(process.execPath, [bin, 'worker', '--app', 'test/fixtures/crash-tasks.ts', '--store', `sqlite:${join(dir, 'x.db')}`, '--name', name, '--poll-ms', '50', ...flags], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const proc: Proc = { name, child, exited, output: '' };
  child.stdout!.on('data', (d: Buffer) => (proc.output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (proc.output += d.toString()));
  procs.push(proc);
  await waitFor(() => proc.output.includes(`lovage worker ${name} started:`), `worker ${name} to start`);
  return proc;
}

/** Polls `check` until it holds; on timeout the error shows every worker's output. */
async function waitFor(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    const dead = procs.find((p) => p.child.exitCode !== null && p.child.exitCode !== 0);
    if (Date.now() > deadline || dead) {
      throw new Error(`gave up waiting for ${what}${dead ? ` (worker ${dead.name} exited with ${dead.child.exitCode})` : ''}\n${procs.map((p) => `--- ${p.name}:\n${p.output}`).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function history(store: EventStore, runId: string): Promise<WorkflowEvent[]> {
  return (await store.readStream(runId)).map((s) => s.event);
}

const types = (events: readonly WorkflowEvent[]) => events.map((e) => e.type);

describe('worker processes', () => {
  it('a node survives kill -9 of its worker: the lease expires and another worker runs it', async () => {
    const { tasks, store } = await openApp();
    const a = await startWorker('worker-A', ['-c', '1', '--lease-ms', '1000']);
    const run = await tasks.slow.applyAsync([dir, 60_000], { runId: 'crash-kill' });
    await waitFor(() => existsSync(join(dir, 'started-1')), 'attempt 1 to start');
    a.child.kill('SIGKILL');
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });

    const b = await startWorker('worker-B', ['-c', '1', '--lease-ms', '1000']);
    expect(await run.get({ timeoutMs: WAIT_MS })).toEqual({ attempt: 2, pid: b.child.pid });
    expect(readFileSync(join(dir, 'started-2'), 'utf8')).toBe(String(b.child.pid));

    const events = await history(store, run.id);
    expect(types(events)).toEqual(['WorkflowSubmitted', 'NodeReady', 'NodeStarted', 'NodeLeaseExpired', 'NodeStarted', 'NodeSucceeded', 'WorkflowSucceeded']);
    const nodeId = (events[1] as Extract<WorkflowEvent, { type: 'NodeReady' }>).nodeId;
    expect(events.slice(2, 6)).toMatchObject([
      { type: 'NodeStarted', nodeId, attempt: 1, worker: 'worker-A' },
      { type: 'NodeLeaseExpired', nodeId, attempt: 1, worker: 'worker-A' },
      { type: 'NodeStarted', nodeId, attempt: 2, worker: 'worker-B' },
      { type: 'NodeSucceeded', nodeId, attempt: 2, result: { attempt: 2, pid: b.child.pid } },
    ]);
    expect(await run.status()).toBe('succeeded');
  });

  it('two workers on one SQLite file share a group of 200 nodes, each recorded once', async () => {
    const { tasks, store } = await openApp();
    const [a, b] = await Promise.all([startWorker('worker-A', ['-c', '4']), startWorker('worker-B', ['-c', '4'])]);
    const items = Array.from({ length: 200 }, (_, i) => i);
    const run = await tasks.square.map(items).applyAsync({ runId: 'crash-share' });
    expect(await run.get({ timeoutMs: WAIT_MS })).toEqual(items.map((i) => i * i));

    const events = await history(store, run.id);
    const succeeded = new Map<string, number>();
    const startedBy = new Map<string, number>();
    for (const e of events) {
      if (e.type === 'NodeSucceeded') succeeded.set(e.nodeId, (succeeded.get(e.nodeId) ?? 0) + 1);
      if (e.type === 'NodeStarted') startedBy.set(e.worker, (startedBy.get(e.worker) ?? 0) + 1);
    }
    expect(succeeded.size).toBe(200);
    expect([...succeeded.values()].every((n) => n === 1)).toBe(true);
    expect(types(events).filter((t) => t === 'WorkflowSucceeded')).toHaveLength(1);
    expect(types(events).filter((t) => t === 'NodeLeaseExpired' || t === 'NodeCompletionFenced' || t === 'NodeFailed')).toEqual([]);
    expect([...startedBy.keys()].sort()).toEqual(['worker-A', 'worker-B']);
    expect(startedBy.get('worker-A')! + startedBy.get('worker-B')!).toBe(200);

    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(await b.exited).toEqual({ code: 0, signal: null });
  });

  it('SIGTERM lets the running task finish, records it, and exits 0', async () => {
    const { tasks, store } = await openApp();
    const a = await startWorker('worker-A', ['-c', '1']);
    const run = await tasks.slow.applyAsync([dir, 1500], { runId: 'crash-term' });
    await waitFor(() => existsSync(join(dir, 'started-1')), 'attempt 1 to start');
    a.child.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(a.output).toContain('lovage worker worker-A stopped');

    // The outcome was recorded before the process exited: no other worker is needed.
    expect(await run.status()).toBe('succeeded');
    const events = await history(store, run.id);
    expect(types(events)).toEqual(['WorkflowSubmitted', 'NodeReady', 'NodeStarted', 'NodeSucceeded', 'WorkflowSucceeded']);
    expect(events.slice(2, 4)).toMatchObject([
      { type: 'NodeStarted', attempt: 1, worker: 'worker-A' },
      { type: 'NodeSucceeded', attempt: 1, result: { attempt: 1, pid: a.child.pid } },
    ]);
  });

  it('SIGTERM past the grace period releases the task; another worker takes it at once', async () => {
    const { tasks, store } = await openApp();
    // A long lease: the second worker can only get the node through the release.
    const a = await startWorker('worker-A', ['-c', '1', '--grace-ms', '200', '--lease-ms', '60000']);
    const run = await tasks.slow.applyAsync([dir, 60_000], { runId: 'crash-release' });
    await waitFor(() => existsSync(join(dir, 'started-1')), 'attempt 1 to start');
    a.child.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(types(await history(store, run.id))).toEqual(['WorkflowSubmitted', 'NodeReady', 'NodeStarted', 'NodeReleased']);

    await startWorker('worker-B', ['-c', '1', '--lease-ms', '60000']);
    expect(await run.get({ timeoutMs: WAIT_MS })).toMatchObject({ attempt: 2 });
    const events = await history(store, run.id);
    expect(events.slice(2)).toMatchObject([
      { type: 'NodeStarted', attempt: 1, worker: 'worker-A' },
      { type: 'NodeReleased', attempt: 1 },
      { type: 'NodeStarted', attempt: 2, worker: 'worker-B' },
      { type: 'NodeSucceeded', attempt: 2 },
      { type: 'WorkflowSucceeded' },
    ]);
  });
});

describe('lovage CLI', () => {
  const cli = (...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((r) => {
      const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('exit', (code) => r({ code, stdout, stderr }));
    });

  it('prints usage, and refuses bad flags with exit code 2 naming the flag', async () => {
    const [help, workerHelp, unknown, badC, noApp, mismatch] = await Promise.all([
      cli('--help'),
      cli('worker', '--help'),
      cli('frobnicate'),
      cli('worker', '--app', 'test/fixtures/crash-tasks.ts', '-c', 'many'),
      cli('worker', '-Q', 'a,b'),
      cli('worker', '--app', 'test/fixtures/crash-store-app.ts', '--store', 'memory:'),
    ]);
    expect(help).toMatchObject({ code: 0, stdout: expect.stringContaining('worker') });
    expect(workerHelp).toMatchObject({ code: 0, stdout: expect.stringContaining('--concurrency') });
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command "frobnicate".*worker/) });
    expect(badC).toMatchObject({ code: 2, stderr: expect.stringContaining('--concurrency must be an integer ≥ 1, got "many"') });
    expect(noApp).toMatchObject({ code: 2, stderr: expect.stringContaining('--app <module> is required') });
    expect(mismatch).toMatchObject({ code: 2, stderr: expect.stringContaining('--store memory: disagrees') });
  });
});

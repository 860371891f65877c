// Real `lovage worker` child processes for the fault tests: start, signal, wait, and always kill.
// Each child is tracked from the moment it is spawned, so that killAll() (afterEach) and the exit
// backstop below reach every one of them even when a test fails half-way.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'lovage.mjs');
const OUTPUT_KEEP = 20_000;

/** One worker process. */
export interface WorkerProc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout and stderr, interleaved (the last 20,000 characters). */
  output: string;
  /** Whether it printed its start line (it has opened the store and is claiming). */
  readonly started: () => boolean;
  readonly alive: () => boolean;
}

/** Every child of this test process, for the exit backstop. */
const everyChild = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of everyChild) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** The worker processes of one test, on one store. */
export class WorkerProcs {
  readonly procs: WorkerProc[] = [];

  /** `app`: the module for --app (relative to the repository); `env`: extra environment. */
  constructor(
    private readonly store: string,
    private readonly app = 'test/fixtures/fault-app.ts',
    private readonly env: Record<string, string> = {},
  ) {}

  /** Spawns `lovage worker --name <name> <flags>`; with `wait`, resolves once it printed its start line. */
  async start(name: string, flags: readonly string[], wait = true): Promise<WorkerProc> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.env };
    delete env['LOVAGE_STORE'];
    const child = spawn(process.execPath, [bin, 'worker', '--app', this.app, '--store', this.store, '--name', name, '--poll-ms', '50', ...flags], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    everyChild.add(child);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.once('exit', (code, signal) => {
        everyChild.delete(child);
        r({ code, signal });
      }),
    );
    let started = false;
    const proc: WorkerProc = {
      name,
      child,
      exited,
      output: '',
      started: () => started,
      alive: () => child.exitCode === null && child.signalCode === null,
    };
    const take = (d: Buffer) => {
      proc.output = (proc.output + d.toString()).slice(-OUTPUT_KEEP);
      if (!started && proc.output.includes(`lovage worker ${name} started:`)) started = true;
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    this.procs.push(proc);
    if (wait) await this.waitFor(() => started, `worker ${name} to start`);
    return proc;
  }

  /** SIGKILL, and wait for the exit. */
  async kill(proc: WorkerProc): Promise<void> {
    if (proc.alive()) proc.child.kill('SIGKILL');
    await proc.exited;
  }

  /** Kills every worker (SIGKILL also ends a SIGSTOPped one) and waits for them all. */
  async killAll(): Promise<void> {
    await Promise.all(this.procs.map((p) => this.kill(p)));
  }

  /** Every worker's output, for failure messages. */
  outputs(): string {
    return this.procs.map((p) => `--- ${p.name} (pid ${p.child.pid}):\n${p.output}`).join('\n');
  }

  /**
   * Polls `check` until it holds. Gives up after `timeoutMs`, or as soon as a worker exits on its
   * own with an error code; the error shows every worker's output and, when given, `explain()`
   * (say, a summary of the run's history).
   */
  async waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000, explain?: () => Promise<string>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      const dead = this.procs.find((p) => p.child.exitCode !== null && p.child.exitCode !== 0);
      if (Date.now() > deadline || dead) {
        const why = explain ? await explain().catch((e: unknown) => `(could not explain: ${String(e)})`) : '';
        throw new Error(`gave up waiting for ${what}${dead ? ` (worker ${dead.name} exited with ${dead.child.exitCode})` : ` after ${timeoutMs} ms`}\n${why}\n${this.outputs()}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

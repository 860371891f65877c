// One fault test's world: a temp dir, a fresh store of one row of the store table, the test's own
// app on it (it submits and reads the history), and the worker processes. dispose() (afterEach)
// kills the workers, closes the app, drops the store and removes the dir, whatever happened.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App, type EventStore, type StoredEvent, type WorkflowEvent } from '../../src/index.ts';
import { defineFaultTasks } from '../fixtures/fault-tasks.ts';
import type { FreshStore, StoreCase } from './fault-stores.ts';
import { WorkerProcs } from './worker-procs.ts';

/** What a test gets once its store is open. */
export interface Opened {
  readonly url: string;
  readonly app: App;
  readonly store: EventStore;
  readonly tasks: ReturnType<typeof defineFaultTasks>;
  readonly workers: WorkerProcs;
}

/** The part of vitest's test context the harness needs. */
interface Skipper {
  skip(note?: string): never;
}

export class FaultHarness {
  readonly dir = mkdtempSync(join(tmpdir(), 'lovage-fault-'));
  #fresh: FreshStore | undefined;
  #app: App | undefined;
  #workers: WorkerProcs | undefined;

  /**
   * Opens a fresh store of `row` (or the store at `url`, for a row made by the test itself). Skips
   * the test, saying why, when the server does not answer (LOVAGE_REQUIRE_SERVICES=1 fails instead).
   */
  async open(ctx: Skipper, row: StoreCase | { name: string; url: string }, workerEnv: Record<string, string> = {}): Promise<Opened> {
    let url: string;
    if ('fresh' in row) {
      this.#fresh = await row.fresh(this.dir);
      if (!this.#fresh) ctx.skip(`${row.name}: no server answers (see the warning above)`);
      url = this.#fresh.url;
    } else {
      url = row.url;
    }
    const app = (this.#app = createApp({ store: url }));
    const tasks = defineFaultTasks(app);
    // Every store exists now: one that refuses to open (e.g. Redis without noeviction) fails the test.
    const store: EventStore = await app.store();
    this.#workers = new WorkerProcs(url, 'test/fixtures/fault-app.ts', workerEnv);
    return { url, app, store, tasks, workers: this.#workers };
  }

  /** Kills the workers, closes the app, drops the store, removes the dir; never throws half-way. */
  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    const step = async (f: () => Promise<unknown> | undefined) => {
      try {
        await f();
      } catch (e) {
        errors.push(e);
      }
    };
    await step(() => this.#workers?.killAll());
    await step(() => this.#app?.close());
    await step(() => this.#fresh?.drop());
    rmSync(this.dir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, 'fault test cleanup failed');
  }
}

/** A run's events, as stored. */
export async function stored(store: EventStore, runId: string): Promise<StoredEvent[]> {
  return store.readStream(runId);
}

/** A run's events. */
export async function history(store: EventStore, runId: string): Promise<WorkflowEvent[]> {
  return (await store.readStream(runId)).map((s) => s.event);
}

export type EventOf<T extends WorkflowEvent['type']> = Extract<WorkflowEvent, { type: T }>;

/** The events of one type. */
export function ofType<T extends WorkflowEvent['type']>(events: readonly WorkflowEvent[], type: T): EventOf<T>[] {
  return events.filter((e): e is EventOf<T> => e.type === type);
}

/** How many events of `type` each node has. */
export function countByNode(events: readonly WorkflowEvent[], type: 'NodeReady' | 'NodeStarted' | 'NodeSucceeded' | 'NodeFailed' | 'NodeLeaseExpired' | 'NodeCompletionFenced'): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) if (e.type === type) counts.set(e.nodeId, (counts.get(e.nodeId) ?? 0) + 1);
  return counts;
}

/** Versions 1..n with no gap and no repeat, and positions that only grow: nothing lost or doubled in the log itself. */
export function checkContiguous(events: readonly StoredEvent[]): string | undefined {
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.version !== i + 1) return `event ${i} has version ${e.version}, expected ${i + 1}`;
    if (i > 0 && e.position <= events[i - 1]!.position) return `event ${i} has position ${e.position} after ${events[i - 1]!.position}`;
  }
  return undefined;
}

/** Which node ids of a chord are its header members and which its body, from the NodeReady events and the DAG. */
export function chordNodes(events: readonly WorkflowEvent[]): { members: string[]; body: string } {
  const submitted = ofType(events, 'WorkflowSubmitted')[0];
  if (!submitted) throw new Error('no WorkflowSubmitted in the history');
  const ids = submitted.dag.nodes.map((n) => n.id);
  const body = ids.find((id) => id === 'body' || id.endsWith('.body'));
  if (!body) throw new Error(`no chord body among the DAG's nodes: ${ids.slice(0, 5).join(', ')}...`);
  return { members: ids.filter((id) => id !== body), body };
}

/**
 * A summary of a run's history for failure messages: events by type, the nodes without an outcome
 * and their last event, and the last events (without DAGs and arguments).
 */
export async function explainRun(store: EventStore, runId: string): Promise<string> {
  const log = await store.readStream(runId);
  const byType = new Map<string, number>();
  const last = new Map<string, WorkflowEvent>();
  for (const { event } of log) {
    byType.set(event.type, (byType.get(event.type) ?? 0) + 1);
    if ('nodeId' in event) last.set(event.nodeId, event);
  }
  const open = [...last].filter(([, e]) => e.type !== 'NodeSucceeded' && e.type !== 'NodeFailed' && e.type !== 'NodeCompletionFenced');
  const brief = (s: StoredEvent) => `v${s.version} ${JSON.stringify({ ...s.event, dag: undefined, args: undefined })}`;
  return [
    `run ${runId}: ${log.length} events; ${[...byType].map(([t, n]) => `${t} ${n}`).join(', ')}; run record ${JSON.stringify(await store.getRun(runId))}`,
    `${open.length} nodes without an outcome${open.length ? `, e.g. ${open.slice(0, 8).map(([id, e]) => `${id} (last ${e.type})`).join(', ')}` : ''}`,
    'last events:',
    ...log.slice(-8).map(brief),
  ].join('\n');
}

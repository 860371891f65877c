// A pipelined memory store whose store calls run, and answer, when a test says (manual mode), else at once;
// optionally its claims bring a small run's log as Redis's and Postgres's do (history). For tests that
// must place a coordinator's calls in one exact order (test/commuting-steps.test.ts).
import type { CanvasData } from '../../src/canvas/types.ts';
import { MemoryStore } from '../../src/eventstore/memory.ts';
import type { AppendRequest, ClaimRequest, EventStore } from '../../src/eventstore/store.ts';
import type { ClaimedNode } from '../../src/eventstore/store.ts';
import type { Completion } from '../../src/workers/coordinator.ts';

export const sig = (task: string, args: number[]): CanvasData => ({ kind: 'signature', task, args, immutable: false, options: {} });
export const group = (n: number, task = 't'): CanvasData => ({ kind: 'group', members: Array.from({ length: n }, (_, i) => sig(task, [i])) });
export const claimOf = (limit: number, worker = 'A'): ClaimRequest => ({ queues: ['default'], limit, worker, leaseMs: 60_000 });
export const ok = (n: ClaimedNode, at: number): Completion => ({ type: 'Complete', runId: n.runId, nodeId: n.nodeId, leaseToken: n.leaseToken, attempt: n.attempt, at, outcome: { ok: true, value: n.nodeId } });

export interface Call {
  readonly label: string;
  readonly requests: readonly AppendRequest[];
  readonly claim: ClaimRequest | undefined;
  run(): void;
  reply(): Promise<void>;
  ran: boolean;
  outcome?: { ok: true; value: unknown } | { ok: false; error: unknown };
}

export const tick = () => new Promise<void>((r) => setTimeout(r, 0));

export function controlled(memory: MemoryStore, options: { history?: boolean } = {}) {
  const calls: Call[] = [];
  const mode = { manual: false };
  const hooks: { getRun?: ((runId: string) => Promise<void>) | undefined } = {};
  const make = (requests: readonly AppendRequest[], claim: ClaimRequest | undefined, fn: () => Promise<unknown>): Promise<never> => {
    if (!mode.manual) return fn() as Promise<never>;
    let resolve!: (v: unknown) => void, reject!: (e: unknown) => void;
    const p = new Promise((res, rej) => { resolve = res; reject = rej; });
    const label = requests.map((r) => `${r.runId}:${r.after !== undefined ? 'c' : r.id !== undefined ? 'n' : 'p'}:${r.events.map((e) => e.type + ('nodeId' in e ? ' ' + e.nodeId : '')).join('+')}`).join(',') + (claim ? `|claim${claim.limit}` : '');
    let settled: Promise<unknown> | undefined;
    const call: Call = {
      label, requests, claim, ran: false,
      run() {
        if (call.ran) throw new Error('ran twice');
        call.ran = true;
        settled = fn().then((value) => { call.outcome = { ok: true, value }; }, (error: unknown) => { call.outcome = { ok: false, error }; });
      },
      async reply() {
        await settled;
        if (call.outcome!.ok) resolve(call.outcome!.value); else reject(call.outcome!.error);
        for (let i = 0; i < 5; i++) await tick();
      },
    };
    calls.push(call);
    return p as Promise<never>;
  };
  /** As Redis does: the first node of each run of a claim brings the run's log before the claim (a small run's). */
  const withHistory = async (claimed: ClaimedNode[]): Promise<ClaimedNode[]> => {
    if (!options.history) return claimed;
    const seen = new Set<string>();
    const out: ClaimedNode[] = [];
    for (const n of claimed) {
      if (seen.has(n.runId)) { out.push(n); continue; }
      seen.add(n.runId);
      const first = n.events[0]!.version;
      const history = (await memory.readStream(n.runId)).filter((e) => e.version < first);
      out.push(history.length > 0 && history.length <= 64 ? { ...n, history } : n);
    }
    return out;
  };
  const store = new Proxy(memory, {
    get(target, key) {
      if (key === 'pipelined') return true;
      if (key === 'append') return (r: AppendRequest[]) => make(r, undefined, () => target.append(r));
      if (key === 'appendAndClaim') return (r: AppendRequest[], c: ClaimRequest) => make(r, c, () => target.appendAndClaim(r, c).then(withHistory));
      if (key === 'claim') return (c: ClaimRequest) => make([], c, () => target.claim(c).then(withHistory));
      if (key === 'getRun') return async (runId: string) => { if (hooks.getRun) await hooks.getRun(runId); return target.getRun(runId); };
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as EventStore;
  const waitFor = async (pred: () => boolean, what: string) => {
    for (let i = 0; i < 200; i++) { if (pred()) return; await tick(); }
    throw new Error(`never: ${what} (calls: ${calls.map((c) => c.label).join(' ; ')})`);
  };
  const call = async (pred: (c: Call) => boolean, what: string): Promise<Call> => {
    await waitFor(() => calls.some((c) => !c.ran && pred(c)), what);
    return calls.find((c) => !c.ran && pred(c))!;
  };
  return { store, calls, mode, hooks, waitFor, call };
}

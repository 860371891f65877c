// Commuting records (Coordinator + a store with `commutes`), under any order of the store's calls: a
// pipelined memory store whose appends and claims run, and answer, in an order fast-check's scheduler
// picks (as two connections to Redis may). One or two coordinators (processes) claim the nodes of one
// or two chords and record outcomes of every kind, with leases running out on the way. Each log must
// fold, each node end once, each run end; with one process its cached states must be the logs' whenever
// it is idle.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/canvas/compile.ts';
import type { CanvasData } from '../src/canvas/types.ts';
import type { StoredEvent } from '../src/engine/events.ts';
import { foldStored, initialState, type RunState } from '../src/engine/state.ts';
import { MemoryStore } from '../src/eventstore/memory.ts';
import type { AppendRequest, ClaimedNode, ClaimRequest, EventStore } from '../src/eventstore/store.ts';
import { Coordinator, type Completion } from '../src/workers/coordinator.ts';

type Outcome = 'ok' | 'retry' | 'defer' | 'fail' | 'release';
type Command =
  | { readonly k: 'claim'; readonly who: number; readonly limit: number }
  | { readonly k: 'record'; readonly who: number; readonly n: number; readonly claim: boolean; readonly outcome: Outcome }
  | { readonly k: 'step' }
  | { readonly k: 'tick'; readonly ms: number }
  /** Leases run out, and the last process claims what they held. */
  | { readonly k: 'steal' };

const command: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ k: fc.constant('claim' as const), who: fc.nat(1), limit: fc.integer({ min: 1, max: 4 }) }), weight: 2 },
  {
    arbitrary: fc.record({
      k: fc.constant('record' as const), who: fc.nat(1), n: fc.integer({ min: 1, max: 4 }), claim: fc.boolean(),
      outcome: fc.constantFrom<Outcome>('ok', 'ok', 'ok', 'ok', 'retry', 'defer', 'release', 'fail', 'fail'),
    }),
    weight: 4,
  },
  { arbitrary: fc.constant({ k: 'step' as const }), weight: 5 },
  { arbitrary: fc.record({ k: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 1_500 }) }), weight: 1 },
  { arbitrary: fc.constant({ k: 'steal' as const }), weight: 3 },
);

const sig = (task: string, args: number[]): CanvasData => ({ kind: 'signature', task, args, immutable: false, options: {} });
const LEASE_MS = 1_000;

/** What the scheduled store saw: commuting appends that landed, and refusals by reason (the property asserts it saw both kinds it is about). */
const seen = { commuted: 0, refusedAfter: 0, refusedLease: 0 };

/** The parts of a run's state a fold decides (not the index, which is the DAG's). */
function view(state: RunState): unknown {
  const nodes = [...state.nodes].map(([id, n]) => [id, n.status, n.attempt, n.leaseToken ?? null, n.remaining, n.retries, n.lost, n.fenced]);
  return { version: state.version, status: state.status, active: state.active, failed: [...state.failed], nodes };
}

describe('commuting records', () => {
  it('under any order of the store calls: the log folds, every node ends once, the run ends; one process caches the log', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 10 }), fc.integer({ min: 1, max: 2 }), fc.boolean(), fc.boolean(), fc.array(command, { maxLength: 100 }), async (s, members, runs, two, failFast, commands) => {
        let now = 1_700_000_000_000;
        const memory = new MemoryStore({ clock: () => now });
        const scheduled = (fn: () => Promise<unknown>): Promise<never> =>
          s.schedule(Promise.resolve(), 'run').then(fn).then((reply) => s.schedule(Promise.resolve(reply), 'reply')) as Promise<never>;
        const counted = async <T>(requests: readonly AppendRequest[], call: () => Promise<T>): Promise<T> => {
          try {
            const out = await call();
            seen.commuted += requests.filter((r) => r.after !== undefined).length;
            return out;
          } catch (e) {
            const reason = (e as { details?: { reason?: string } }).details?.reason;
            if (reason === 'after') seen.refusedAfter++;
            if (reason === 'lease') seen.refusedLease++;
            throw e;
          }
        };
        const store: EventStore = new Proxy(memory, {
          get(target, key) {
            if (key === 'pipelined') return true;
            if (key === 'append') return (r: AppendRequest[]) => scheduled(() => counted(r, () => target.append(r)));
            if (key === 'appendAndClaim') return (r: AppendRequest[], c: ClaimRequest) => scheduled(() => counted(r, () => target.appendAndClaim(r, c)));
            if (key === 'claim') return (c: ClaimRequest) => scheduled(() => target.claim(c));
            const value: unknown = Reflect.get(target, key, target);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
        const runIds = Array.from({ length: runs }, (_, i) => `r${i + 1}`);
        const header: CanvasData = { kind: 'group', members: Array.from({ length: members }, (_, i) => sig('t', [i])) };
        for (const runId of runIds) await new Coordinator(memory).submit(runId, compile({ kind: 'chord', header, body: sig('sum', []), ...(failFast ? { onMemberFailure: 'failFast' as const } : {}) }), now);

        const drivers = (two ? ['A', 'B'] : ['A']).map((name) => ({ name, coordinator: new Coordinator(store), held: [] as ClaimedNode[] }));
        const errors: unknown[] = [];
        const pending = new Set<Promise<void>>();
        const claimOf = (name: string, limit: number): ClaimRequest => ({ queues: ['default'], limit, worker: name, leaseMs: LEASE_MS });
        const completion = (node: ClaimedNode, outcome: Outcome): Completion => {
          const base = { runId: node.runId, nodeId: node.nodeId, leaseToken: node.leaseToken, at: now };
          const error = { name: 'Error', message: 'boom' };
          switch (outcome) {
            case 'ok': return { ...base, type: 'Complete', attempt: node.attempt, outcome: { ok: true, value: node.nodeId } };
            case 'retry': return { ...base, type: 'Complete', attempt: node.attempt, outcome: { ok: false, error, retryAt: now + 10 } };
            case 'fail': return { ...base, type: 'Complete', attempt: node.attempt, outcome: { ok: false, error } };
            case 'defer': return { ...base, type: 'Defer', until: now + 10, reason: 'rate limit' };
            case 'release': return { ...base, type: 'Release', reason: 'shutdown' };
          }
        };
        const launch = (d: (typeof drivers)[number], completions: Completion[], claim: ClaimRequest | undefined): void => {
          const call = d.coordinator.record(completions, claim).then((r) => { d.held.push(...r.claimed); }, (e: unknown) => { errors.push(e); });
          pending.add(call);
          void call.finally(() => pending.delete(call));
        };
        /** Lets every call on its way run and answer, in the scheduler's order. */
        const settle = async (): Promise<void> => {
          for (let i = 0; pending.size > 0 || s.count() > 0; i++) {
            if (i > 10_000) throw new Error('the calls on their way never settle');
            if (s.count() > 0) await s.waitOne();
            else await new Promise((r) => setTimeout(r, 0));
          }
        };
        const log = (runId: string): Promise<StoredEvent[]> => memory.readStream(runId);
        const checkCache = async (): Promise<void> => {
          if (two) return; // another process's claims are not in this one's cache: its records are checked by the store
          for (const runId of runIds) {
            const cached = drivers[0]!.coordinator.cached(runId);
            if (cached) expect({ runId, state: view(cached) }).toEqual({ runId, state: view(foldStored(initialState(runId), await log(runId))) });
          }
        };

        for (const c of commands) {
          const d = drivers[c.k === 'claim' || c.k === 'record' ? c.who % drivers.length : 0]!;
          if (c.k === 'claim') launch(d, [], claimOf(d.name, c.limit));
          else if (c.k === 'record') launch(d, d.held.splice(0, c.n).map((node) => completion(node, c.outcome)), c.claim ? claimOf(d.name, 2) : undefined);
          else if (c.k === 'tick') now += c.ms;
          else if (c.k === 'steal') {
            now += LEASE_MS + 1;
            const thief = drivers[drivers.length - 1]!;
            launch(thief, [], claimOf(thief.name, 4));
          } else {
            await new Promise((r) => setTimeout(r, 0)); // calls just made reach the store (the scheduler)
            if (s.count() > 0) await s.waitOne();
          }
        }
        // Then every process finishes what it holds and claims on, until the runs end.
        await settle();
        await checkCache();
        for (let round = 0; ; round++) {
          expect(errors).toEqual([]);
          const open = [];
          for (const runId of runIds) if ((await memory.getRun(runId))?.finishedVersion === undefined) open.push(runId);
          if (open.length === 0) break;
          if (round > 100) throw new Error(`run ${open[0]} never ends: ${JSON.stringify((await log(open[0]!)).map((e) => e.event.type))}`);
          // What each holds is recorded (with a claim), and what that claim took too, before any lease runs out.
          for (const d of drivers) launch(d, d.held.splice(0).map((node) => completion(node, 'ok')), claimOf(d.name, 4));
          await settle();
          for (const d of drivers) launch(d, d.held.splice(0).map((node) => completion(node, 'ok')), undefined);
          await settle();
          await checkCache();
          now += LEASE_MS + 100; // leases lost on the way run out; retries and deferrals fall due
        }

        for (const runId of runIds) {
          const events = await log(runId);
          const state = foldStored(initialState(runId), events); // throws if the log does not fold
          expect(['succeeded', 'failed']).toContain(state.status);
          const ends = new Map<string, number>();
          for (const e of events) if (e.event.type === 'NodeSucceeded' || e.event.type === 'NodeFailed') ends.set(e.event.nodeId, (ends.get(e.event.nodeId) ?? 0) + 1);
          for (const [nodeId, n] of ends) expect({ runId, nodeId, n }).toEqual({ runId, nodeId, n: 1 });
          for (const [nodeId, node] of state.nodes) expect({ runId, nodeId, status: node.status }).not.toMatchObject({ status: expect.stringMatching(/^(pending|ready|running)$/) });
        }
      }),
      { numRuns: 500 },
    );
    // The property saw what it is about: records that commuted, and ones that reached the store before
    // the record they follow and went again.
    expect(seen.commuted).toBeGreaterThan(100);
    expect(seen.refusedAfter).toBeGreaterThan(0);
  }, 120_000);

  describe('examples', () => {
    const sigs = (n: number) => ({ kind: 'group' as const, members: Array.from({ length: n }, (_, i) => sig('t', [i])) });
    const claimOf = (worker: string, limit: number): ClaimRequest => ({ queues: ['default'], limit, worker, leaseMs: LEASE_MS });
    const ok = (n: ClaimedNode, at: number): Completion => ({ type: 'Complete', runId: n.runId, nodeId: n.nodeId, leaseToken: n.leaseToken, attempt: n.attempt, at, outcome: { ok: true, value: n.nodeId } });
    const types = async (memory: MemoryStore) => (await memory.readStream('r1')).map((e) => `${e.event.type}${'nodeId' in e.event ? ` ${e.event.nodeId}` : ''}`);

    /** A pipelined view of a memory store; `gate`, when set, holds appends until it resolves; refusals are counted by reason. */
    function pipelined(memory: MemoryStore) {
      const refused: string[] = [];
      const control = { gate: undefined as Promise<void> | undefined, reads: 0 };
      const wrap = (call: () => Promise<unknown>) => {
        const gate = control.gate;
        return (gate ? gate.then(call) : call()).catch((e: unknown) => {
          refused.push(String((e as { details?: { reason?: string } }).details?.reason));
          throw e;
        });
      };
      const store = new Proxy(memory, {
        get(target, key) {
          if (key === 'pipelined') return true;
          if (key === 'append') return (r: AppendRequest[]) => wrap(() => target.append(r));
          if (key === 'appendAndClaim') return (r: AppendRequest[], c: ClaimRequest) => wrap(() => target.appendAndClaim(r, c));
          if (key === 'readStream') control.reads++;
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }) as EventStore;
      return { store, refused, control };
    }

    it('a lease lost to another process\'s claim: the commuting record is refused, decided again on the log: fenced', async () => {
      let now = 1_700_000_000_000;
      const memory = new MemoryStore({ clock: () => now });
      const { store, refused } = pipelined(memory);
      await new Coordinator(memory).submit('r1', compile(sigs(4)), now);
      const a = new Coordinator(store);
      const b = new Coordinator(store);
      const { claimed: held } = await a.record([], claimOf('A', 3));
      await a.record([ok(held[0]!, now)]); // the chain begins (a named append)
      await a.record([ok(held[1]!, now)]); // commutes
      now += LEASE_MS + 1;
      const { claimed: stolen } = await b.record([], claimOf('B', 3)); // takes 0.2 (its lease ran out) and 0.3
      await a.record([ok(held[2]!, now)]);
      expect(refused).toEqual(['lease']);
      await b.record(stolen.map((n) => ok(n, now)));
      expect(await types(memory)).toEqual([
        'WorkflowSubmitted', 'NodeReady 0.0', 'NodeReady 0.1', 'NodeReady 0.2', 'NodeReady 0.3', 'NodeStarted 0.0', 'NodeStarted 0.1', 'NodeStarted 0.2',
        'NodeSucceeded 0.0', 'NodeSucceeded 0.1', 'NodeLeaseExpired 0.2', 'NodeStarted 0.2', 'NodeStarted 0.3', 'NodeCompletionFenced 0.2',
        'NodeSucceeded 0.2', 'NodeSucceeded 0.3', 'WorkflowSucceeded',
      ]);
    });

    it('a record that reached the store before the one it follows goes again once that one has landed', async () => {
      const now = 1_700_000_000_000;
      const memory = new MemoryStore({ clock: () => now });
      const { store, refused, control } = pipelined(memory);
      await new Coordinator(memory).submit('r1', compile(sigs(4)), now);
      const a = new Coordinator(store);
      const { claimed: held } = await a.record([], claimOf('A', 4));
      await a.record([ok(held[0]!, now)]);
      const reads = control.reads;
      let open!: () => void;
      control.gate = new Promise<void>((resolve) => { open = resolve; });
      const first = a.record([ok(held[1]!, now)]); // held back, as by a slower connection
      control.gate = undefined;
      const second = a.record([ok(held[2]!, now)]); // follows the first; reaches the store before it
      await new Promise((r) => setTimeout(r, 5));
      expect(refused).toEqual(['after']);
      open();
      await Promise.all([first, second]);
      expect(refused).toEqual(['after']);
      expect(control.reads).toBe(reads); // sent again as it was: not decided again on a read of the log
      expect((await types(memory)).slice(-3)).toEqual(['NodeSucceeded 0.0', 'NodeSucceeded 0.1', 'NodeSucceeded 0.2']);
      expect(view(a.cached('r1')!)).toEqual(view(foldStored(initialState('r1'), await memory.readStream('r1'))));
    });

    it('a record lost on its way (the connection failed) ends the chain; the next named record begins another', async () => {
      const now = 1_700_000_000_000;
      const memory = new MemoryStore({ clock: () => now });
      const { store, control } = pipelined(memory);
      const sent: string[] = [];
      let fail = true;
      const flaky = new Proxy(store, {
        get(target, key) {
          if (key === 'append') {
            return (r: AppendRequest[]) => {
              sent.push(r.map((x) => (x.after !== undefined ? 'commuting' : x.id !== undefined ? 'named' : 'plain')).join());
              if (fail && r.some((x) => x.after !== undefined)) {
                fail = false;
                return Promise.reject(new Error('Connection is closed.'));
              }
              return target.append(r);
            };
          }
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }) as EventStore;
      await new Coordinator(memory).submit('r1', compile(sigs(5)), now);
      const a = new Coordinator(flaky);
      const { claimed: held } = await a.record([], claimOf('A', 5));
      await a.record([ok(held[0]!, now)]); // named: the chain begins
      await expect(a.record([ok(held[1]!, now)])).rejects.toThrow('Connection is closed.'); // commuting, lost
      await a.record([ok(held[1]!, now)]); // the worker sends it again: read afresh, named
      await a.record([ok(held[2]!, now)]); // commutes again: a lost call is not another process
      expect(sent).toEqual(['named', 'commuting', 'named', 'commuting']);
      expect(control.reads).toBe(2); // the run learnt, then read afresh once after the lost record
      expect(view(a.cached('r1')!)).toEqual(view(foldStored(initialState('r1'), await memory.readStream('r1'))));
    });

    it('a record refused because another process appended to the run ends the chain for good: the run is shared', async () => {
      const now = 1_700_000_000_000;
      const memory = new MemoryStore({ clock: () => now });
      const { store, refused } = pipelined(memory);
      let commuting = 0;
      const counting = new Proxy(store, {
        get(target, key) {
          if (key === 'append') return (r: AppendRequest[]) => { commuting += r.filter((x) => x.after !== undefined).length; return target.append(r); };
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }) as EventStore;
      await new Coordinator(memory).submit('r1', compile(sigs(8)), now);
      const a = new Coordinator(counting);
      const b = new Coordinator(store);
      const { claimed: mine } = await a.record([], claimOf('A', 4));
      const { claimed: theirs } = await b.record([], claimOf('B', 4));
      await a.record([ok(mine[0]!, now)]); // named: A's chain begins
      await b.record([ok(theirs[0]!, now)]); // B appends
      await a.record([ok(mine[1]!, now)]); // refused: the run's last append is B's
      expect(refused).toEqual(['after']);
      const before = commuting;
      for (let i = 2; i < 4; i++) await a.record([ok(mine[i]!, now)]);
      expect(commuting).toBe(before); // none of A's records commutes on this run again
      for (let i = 1; i < 4; i++) await b.record([ok(theirs[i]!, now)]);
      expect((await memory.readStream('r1')).filter((e) => e.event.type === 'NodeSucceeded')).toHaveLength(8);
    });

    it('past maxChains the oldest chain ends and its run is read afresh: no chain outlives its use', async () => {
      const now = 1_700_000_000_000;
      const memory = new MemoryStore({ clock: () => now });
      const { store, control } = pipelined(memory);
      for (const runId of ['r1', 'r2', 'r3']) await new Coordinator(memory).submit(runId, compile(sigs(3)), now);
      const a = new Coordinator(store, { maxChains: 2 });
      const { claimed } = await a.record([], claimOf('A', 9));
      const of = (runId: string) => claimed.filter((n) => n.runId === runId);
      for (const runId of ['r1', 'r2', 'r3']) await a.record([ok(of(runId)[0]!, now)]); // each begins a chain
      expect(a.cached('r1')).toBeUndefined(); // r1's chain ended, and with it its state
      expect(a.cached('r3')).toBeDefined();
      const reads = control.reads;
      await a.record([ok(of('r1')[1]!, now)]); // read afresh, named: a chain again (r2's ends)
      expect(control.reads).toBe(reads + 1);
      expect(a.cached('r2')).toBeUndefined();
      for (const runId of ['r1', 'r2', 'r3']) for (const n of of(runId).slice(runId === 'r1' ? 2 : 1)) await a.record([ok(n, now)]);
      for (const runId of ['r1', 'r2', 'r3']) expect(foldStored(initialState(runId), await memory.readStream(runId)).status).toBe('succeeded');
    });

    it('a chain whose count of events is not the log\'s (another process claimed) is read again before a record that cannot commute', async () => {
      let now = 1_700_000_000_000;
      const memory = new MemoryStore({ clock: () => now });
      const { store } = pipelined(memory);
      const header = sigs(4);
      await new Coordinator(memory).submit('r1', compile({ kind: 'chord', header, body: sig('sum', []), onMemberFailure: 'failFast' }), now);
      const a = new Coordinator(store);
      const b = new Coordinator(store);
      const { claimed: held } = await a.record([], claimOf('A', 3));
      await a.record([ok(held[0]!, now)]); // the chain begins
      const { claimed: theirs } = await b.record([], claimOf('B', 1)); // a NodeStarted this process never sees
      await a.record([ok(held[1]!, now)]); // commutes: lands after it
      now += 1;
      // A failure of a failFast chord aborts the running nodes: it cannot commute, the chain ends here.
      const { quarantined } = await a.record([{ type: 'Complete', runId: 'r1', nodeId: held[2]!.nodeId, leaseToken: held[2]!.leaseToken, attempt: 1, at: now, outcome: { ok: false, error: { name: 'Error', message: 'boom' } } }]);
      expect(quarantined).toEqual([]);
      const log = await memory.readStream('r1');
      const state = foldStored(initialState('r1'), log);
      expect(state.status).toBe('failed');
      expect(state.nodes.get(theirs[0]!.nodeId)?.status).toBe('cancelled'); // it was running (B's), not ready
      expect(a.cached('r1')).toBeUndefined(); // the run ended
    });
  });
});

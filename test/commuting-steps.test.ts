// Serial steps of a coordinator beside the records and claims on their way (commuting records, see
// docs/how-it-works.md section 5), in exact orders a store with two connections can produce. Each case
// failed before the fix it names (found by a review with a harness of its own, test/support/controlled-store.ts).
import { describe, expect, it } from 'vitest';
import { compile } from '../src/canvas/compile.ts';
import { foldStored, initialState } from '../src/engine/state.ts';
import { MemoryStore } from '../src/eventstore/memory.ts';
import { Coordinator } from '../src/workers/coordinator.ts';
import { claimOf, controlled, group, ok, sig, tick } from './support/controlled-store.ts';

// A claim's history (Redis, Postgres) of a run with no chain seeds its cached state while a serial step
// of that run has its named append on its way: the step's chain then begins on that older state, which
// lacks the step's own events. Its commuting records are decided on it and the store takes them: the
// run's last member ends and the run never does.

describe('a chain begun on a state a claim\'s history replaced', () => {
  it.each([1, 10])('maxChains %i: every run ends', async (maxChains) => {
    const now = 1_700_000_000_000;
    const memory = new MemoryStore({ clock: () => now });
    const { store, mode, call } = controlled(memory, { history: true });
    await new Coordinator(memory).submit('Z', compile(group(4)), now);
    await new Coordinator(memory).submit('X', compile(group(4)), now);
    const a = new Coordinator(store, { maxChains });
    const { claimed } = await a.record([], claimOf(6));
    const get = (runId: string, i: number) => claimed.filter((n) => n.runId === runId)[i]!;
    expect(claimed.map((n) => n.runId).join('')).toBe('ZZZZXX');
    await a.record([ok(get('X', 0), now)]); // X's chain begins
    await a.record([ok(get('Z', 0), now)]); // Z's chain begins; past maxChains 1, X's ends and its state is forgotten
    mode.manual = true;
    const f = a.record([ok(get('Z', 1), now)], claimOf(1)); // Z's chain: commutes; its claim takes X's 0.2
    const fCall = await call((c) => c.label.startsWith('Z:c:'), 'F');
    fCall.run();
    const s = a.record([ok(get('X', 1), now)]); // with maxChains 1: serial, X read afresh (with F's NodeStarted), named
    const sCall = await call((c) => c.label.startsWith('X:'), 'S');
    expect(sCall.label.slice(0, 4)).toBe(maxChains === 1 ? 'X:n:' : 'X:c:');
    sCall.run();
    await fCall.reply(); // F's claim brings X's history (before its claim): it replaces X's cached state
    mode.manual = false;
    await sCall.reply(); // S landed: (maxChains 1) X's chain begins, on that state
    const [, fr] = await Promise.all([s, f]);
    const x2 = fr.claimed.find((n) => n.runId === 'X')!;
    await a.record([ok(x2, now)]);
    const { claimed: last } = await a.record([], claimOf(1));
    for (const n of last) await a.record([ok(n, now)]);
    for (const i of [2, 3]) await a.record([ok(get('Z', i), now)]);
    for (const runId of ['X', 'Z']) {
      const log = await memory.readStream(runId);
      const state = foldStored(initialState(runId), log);
      expect({ runId, status: state.status, log: state.status === 'succeeded' ? [] : log.map((e) => `${e.event.type}${'nodeId' in e.event ? ` ${e.event.nodeId}` : ''}`) }).toEqual({ runId, status: 'succeeded', log: [] });
    }
  });
});

/** Runs Z (4 members) and X (3) submitted by another process; a coordinator `a` has claimed Z's four and X's first. */
async function twoGroups() {
  const now = 1_700_000_000_000;
  const memory = new MemoryStore({ clock: () => now });
  const { store, mode, call } = controlled(memory);
  await new Coordinator(memory).submit('Z', compile(group(4)), now);
  await new Coordinator(memory).submit('X', compile(group(3)), now);
  const a = new Coordinator(store);
  const { claimed } = await a.record([], claimOf(5));
  expect(claimed.map((n) => `${n.runId}${n.nodeId}`)).toEqual(['Z0.0', 'Z0.1', 'Z0.2', 'Z0.3', 'X0.0']);
  return { now, memory, store, mode, call, a, z: claimed.filter((n) => n.runId === 'Z'), x0: claimed.find((n) => n.runId === 'X')! };
}

// A serial record refused while chain-only flights' claims of its run come back out of order: the
// rolled-back cached state keeps a claim's NodeStarted, is then "caught up" from its version and the
// healthy run is quarantined.

describe('rollback after a claim event applied to an optimistic state', () => {
  it('a healthy run is not quarantined', async () => {
    const { now, memory, store, mode, call, a, z, x0 } = await twoGroups();
    await a.record([ok(z[0]!, now)]); // serial, named: Z's chain begins
    mode.manual = true;
    const s = a.record([ok(x0, now)]); // serial step on X (not cached: read), named append held
    const sCall = await call((c) => c.requests.some((r) => r.runId === 'X'), 'S append');
    const f1 = a.record([ok(z[1]!, now)], claimOf(1)); // chain-only: flies beside S, claims X's 0.1
    const f1Call = await call((c) => c.label.startsWith('Z:c:NodeSucceeded 0.1'), 'F1');
    const f2 = a.record([ok(z[2]!, now)], claimOf(1)); // follows F1, claims X's 0.2
    const f2Call = await call((c) => c.label.startsWith('Z:c:NodeSucceeded 0.2'), 'F2');
    expect(f1Call.requests[0]!.after).toBeDefined();
    f1Call.run(); f2Call.run(); sCall.run();
    await tick();
    await f2Call.reply(); // X's NodeStarted 0.2 (version v+2) folds onto S's optimistic state (v+1)
    mode.manual = false;
    await sCall.reply(); // refused: rolled back, caught up from v
    await f1Call.reply();
    const [rs] = await Promise.all([s, f1, f2]);
    const log = await memory.readStream('X');
    expect(() => foldStored(initialState('X'), log)).not.toThrow();
    expect((await memory.getRun('X'))?.status).not.toBe('quarantined');
    expect(rs.quarantined).toEqual([]);
  });
});

describe('the same with two processes, two calls on their way, replies in order', () => {
  it('a healthy run is not quarantined', async () => {
    const { now, memory, store, mode, call, a, z, x0 } = await twoGroups();
    await a.record([ok(z[0]!, now)]); // Z's chain begins
    mode.manual = true;
    const s = a.record([ok(x0, now)]); // serial step on X: read at v, append held
    const sCall = await call((c) => c.requests.some((r) => r.runId === 'X'), 'S append');
    await memory.claim(claimOf(1, 'B')); // another process claims X's 0.1 (v+1)
    const f = a.record([ok(z[1]!, now)], claimOf(1)); // A's chain-only record flies beside S; its claim takes X's 0.2 (v+2)
    const fCall = await call((c) => c.label.startsWith('Z:c:NodeSucceeded 0.1'), 'F');
    fCall.run(); sCall.run();
    await fCall.reply(); // in order: F first
    mode.manual = false;
    await sCall.reply(); // S refused
    const [rs] = await Promise.all([s, f]);
    const log = await memory.readStream('X');
    expect(() => foldStored(initialState('X'), log)).not.toThrow();
    expect({ status: (await memory.getRun('X'))?.status, reason: (await memory.getRun('X'))?.quarantineReason }).toEqual({ status: 'running', reason: undefined });
    expect(rs.quarantined).toEqual([]);
  });
});

// #leave compares the chain's state with getRun's version; a chain-only record of another run that flies
// during that call (after #leave waited for the flights it saw) claims a node of the run: the run is taken
// for one another process appends to, and never commutes here again, with no other process.

describe('a run marked shared by this process\'s own claim', () => {
  it.each([true, false])('one process only (claim in the window: %s): the run commutes again after its chain ends', async (claimInWindow) => {
    const now = 1_700_000_000_000;
    const memory = new MemoryStore({ clock: () => now });
    const { store, hooks, waitFor } = controlled(memory);
    await new Coordinator(memory).submit('Z', compile(group(4)), now);
    await new Coordinator(memory).submit('Y', compile(sig('t', [9])), now);
    await new Coordinator(memory).submit('X', compile(group(5)), now);
    const a = new Coordinator(store);
    const { claimed } = await a.record([], claimOf(7));
    const get = (runId: string, i: number) => claimed.filter((n) => n.runId === runId)[i]!;
    expect(claimed.map((n) => n.runId).join('')).toBe('ZZZZYXX');
    await a.record([ok(get('Z', 0), now)]); // Z's chain
    await a.record([ok(get('X', 0), now)]); // X's chain
    let open!: () => void;
    let asked = false;
    hooks.getRun = async () => { asked = true; await new Promise<void>((r) => { open = r; }); };
    const s = a.record([ok(get('X', 1), now), ok(get('Y', 0), now)]); // Y not cached: serial; X's chain ends (#leave)
    await waitFor(() => asked, 'getRun');
    hooks.getRun = undefined;
    const f = claimInWindow ? await a.record([ok(get('Z', 1), now)], claimOf(1)) : { claimed: [] as typeof claimed }; // commutes beside it; its claim takes X's 0.2
    if (claimInWindow) expect(f.claimed.map((n) => `${n.runId}${n.nodeId}`)).toEqual(['X0.2']);
    open();
    await s;
    if (!claimInWindow) f.claimed.push(...(await a.record([ok(get('Z', 1), now)], claimOf(1))).claimed);
    // The run's next records: the first is serial (named), the ones after it commute, if X is not taken for shared.
    let commuting = 0;
    const orig = memory.append.bind(memory);
    memory.append = async (r) => { commuting += r.filter((x) => x.runId === 'X' && x.after !== undefined).length; return orig(r); };
    const { claimed: rest } = await a.record([], claimOf(2)); // X's 0.3 and 0.4
    await a.record([ok(f.claimed[0]!, now)]); // serial: named (begins a chain) unless X is "shared"
    for (const n of rest) await a.record([ok(n, now)]);
    await tick();
    expect(f.claimed.map((n) => `${n.runId}${n.nodeId}`)).toEqual(['X0.2']);
    expect(commuting).toBeGreaterThan(0);
  });
});

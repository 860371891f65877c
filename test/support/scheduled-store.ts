// A pipelined memory store whose append, appendAndClaim and claim calls wait in a queue: a test runs
// them at the store in any order, fails some (before they run), and answers them in any order
// (test/worker-pipeline.test.ts).
import { MemoryStore } from '../../src/eventstore/memory.ts';
import type { AppendRequest, ClaimRequest, ClaimedNode, EventStore } from '../../src/eventstore/store.ts';

export interface SCall {
  readonly id: number;
  readonly kind: 'append' | 'appendAndClaim' | 'claim';
  readonly requests: readonly AppendRequest[];
  readonly claim: ClaimRequest | undefined;
  ran: boolean;
  replied: boolean;
  outcome?: { ok: true; value: unknown } | { ok: false; error: unknown };
  settled?: Promise<void>;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  fn(): Promise<unknown>;
}

export const tick = () => new Promise<void>((r) => setTimeout(r, 0));
export const imm = () => new Promise<void>((r) => setImmediate(r));

export function scheduled(memory: MemoryStore, opts: { pipelined?: boolean; costlyCalls?: boolean } = {}) {
  const calls: SCall[] = [];
  const mode = { manual: true };
  let ids = 0;
  const make = (kind: SCall['kind'], requests: readonly AppendRequest[], claim: ClaimRequest | undefined, fn: () => Promise<unknown>): Promise<never> => {
    if (!mode.manual) return fn() as Promise<never>;
    let resolve!: (v: unknown) => void, reject!: (e: unknown) => void;
    const p = new Promise((res, rej) => { resolve = res; reject = rej; });
    calls.push({ id: ids++, kind, requests, claim, ran: false, replied: false, resolve, reject, fn });
    return p as Promise<never>;
  };
  const store = new Proxy(memory, {
    get(target, key) {
      if (key === 'pipelined') return opts.pipelined ?? true;
      if (key === 'costlyCalls') return opts.costlyCalls ?? false;
      if (key === 'append') return (r: AppendRequest[]) => make('append', r, undefined, () => target.append(r));
      if (key === 'appendAndClaim') return (r: AppendRequest[], c: ClaimRequest) => make('appendAndClaim', r, c, () => target.appendAndClaim(r, c));
      if (key === 'claim') return (c: ClaimRequest) => make('claim', [], c, () => target.claim(c));
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as EventStore;
  /** Runs a call at the store (or fails it, without running). */
  const run = (c: SCall, fail?: unknown) => {
    c.ran = true;
    if (fail !== undefined) { c.outcome = { ok: false, error: fail }; c.settled = Promise.resolve(); return; }
    c.settled = c.fn().then((value) => { c.outcome = { ok: true, value }; }, (error: unknown) => { c.outcome = { ok: false, error }; });
  };
  const reply = async (c: SCall) => {
    await c.settled;
    c.replied = true;
    if (c.outcome!.ok) c.resolve(c.outcome!.value); else c.reject(c.outcome!.error);
  };
  const label = (c: SCall) => `#${c.id} ${c.kind} ${c.requests.map((r) => `${r.runId}:${r.events.map((e) => e.type + ('nodeId' in e ? ' ' + e.nodeId : '')).join('+')}`).join(',')}${c.claim ? ` |claim${c.claim.limit}` : ''}`;
  return { store, calls, mode, run, reply, label };
}

/** A tiny seeded PRNG. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}
export type { ClaimedNode };

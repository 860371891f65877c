// How the Redis store's requests become script arguments and its replies become values.
import type { ExecOptions } from '../../canvas/dag.ts';
import type { Json } from '../../canvas/json.ts';
import { decideStart } from '../../engine/decide.ts';
import type { StoredEvent, WorkflowEvent } from '../../engine/events.ts';
import { LovageError } from '../../errors.ts';
import { newToken } from '../token.ts';
import { checkCommute, commuteRefused, endsRun, runStatusAfter, type AppendRequest, type ClaimedNode, type ClaimRequest, type RunFilter, type RunRecord } from '../store.ts';
import type { ScriptArg } from './scripts.ts';

const PREFIX = /^[A-Za-z0-9_.:{}-]{1,100}$/;

/** Checks a key prefix: 1-100 of `A-Z a-z 0-9 _ . : - { }`, ending with `:` (no glob characters, so SCAN MATCH is exact). */
export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix) || !prefix.endsWith(':')) {
    throw new LovageError('VALIDATION', `Redis key prefix ${JSON.stringify(prefix)} is invalid; allowed are 1-100 of A-Z a-z 0-9 _ . : - { }, ending with ":" (e.g. "lovage:" or "{lovage}:myapp:")`);
  }
  return prefix;
}

function checkRunId(runId: unknown): string {
  if (typeof runId !== 'string' || runId.length === 0 || runId.includes('\u0000')) {
    throw new LovageError('VALIDATION', `run id ${JSON.stringify(runId)} is invalid for the Redis store; allowed is a non-empty string without NUL characters`);
  }
  return runId;
}

/** Task names as `|a|b|`, so a search for `|a|` matches a whole name. */
function taskList(first: WorkflowEvent | undefined): string {
  return first?.type === 'WorkflowSubmitted' ? `|${[...new Set(first.dag.nodes.map((n) => n.task))].join('|')}|` : '|';
}

/** Pushes an append batch onto `out` in the layout `append` in lua/lib-append.lua reads. */
export function encodeAppend(requests: readonly AppendRequest[], out: ScriptArg[]): void {
  out.push(requests.length);
  for (const r of requests) {
    checkRunId(r.runId);
    checkCommute(r, true);
    if (!Number.isInteger(r.expectedVersion) || r.expectedVersion < 0) {
      throw new LovageError('VALIDATION', `expected version ${String(r.expectedVersion)} of run ${r.runId} is invalid; allowed are integers ≥ 0`);
    }
    const events = r.events;
    let status = '';
    let finished = '';
    for (let i = 0; i < events.length; i++) {
      const next = runStatusAfter(events[i]!);
      if (next !== undefined) {
        status = next;
        // The run's end (a commuting append: the index of its event, the script adds where it lands),
        // or '0': it runs (again), no finished version.
        finished = endsRun(events[i]!) ? String((r.after === undefined ? r.expectedVersion : 0) + i + 1) : '0';
      }
    }
    const first = events[0];
    const last = events[events.length - 1];
    const nOpsAt = out.length + 3; // filled in once the ops are pushed
    const leases = r.after === undefined ? [] : (r.leases ?? []);
    out.push(
      r.runId, r.expectedVersion, events.length, 0,
      r.expectedVersion === 0 && first ? first.at : '', taskList(first), status, finished, last ? last.at : '',
      r.id === undefined && r.after === undefined ? '' : `${r.id ?? ''}\u0000${r.after ?? ''}\u0000${leases.length}`,
    );
    for (const [nodeId, token] of leases) out.push(nodeId, token);
    for (const e of events) out.push(JSON.stringify(e));
    let nOps = 0;
    for (let i = 0; i < events.length; i++) nOps += pushOps(events[i]!, i, out);
    out[nOpsAt] = nOps;
  }
}

/** Pushes the ready-queue ops of the event at index `i` of its request (the kinds `append` in lua/lib-append.lua reads); returns how many. */
function pushOps(e: WorkflowEvent, i: number, out: ScriptArg[]): number {
  switch (e.type) {
    case 'WorkflowCancelled':
    case 'NodesAborted':
      for (const nodeId of e.nodeIds) out.push('D', i, nodeId);
      return e.nodeIds.length;
    case 'NodeReady':
      out.push('R', i, e.nodeId, e.queue, e.priority, e.task, JSON.stringify(e.args), e.availableAt ?? 0, e.options ? JSON.stringify(e.options) : '');
      return 1;
    case 'NodeRetryScheduled':
      out.push('Y', i, e.nodeId, e.retryAt, '');
      return 1;
    case 'NodeDeferred':
      // The handed-back attempt does not count: the next claim starts this attempt again.
      out.push('Y', i, e.nodeId, e.until, e.attempt - 1);
      return 1;
    case 'NodeSucceeded':
    case 'NodeFailed':
      out.push('D', i, e.nodeId);
      return 1;
    case 'NodeLeaseExpired':
    case 'NodeReleased':
      out.push('C', i, e.nodeId);
      return 1;
    case 'NodeStarted':
      out.push('S', i, e.nodeId, e.attempt, e.worker, e.leaseToken, e.leaseExpiresAt);
      return 1;
    default:
      return 0;
  }
}

/** The stored events of an accepted append: positions run on from `first` in request order; `bases[n]`, the version request n landed after. */
export function storedEvents(requests: readonly AppendRequest[], first: number, bases: readonly number[]): StoredEvent[][] {
  let position = first;
  return requests.map((r, n) => r.events.map((event, i) => ({ runId: r.runId, version: (bases[n] ?? r.expectedVersion) + i + 1, position: position++, event })));
}

/** Throws the CONCURRENCY error of a refused append reply (`[0, reason, runId, expected, current|nodeId|last id]`). */
export function throwRefusal(reply: readonly unknown[]): never {
  const [, reason, runId, expected, detail] = reply as [number, string, string, number, number | string];
  if (reason === 'after' || reason === 'lease') throw commuteRefused(runId, reason, String(detail));
  if (reason === 'ready') {
    throw new LovageError('CONCURRENCY', `node ${String(detail)} of run ${runId} is already in the ready queue`, { runId });
  }
  const why = expected === 0 ? 'it exists already' : detail === 0 ? 'it does not exist' : `it is at version ${String(detail)}`;
  throw new LovageError('CONCURRENCY', `run ${runId} is not at version ${String(expected)}: ${why}`, { runId });
}

/**
 * Pushes a claim onto `out` in the layout `claim` in lua/lib-claim.lua reads. Lease tokens are a fresh
 * random seed (16 characters, ~96 bits) plus the node's number in the claim: unguessable to anyone
 * but the claiming worker.
 */
export function encodeClaim(request: ClaimRequest, out: ScriptArg[]): string {
  if (typeof request.worker !== 'string' || request.worker.length === 0 || request.worker.includes('\u0000')) {
    throw new LovageError('VALIDATION', `worker name ${JSON.stringify(request.worker)} is invalid; allowed is a non-empty string without NUL characters`);
  }
  if (!Number.isInteger(request.leaseMs) || request.leaseMs < 1) {
    throw new LovageError('VALIDATION', `leaseMs ${String(request.leaseMs)} is invalid; allowed are integers ≥ 1`);
  }
  const limit = Math.floor(request.limit);
  const seed = `${newToken()}.`;
  out.push(request.queues.length, ...request.queues, limit, request.leaseMs, request.worker, seed);
  return seed;
}

/**
 * The claimed nodes of a claim reply (`[now, expires, first position, per node: its string and the h
 * items of its run's log it brought...]` from `offset`, see lua/lib-claim.lua); `seed` is the claim's
 * lease token seed (node n's token is seed + n). A node that brought its run's log (a small run's first
 * node) has it as `history`.
 */
export function decodeClaim(reply: readonly unknown[], offset: number, worker: string, seed: string): ClaimedNode[] {
  const now = reply[offset] as number;
  const leaseExpiresAt = reply[offset + 1] as number;
  let position = reply[offset + 2] as number;
  const out: ClaimedNode[] = [];
  for (let k = offset + 3, n = 1; k < reply.length; k++, n++) {
    const fields = (reply[k] as string).split('\u0000');
    const h = Number(fields[9]);
    const runId = fields[0]!;
    const nodeId = fields[1]!;
    const attempts = Number(fields[4]);
    const version = Number(fields[7]);
    const options = fields[8]!;
    const leaseToken = seed + n;
    const started = decideStart({ nodeId, attempts, worker, leaseToken, leaseExpiresAt, at: now, expiredWorker: fields[5] === '1' ? fields[6] : undefined });
    const events: StoredEvent[] = [];
    for (const event of started) events.push({ runId, version: version + events.length, position: position++, event });
    // One shape for every claimed node: the optional fields are added after, in this order.
    const node: { -readonly [K in keyof ClaimedNode]: ClaimedNode[K] } = {
      runId, nodeId, task: fields[2]!, args: JSON.parse(fields[3]!) as Json[], attempt: attempts + 1, leaseToken, leaseExpiresAt, events,
    };
    if (options !== '') node.options = JSON.parse(options) as ExecOptions;
    if (h > 0) {
      const history = historyOf(runId, reply, k + 1, h);
      if (history) node.history = history;
      k += h;
    }
    out.push(node);
  }
  return out;
}

/** A claimed node's history: the h reply items from `from` (versions 1..h), when they parse. */
function historyOf(runId: string, reply: readonly unknown[], from: number, h: number): StoredEvent[] | undefined {
  const history: StoredEvent[] = [];
  try {
    for (let i = 0; i < h; i++) history.push(parseItem(reply[from + i] as string, runId, i + 1));
  } catch {
    return undefined; // an unreadable event: left to readStream, which quarantines the run
  }
  return history;
}

/** Parses a stored list item `<position>:<event JSON>`; unreadable JSON is a CORRUPT_LOG error (the run gets quarantined). */
export function parseItem(item: string | null, runId: string, version: number): StoredEvent {
  if (item === null) throw new LovageError('CORRUPT_LOG', `run ${runId} event ${version} is missing; the run is quarantined`, { runId, version });
  const colon = item.indexOf(':');
  // The position's digits without a substring (NaN for anything else, as Number() would give).
  let position = colon > 0 ? 0 : Number.NaN;
  for (let i = 0; i < colon; i++) {
    const d = item.charCodeAt(i) - 48;
    if (d < 0 || d > 9) {
      position = Number.NaN;
      break;
    }
    position = position * 10 + d;
  }
  try {
    const event = JSON.parse(item.slice(colon + 1)) as WorkflowEvent;
    if (typeof event !== 'object' || event === null || typeof event.type !== 'string') throw new Error('not an event object');
    return { runId, version, position, event };
  } catch (e) {
    throw new LovageError('CORRUPT_LOG', `run ${runId} event ${version} is unreadable (${(e as Error).message}); the run is quarantined`, { runId, version });
  }
}

/** A run record from the script's values: status, createdAt, updatedAt, finishedVersion|null, quarantineReason|null, version. */
export function decodeRun(runId: string, v: readonly unknown[]): RunRecord {
  const [status, createdAt, updatedAt, finished, reason, version] = v as [RunRecord['status'], string, string, string | null, string | null, number];
  return {
    runId, status, version,
    ...(finished !== null ? { finishedVersion: Number(finished) } : {}),
    ...(reason !== null ? { quarantineReason: reason } : {}),
    createdAt: Number(createdAt),
    updatedAt: Number(updatedAt),
  };
}

/** createdAt as 16 digits, the sort key of `<prefix>runs` (times before 1970 sort as 1970). */
function pad(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(16, '0');
}

/**
 * A RunFilter as list-runs.lua takes it: the time range and the keyset page are lex bounds of the
 * `<prefix>runs` index (members `createdAt(16 digits) \0 runId`); status, task and text are checked per run.
 */
export function encodeRunFilter(filter: RunFilter): { max: string; min: string; statuses: string; task: string; textFlag: string; text: string } {
  let max = '+';
  const bound = (b: string) => { if (max === '+' || b < max) max = b; };
  if (filter.createdTo !== undefined) bound(`(${pad(filter.createdTo)}`);
  if (filter.after) bound(`(${pad(filter.after.createdAt)}\u0000${filter.after.runId}`);
  return {
    max,
    min: filter.createdFrom !== undefined ? `[${pad(filter.createdFrom)}` : '-',
    statuses: filter.status?.length ? `|${filter.status.join('|')}|` : '',
    task: filter.task !== undefined ? `|${filter.task}|` : '',
    textFlag: filter.text !== undefined ? '1' : '0',
    text: filter.text ?? '',
  };
}

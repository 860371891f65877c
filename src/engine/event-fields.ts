import { QUEUE_NAME, TASK_NAME } from '../canvas/compile.ts';
import { preview } from '../errors.ts';
import { dagError } from './dag-check.ts';
import type { EventType } from './events.ts';

// The fields of each event type that the fold and the stores read, with the kind each must have. The
// engine writes only such events; an event from elsewhere (an imported export) is checked against this
// first, so a bad one is refused with its field named instead of failing in a store (a NOT NULL
// constraint) or landing as a ready row no worker claims (queue 5, priority "x").

type Check = (v: unknown) => boolean;
interface Kind { readonly ok: Check; readonly what: string }

const kind = (what: string, ok: Check): Kind => ({ what, ok });
const str = kind('a string', (v) => typeof v === 'string');
const nodeId = kind('a node id (a non-empty string)', (v) => typeof v === 'string' && v !== '');
const time = kind('a time (epoch ms, a finite number)', (v) => typeof v === 'number' && Number.isFinite(v));
const attempt = kind('an attempt number (an integer ≥ 0)', (v) => Number.isInteger(v) && (v as number) >= 0);
const started = kind('an attempt number (an integer ≥ 1)', (v) => Number.isInteger(v) && (v as number) >= 1);
const json = kind('a JSON value', (v) => v !== undefined);
const array = kind('an array', Array.isArray);
const strings = kind('an array of strings', (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'));
const yes = kind('true', (v) => v === true);
const bool = kind('a boolean', (v) => typeof v === 'boolean');
const object = kind('an object', (v) => typeof v === 'object' && v !== null && !Array.isArray(v));
const task = kind('a task name (1-200 of A-Z a-z 0-9 _ . : - /)', (v) => typeof v === 'string' && TASK_NAME.test(v));
const queue = kind('a queue name (1-100 of A-Z a-z 0-9 _ . : -)', (v) => typeof v === 'string' && QUEUE_NAME.test(v));
const priority = kind('a priority (an integer from -1000000 to 1000000)', (v) => Number.isInteger(v) && Math.abs(v as number) <= 1_000_000);
const error = kind('an error ({ name, message } strings, stack optional)', (v) => {
  const e = v as Record<string, unknown>;
  return object.ok(v) && typeof e['name'] === 'string' && typeof e['message'] === 'string' && (e['stack'] === undefined || typeof e['stack'] === 'string');
});
const outcome = kind('"succeeded" or "failed"', (v) => v === 'succeeded' || v === 'failed');
const argsById = kind('an object of argument arrays by node id', (v) => object.ok(v) && Object.values(v as object).every(Array.isArray));
const dag = kind('a DAG ({ nodes, result }, each node with id, task, args, immutable, input, queue and priority)', (v) => {
  const d = v as Record<string, unknown>;
  if (!object.ok(v) || !Array.isArray(d['nodes']) || !object.ok(d['result'])) return false;
  return d['nodes'].every((n: Record<string, unknown>) => object.ok(n) && nodeId.ok(n['id']) && task.ok(n['task']) && array.ok(n['args'])
    && bool.ok(n['immutable']) && (n['input'] === null || object.ok(n['input'])) && queue.ok(n['queue']) && priority.ok(n['priority']));
});

/** Per event type: its required fields, then its optional ones (absent or of the kind). */
const FIELDS: Readonly<Record<EventType, readonly [Readonly<Record<string, Kind>>, Readonly<Record<string, Kind>>?]>> = {
  WorkflowSubmitted: [{ dag }],
  NodeReady: [{ nodeId, task, args: array, queue, priority }, { availableAt: time, options: object }],
  NodeStarted: [{ nodeId, attempt: started, worker: str, leaseToken: str, leaseExpiresAt: time }],
  NodeSucceeded: [{ nodeId, attempt, result: json }, { expired: yes }],
  NodeFailed: [{ nodeId, attempt, error }],
  NodeRetryScheduled: [{ nodeId, attempt, error, retryAt: time }],
  NodeDeferred: [{ nodeId, attempt: started, until: time, reason: str }],
  NodeLeaseExpired: [{ nodeId, attempt, worker: str }],
  NodeReleased: [{ nodeId, attempt, reason: str }, { lost: yes }],
  NodeCompletionFenced: [{ nodeId, attempt, leaseToken: str, outcome, reason: str }],
  NodesSkipped: [{ nodeIds: strings, reason: str }],
  NodesAborted: [{ nodeIds: strings, reason: str }, { byRequest: yes, terminate: yes }],
  WorkflowSucceeded: [{ result: json }],
  WorkflowFailed: [{ nodeId, task: str, error }],
  WorkflowCancelled: [{ reason: str, nodeIds: strings }, { terminate: bool, partial: yes }],
  WorkflowResumed: [{ nodes: strings, reset: strings, args: argsById }],
};

/**
 * What is wrong with the fields of an event of known `type` (its `at` and each field the fold and
 * the stores read; of a WorkflowSubmitted, its DAG's expressions and ids too), or undefined when nothing is.
 *
 * @example
 * eventFieldError({ type: 'NodeReady', at: 1, nodeId: '0', task: 'a', args: [], queue: 5, priority: 0 })
 * // 'NodeReady field queue is 5; allowed is a queue name (1-100 of A-Z a-z 0-9 _ . : -)'
 */
export function eventFieldError(event: { readonly type: EventType } & Readonly<Record<string, unknown>>): string | undefined {
  const [required, optional = {}] = FIELDS[event.type];
  const bad = (field: string, k: Kind): string => {
    const v = event[field];
    return `${event.type} field ${field} ${v === undefined ? 'is missing' : `is ${preview(v)}`}; allowed is ${k.what}`;
  };
  if (!time.ok(event['at'])) return bad('at', time);
  for (const [field, k] of Object.entries(required)) if (!k.ok(event[field])) return bad(field, k);
  for (const [field, k] of Object.entries(optional)) if (event[field] !== undefined && !k.ok(event[field])) return bad(field, k);
  // Past its fields' kinds, a DAG's expressions, ids and scopes (dag-check.ts).
  if (event.type === 'WorkflowSubmitted') return dagError(event['dag'] as Parameters<typeof dagError>[0]);
  return undefined;
}

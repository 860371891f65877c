import { LovageError } from '../errors.ts';
import { decide as currentDecide, decideStart as currentDecideStart, type ClaimInput, type Command } from './decide.ts';
import type { EventType, WorkflowEvent } from './events.ts';
import { applyInPlace, initialState, type RunState } from './state.ts';

/** A recorded decision that the current rules would make differently. */
export interface VerifyDifference {
  /** Version of the first event of the recorded step. */
  readonly version: number;
  /** The input that caused the step, e.g. `Complete 1.header.2`. */
  readonly cause: string;
  readonly recorded: readonly WorkflowEvent[];
  /** What the current rules decide; empty with `error` when they refuse the input. */
  readonly expected: readonly WorkflowEvent[];
  readonly error?: string;
}

/** The outcome of {@link verifyRun}. */
export interface VerifyReport {
  readonly runId: string;
  readonly events: number;
  /** Recorded steps re-decided. */
  readonly steps: number;
  readonly differences: readonly VerifyDifference[];
  /** Set when the log itself does not fold (the run would be quarantined). */
  readonly corrupt?: string;
}

/** The rules to check against (the current ones unless a test swaps one). */
export interface Rules {
  readonly decide: (state: RunState, command: Command) => WorkflowEvent[];
  readonly decideStart: (claim: ClaimInput) => WorkflowEvent[];
}

/** Events that are inputs to the coordinator; every other event is a decision following one. */
const CAUSES: ReadonlySet<EventType> = new Set<EventType>([
  'WorkflowSubmitted', 'NodeLeaseExpired', 'NodeStarted', 'NodeSucceeded', 'NodeFailed',
  'NodeCompletionFenced', 'NodeReleased', 'NodeRetryScheduled', 'NodeDeferred', 'WorkflowCancelled', 'WorkflowResumed',
]);

/** A cancel of part of the run is an input too; a failFast chord's NodesAborted is a decision. */
function isCause(e: WorkflowEvent): boolean {
  if (e.type === 'WorkflowCancelled') return e.partial !== true;
  return CAUSES.has(e.type) || (e.type === 'NodesAborted' && e.byRequest === true);
}

/**
 * Re-folds a run and re-runs the rules over each recorded input: the upgrade-safety check. Every
 * step whose recorded decisions differ from what the rules decide now is reported. Pure.
 *
 * @example
 * const report = verifyRun(runId, (await store.readStream(runId)).map((e) => e.event))
 * if (report.differences.length) console.log(report.differences[0])
 */
export function verifyRun(runId: string, events: readonly WorkflowEvent[], rules: Rules = { decide: currentDecide, decideStart: currentDecideStart }): VerifyReport {
  const state = initialState(runId);
  const differences: VerifyDifference[] = [];
  let steps = 0;
  let i = 0;
  try {
    while (i < events.length) {
      // A step: one input, then the decisions it caused (a lease expiry is followed by its restart).
      let end = i + 1;
      if (events[i]!.type === 'NodeLeaseExpired' && events[end]?.type === 'NodeStarted') end++;
      while (end < events.length && !isCause(events[end]!)) end++;
      const recorded = events.slice(i, end);
      const step = redecide(state, recorded, rules);
      steps++;
      if (step.error !== undefined || JSON.stringify(step.expected) !== JSON.stringify(recorded)) {
        differences.push({ version: i + 1, cause: step.cause, recorded, expected: step.expected, ...(step.error !== undefined ? { error: step.error } : {}) });
      }
      for (const e of recorded) applyInPlace(state, e);
      i = end;
    }
  } catch (e) {
    return { runId, events: events.length, steps, differences, corrupt: e instanceof Error ? e.message : String(e) };
  }
  return { runId, events: events.length, steps, differences };
}

function redecide(state: RunState, recorded: readonly WorkflowEvent[], rules: Rules): { cause: string; expected: WorkflowEvent[]; error?: string } {
  const first = recorded[0]!;
  let cause: string = first.type;
  try {
    switch (first.type) {
      case 'WorkflowSubmitted':
        return { cause: 'Submit', expected: rules.decide(state, { type: 'Submit', at: first.at, dag: first.dag }) };
      case 'NodeLeaseExpired':
      case 'NodeStarted': {
        const started = recorded.find((e) => e.type === 'NodeStarted');
        const node = state.nodes.get(first.nodeId);
        cause = `Claim ${first.nodeId}`;
        if (!started || started.type !== 'NodeStarted' || !node) return { cause, expected: [], error: 'a claim without its NodeStarted' };
        return {
          cause,
          expected: rules.decideStart({
            nodeId: first.nodeId, attempts: node.attempt, worker: started.worker, leaseToken: started.leaseToken, leaseExpiresAt: started.leaseExpiresAt, at: first.at,
            ...(node.status === 'running' && node.worker !== undefined ? { expiredWorker: node.worker } : {}),
          }),
        };
      }
      case 'NodeSucceeded':
      case 'NodeFailed': {
        cause = `Complete ${first.nodeId}`;
        const outcome = first.type === 'NodeSucceeded' ? { ok: true as const, value: first.result, ...(first.expired ? { expired: first.expired } : {}) } : { ok: false as const, error: first.error };
        const leaseToken = state.nodes.get(first.nodeId)?.leaseToken ?? '';
        return { cause, expected: rules.decide(state, { type: 'Complete', at: first.at, nodeId: first.nodeId, attempt: first.attempt, leaseToken, outcome }) };
      }
      case 'NodeRetryScheduled': {
        cause = `Complete ${first.nodeId} (retry)`;
        const leaseToken = state.nodes.get(first.nodeId)?.leaseToken ?? '';
        return { cause, expected: rules.decide(state, { type: 'Complete', at: first.at, nodeId: first.nodeId, attempt: first.attempt, leaseToken, outcome: { ok: false, error: first.error, retryAt: first.retryAt } }) };
      }
      case 'NodeDeferred':
        cause = `Defer ${first.nodeId}`;
        return { cause, expected: rules.decide(state, { type: 'Defer', at: first.at, nodeId: first.nodeId, leaseToken: state.nodes.get(first.nodeId)?.leaseToken ?? '', until: first.until, reason: first.reason }) };
      case 'NodeCompletionFenced': {
        cause = `Complete ${first.nodeId} (stale)`;
        // A fenced outcome's value is not kept; the rule under test only looks at the lease.
        const outcome = first.outcome === 'succeeded' ? { ok: true as const, value: null } : { ok: false as const, error: { name: 'Error', message: '' } };
        return { cause, expected: rules.decide(state, { type: 'Complete', at: first.at, nodeId: first.nodeId, attempt: first.attempt, leaseToken: first.leaseToken, outcome }) };
      }
      case 'NodeReleased':
        cause = `Release ${first.nodeId}`;
        return { cause, expected: rules.decide(state, { type: 'Release', at: first.at, nodeId: first.nodeId, leaseToken: state.nodes.get(first.nodeId)?.leaseToken ?? '', reason: first.reason, ...(first.lost ? { lost: true as const } : {}) }) };
      case 'NodesAborted':
        if (!first.byRequest) return { cause: `(none: a ${first.type} no input explains)`, expected: [], error: `${first.type} is a decision, but no input precedes it` };
        return { cause: 'Cancel (nodes)', expected: rules.decide(state, { type: 'Cancel', at: first.at, reason: first.reason, nodes: first.nodeIds, ...(first.terminate ? { terminate: true } : {}) }) };
      case 'WorkflowCancelled':
        return { cause: 'Cancel', expected: rules.decide(state, { type: 'Cancel', at: first.at, reason: first.reason, ...(first.terminate ? { terminate: true } : {}) }) };
      case 'WorkflowResumed':
        return { cause: 'Resume', expected: rules.decide(state, { type: 'Resume', at: first.at, nodes: first.nodes, args: first.args }) };
      default:
        return { cause: `(none: a ${first.type} no input explains)`, expected: [], error: `${first.type} is a decision, but no input precedes it` };
    }
  } catch (e) {
    if (e instanceof LovageError && e.code === 'CORRUPT_LOG') throw e;
    return { cause, expected: [], error: e instanceof Error ? e.message : String(e) };
  }
}

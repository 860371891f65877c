// `lovage runs history [--follow]`: the event log, one line an event.
import type { StoredEvent, WorkflowEvent } from '../engine/events.ts';
import type { RunRecord } from '../eventstore/store.ts';
import { argsPreview, clip, formatDuration, iso, paint, plural, preview, taskSummary } from './format.ts';
import type { RunsSubcommand } from './runs-command.ts';
import { commonUsage, parseRunsArgs } from './runs-flags.ts';

/** How often `--follow` asks the store for new events, ms. */
export const FOLLOW_POLL_MS = 150;

const ENDED: ReadonlySet<RunRecord['status']> = new Set(['succeeded', 'failed', 'cancelled', 'quarantined']);

const list = (ids: readonly string[], max = 6): string => (ids.length > max ? `${ids.slice(0, max).join(', ')}, … (${ids.length})` : ids.join(', '));

/**
 * The node an event is about and its key details, as short text: attempt, worker, result or error
 * preview, reason.
 *
 * @example
 * describeEvent({ type: 'NodeSucceeded', at: 0, nodeId: '0', attempt: 1, result: 1 }) // { node: '0', detail: 'attempt 1  → 1' }
 */
export function describeEvent(e: WorkflowEvent): { node: string; detail: string } {
  switch (e.type) {
    case 'WorkflowSubmitted':
      return { node: '', detail: `${plural(e.dag.nodes.length, 'node')}: ${taskSummary(e.dag.nodes.map((n) => n.task))}` };
    case 'NodeReady':
      return {
        node: e.nodeId,
        detail: [
          `${e.task} ${argsPreview(e.args)}`, e.queue !== 'default' ? `queue ${e.queue}` : '', e.priority ? `priority ${e.priority}` : '',
          e.availableAt !== undefined ? `not before +${formatDuration(e.availableAt - e.at)}` : '', e.options ? `options ${preview(e.options, 60)}` : '',
        ].filter(Boolean).join('  '),
      };
    case 'NodeStarted':
      return { node: e.nodeId, detail: `attempt ${e.attempt}  worker ${e.worker}  lease ${formatDuration(e.leaseExpiresAt - e.at)}` };
    case 'NodeSucceeded':
      return { node: e.nodeId, detail: e.expired ? `attempt ${e.attempt}  not run: expired (onExpire skip)  → null` : `attempt ${e.attempt}  → ${preview(e.result, 60)}` };
    case 'NodeFailed':
      return { node: e.nodeId, detail: `attempt ${e.attempt}  ✗ ${e.error.name}: ${clip(e.error.message, 100)}` };
    case 'NodeRetryScheduled':
      return { node: e.nodeId, detail: `attempt ${e.attempt}  ✗ ${e.error.name}: ${clip(e.error.message, 80)}  retry in ${formatDuration(e.retryAt - e.at)}` };
    case 'NodeDeferred':
      return { node: e.nodeId, detail: `attempt ${e.attempt} handed back for ${formatDuration(e.until - e.at)}: ${e.reason}` };
    case 'NodeLeaseExpired':
      return { node: e.nodeId, detail: `attempt ${e.attempt}  worker ${e.worker} went silent` };
    case 'NodeReleased':
      return { node: e.nodeId, detail: `attempt ${e.attempt}${e.lost ? '  lost' : ''}  reason: ${e.reason}` };
    case 'NodeCompletionFenced':
      return { node: e.nodeId, detail: `attempt ${e.attempt}  late ${e.outcome} outcome ignored: ${e.reason}` };
    case 'NodesSkipped':
    case 'NodesAborted':
      return { node: list(e.nodeIds, 3), detail: `reason: ${e.reason}` };
    case 'WorkflowSucceeded':
      return { node: '', detail: `→ ${preview(e.result, 60)}` };
    case 'WorkflowFailed':
      return { node: e.nodeId, detail: `task ${e.task}  ✗ ${e.error.name}: ${clip(e.error.message, 100)}` };
    case 'WorkflowCancelled':
      return { node: '', detail: `reason: ${e.reason}; ${plural(e.nodeIds.length, 'node')} cancelled${e.nodeIds.length ? ` (${list(e.nodeIds)})` : ''}` };
    case 'WorkflowResumed': {
      const args = Object.entries(e.args).map(([id, a]) => `${id}=${preview(a, 30)}`);
      return { node: '', detail: [`reset ${list(e.reset)}`, e.nodes.length ? `asked for ${list(e.nodes)}` : '', args.length ? `args ${args.join(' ')}` : ''].filter(Boolean).join('; ') };
    }
    default:
      return { node: '', detail: preview(e, 80) };
  }
}

/** One event as a compact phrase for reports: `NodeSucceeded 1.header.2 attempt 1  → 3`. */
export function compactEvent(e: WorkflowEvent): string {
  const { node, detail } = describeEvent(e);
  return [e.type, node, detail].filter(Boolean).join(' ');
}

const TYPE_CODE: Readonly<Record<string, string>> = {
  NodeSucceeded: '32', WorkflowSucceeded: '32', NodeFailed: '31', WorkflowFailed: '31', NodeCompletionFenced: '33', NodeLeaseExpired: '33', NodeRetryScheduled: '33', NodeDeferred: '90',
  WorkflowCancelled: '35', WorkflowResumed: '36', NodesSkipped: '90', NodesAborted: '35',
};

/**
 * One history line: version, ISO time, type, node, details.
 *
 * @example
 * historyLine(stored, false) // '   4  2026-11-22T10:00:00.004Z  NodeSucceeded         0           attempt 1  → 1'
 */
export function historyLine(s: StoredEvent, color: boolean): string {
  const { node, detail } = describeEvent(s.event);
  const type = s.event.type.padEnd(20);
  return `${String(s.version).padStart(4)}  ${iso(s.event.at)}  ${paint(color, TYPE_CODE[s.event.type] ?? '0', type)}  ${node.padEnd(11)}  ${detail}`.trimEnd();
}

/** `lovage runs history`. */
export const historyCommand: RunsSubcommand = {
  summary: "a run's event log, one line an event; --follow tails it",
  usage: `Usage: lovage runs history <id> [--follow] [options]

Prints the run's event log, one line an event: version, time, type, node, details (attempt, worker,
result or error, reason). With --follow, keeps printing new events (polling the store every
${FOLLOW_POLL_MS} ms) until the run ends (succeeded, failed, cancelled, quarantined) or Ctrl-C.

Options:
  -f, --follow           tail the log until the run ends
${commonUsage}
With --json: a JSON array of the stored events; with --follow, one JSON object a line (JSON Lines).`,
  async run(argv, ctx) {
    const { values: v, positionals: [id] } = parseRunsArgs('runs history', argv, { follow: { type: 'boolean', short: 'f' } }, ['id']);
    if (v.help) return (ctx.io.out(this.usage), 0);
    const app = await ctx.open(v.store);
    const first = await app.runs.history(id!);
    const print = (events: readonly StoredEvent[]) => {
      for (const s of events) ctx.io.out(v.json ? JSON.stringify({ version: s.version, position: s.position, event: s.event }) : historyLine(s, ctx.color));
    };
    if (!v.follow) {
      if (v.json) ctx.io.out(JSON.stringify(first.map((s) => ({ version: s.version, position: s.position, event: s.event })), null, 2));
      else print(first);
      return 0;
    }
    const store = await app.store();
    let next = 1;
    let stopped = false;
    let wake: (() => void) | undefined;
    const onSignal = () => {
      stopped = true;
      wake?.();
    };
    process.once('SIGINT', onSignal);
    try {
      for (;;) {
        // The status is read before the events: if it says "ended", the events read after it include the end.
        const run = await store.getRun(id!);
        const events = await store.readStream(id!, next);
        print(events);
        if (events.length) next = events[events.length - 1]!.version + 1;
        if (stopped || !run || ENDED.has(run.status)) return 0;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, FOLLOW_POLL_MS);
          wake = () => (clearTimeout(timer), resolve());
        });
        if (stopped) return 0;
      }
    } finally {
      process.off('SIGINT', onSignal);
    }
  },
};

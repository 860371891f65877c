// `lovage runs resume | retry | cancel | export | import | prune`: commands that change the store.
import { readFileSync, writeFileSync } from 'node:fs';
import type { App } from '../app/app.ts';
import { PRUNABLE_STATUSES } from '../app/runs.ts';
import type { WorkflowEvent } from '../engine/events.ts';
import type { RunRecord } from '../eventstore/store.ts';
import { UsageError } from './args.ts';
import { iso, paintStatus, plural, preview } from './format.ts';
import type { RunsContext, RunsSubcommand } from './runs-command.ts';
import { commonUsage, durationFlag, nodeArgsFlag, parseRunsArgs, statusFlag } from './runs-flags.ts';

export { verifyCommand } from './runs-verify.ts';

const RUN_ID = /^[A-Za-z0-9_.:\-]{1,128}$/;

/** The last event of `type` in the run's log, with the events recorded right after it. */
async function lastOf<T extends WorkflowEvent['type']>(app: App, runId: string, type: T) {
  const history = (await app.runs.history(runId)).map((s) => s.event);
  const at = history.findLastIndex((e) => e.type === type);
  return { event: history[at] as Extract<WorkflowEvent, { type: T }>, after: history.slice(at + 1) };
}

/** Prints what a resume (or retry) reset, from its WorkflowResumed event, and the run's status now. */
async function reportResume(ctx: RunsContext, app: App, runId: string, json: boolean | undefined): Promise<number> {
  const { event, after } = await lastOf(app, runId, 'WorkflowResumed');
  const ready: string[] = [];
  for (const e of after) {
    if (e.type !== 'NodeReady' || e.at !== event.at) break;
    ready.push(e.nodeId);
  }
  const status = await app.run(runId).status();
  if (json) {
    ctx.io.out(JSON.stringify({ runId, reset: event.reset, nodes: event.nodes, args: event.args, ready, status }, null, 2));
    return 0;
  }
  ctx.io.out(`resumed run ${runId}`);
  ctx.io.out(`  reset to pending (${event.reset.length}): ${event.reset.join(', ')}`);
  if (event.nodes.length) ctx.io.out(`  asked for: ${event.nodes.join(', ')}`);
  for (const [id, args] of Object.entries(event.args)) ctx.io.out(`  arguments of ${id} replaced: ${preview(args, 80)}`);
  ctx.io.out(`  ready now: ${ready.join(', ') || '(none)'}`);
  ctx.io.out(`status: ${paintStatus(ctx.color, status)} (a worker on this store runs the ready nodes; follow with lovage runs history ${runId} --follow)`);
  return 0;
}

/** `lovage runs resume`. */
export const resumeCommand: RunsSubcommand = {
  summary: 'run a failed or cancelled run again from where it stopped',
  usage: `Usage: lovage runs resume <id> [--node <id>]... [--args <node>=<json array>]... [options]

Resumes a failed or cancelled run at its frontier: failed, cancelled and skipped nodes and everything
downstream of them run again; succeeded nodes keep their results and do not run again. Workers on the
store pick the ready nodes up.

Options:
      --node <id>        also run this node (and what depends on it) again; repeatable
      --args <n>=<json>  replace the bound arguments of node n (one that runs again) with a JSON
                         array, e.g. --args '1=[5]'; repeatable
${commonUsage}`,
  async run(argv, ctx) {
    const { values: v, positionals: [id] } = parseRunsArgs('runs resume', argv, { node: { type: 'string', multiple: true }, args: { type: 'string', multiple: true } }, ['id']);
    if (v.help) return (ctx.io.out(this.usage), 0);
    const args = nodeArgsFlag(v.args);
    const app = await ctx.open(v.store);
    await app.runs.resume(id!, { ...(v.node?.length ? { nodes: v.node } : {}), ...(args ? { args } : {}) });
    return reportResume(ctx, app, id!, v.json);
  },
};

/** `lovage runs retry`. */
export const retryCommand: RunsSubcommand = {
  summary: 'run one node (and what depends on it) of a failed or cancelled run again',
  usage: `Usage: lovage runs retry <id> <node> [options]

Runs one node again, with everything downstream of it, in a failed or cancelled run (the frontier —
failed, cancelled, skipped nodes — runs again too): lovage runs resume <id> --node <node>.

Options:
${commonUsage}`,
  async run(argv, ctx) {
    const { values: v, positionals: [id, node] } = parseRunsArgs('runs retry', argv, {}, ['id', 'node']);
    if (v.help) return (ctx.io.out(this.usage), 0);
    const app = await ctx.open(v.store);
    await app.runs.retry(id!, node!);
    return reportResume(ctx, app, id!, v.json);
  },
};

/** `lovage runs cancel`. */
export const cancelCommand: RunsSubcommand = {
  summary: 'cancel a running run',
  usage: `Usage: lovage runs cancel <id> [--node <node>]... [--reason <text>] [--terminate] [options]

Cancels a running run: pending and ready nodes never run; the outcome of a node running now is
recorded as fenced, not as a result. Running tasks see their AbortSignal at their worker's next
heartbeat. A cancelled run can be resumed.

Options:
      --reason <text>    why, recorded in the log (default "cancelled by request")
      --node <node>      cancel only this node and everything under it (1 takes 1.header.0, ...);
                         the rest of the run goes on; repeat for several
      --terminate        also terminate the threads running its tasks (workers with --pool threads)
${commonUsage}`,
  async run(argv, ctx) {
    const { values: v, positionals: [id] } = parseRunsArgs('runs cancel', argv, { reason: { type: 'string' }, terminate: { type: 'boolean' }, node: { type: 'string', multiple: true } }, ['id']);
    if (v.help) return (ctx.io.out(this.usage), 0);
    if (v.reason !== undefined && (v.reason === '' || v.reason.length > 1000)) throw new UsageError('--reason must be 1-1000 characters');
    const app = await ctx.open(v.store);
    if (v.node !== undefined) {
      await app.runs.cancel(id!, v.reason, { terminate: v.terminate === true, nodes: v.node });
      const aborted = (await app.runs.history(id!)).findLast((s) => s.event.type === 'NodesAborted')!.event as Extract<WorkflowEvent, { type: 'NodesAborted' }>;
      const status = await app.run(id!).status();
      if (v.json) return (ctx.io.out(JSON.stringify({ runId: id, reason: aborted.reason, cancelled: aborted.nodeIds, status }, null, 2)), 0);
      ctx.io.out(`cancelled part of run ${id}`);
      ctx.io.out(`  nodes cancelled (${aborted.nodeIds.length}): ${aborted.nodeIds.join(', ')}`);
      ctx.io.out(`  reason: ${aborted.reason}`);
      ctx.io.out(`status: ${paintStatus(ctx.color, status)}${status === 'running' ? ' (the rest goes on; the run ends cancelled)' : ''}`);
      return 0;
    }
    await app.runs.cancel(id!, v.reason, { terminate: v.terminate === true });
    const { event } = await lastOf(app, id!, 'WorkflowCancelled');
    if (v.json) return (ctx.io.out(JSON.stringify({ runId: id, reason: event.reason, cancelled: event.nodeIds, status: 'cancelled' }, null, 2)), 0);
    ctx.io.out(`cancelled run ${id}`);
    ctx.io.out(`  nodes cancelled (${event.nodeIds.length}): ${event.nodeIds.join(', ') || '(none)'}`);
    ctx.io.out(`  reason: ${event.reason}`);
    ctx.io.out(`status: ${paintStatus(ctx.color, 'cancelled')} (lovage runs resume ${id} runs it on)`);
    return 0;
  },
};

/** `lovage runs export`. */
export const exportCommand: RunsSubcommand = {
  summary: "write a run's history as portable JSON Lines",
  usage: `Usage: lovage runs export <id> [-o <file>] [options]

Writes the run's history as JSON Lines: a header (format, version, run id, event count), one line an
event, and a SHA-256 checksum. The same log always gives the same bytes. Read it back with import.

Options:
  -o, --output <file>    write to this file instead of stdout
${commonUsage}
The export is JSON Lines already; --json prints a JSON summary instead when -o is given.`,
  async run(argv, ctx) {
    const { values: v, positionals: [id] } = parseRunsArgs('runs export', argv, { output: { type: 'string', short: 'o' } }, ['id']);
    if (v.help) return (ctx.io.out(this.usage), 0);
    if (v.output === '') throw new UsageError('--output must name a file');
    const app = await ctx.open(v.store);
    const text = await app.runs.export(id!);
    if (v.output === undefined) {
      ctx.io.out(text.slice(0, -1)); // the Io adds the final newline back
      return 0;
    }
    writeFileSync(v.output, text);
    const events = text.split('\n').length - 3;
    if (v.json) ctx.io.out(JSON.stringify({ runId: id, events, bytes: Buffer.byteLength(text), file: v.output }, null, 2));
    else ctx.io.out(`exported run ${id}: ${plural(events, 'event')}, ${Buffer.byteLength(text)} bytes, to ${v.output}`);
    return 0;
  },
};

/** `lovage runs import`. */
export const importCommand: RunsSubcommand = {
  summary: 'read a run exported by export into this store',
  usage: `Usage: lovage runs import <file> [--as <id>] [options]

Imports a run exported by \`lovage runs export\` (- reads stdin). The whole file is checked first
(JSON, versions, event types and fields, count, checksum, that the log folds and that the run does not
end while a node is ready or running); a damaged or edited file is refused, naming the line, and
nothing is written. CRLF line endings are read as LF. The store is created if it does not exist.

Options:
      --as <id>          import under this run id (1-128 of A-Z a-z 0-9 _ . : -) instead of the exported one
${commonUsage}`,
  async run(argv, ctx) {
    const { values: v, positionals: [file] } = parseRunsArgs('runs import', argv, { as: { type: 'string' } }, ['file']);
    if (v.help) return (ctx.io.out(this.usage), 0);
    if (v.as !== undefined && !RUN_ID.test(v.as)) throw new UsageError(`--as ${JSON.stringify(v.as)} is not a valid run id; allowed are 1-128 of A-Z a-z 0-9 _ . : -`);
    let text: string;
    try {
      text = readFileSync(file === '-' ? 0 : file!, 'utf8');
    } catch (e) {
      throw new UsageError(`lovage runs import: cannot read ${JSON.stringify(file)}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    const app = await ctx.open(v.store, { create: true });
    const runId = await app.runs.import(text, v.as !== undefined ? { runId: v.as } : {});
    const events = (await app.runs.history(runId)).length;
    if (v.json) ctx.io.out(JSON.stringify({ runId, events, from: file }, null, 2));
    else ctx.io.out(`imported run ${runId}: ${plural(events, 'event')} from ${file}`);
    return 0;
  },
};

/** `lovage runs prune`. */
export const pruneCommand: RunsSubcommand = {
  summary: 'delete finished runs older than a given age',
  usage: `Usage: lovage runs prune --older-than <age> [--status a,b] [--dry-run] [options]

Deletes whole runs (events and all) that finished with one of the statuses and were created more
than <age> ago. Running runs are never pruned.

Options:
      --older-than <age> 30d, 12h, 15m, 45s, 500ms, 2w (required)
      --status <a,b>     which finished runs: succeeded, failed, cancelled, quarantined
                         (default succeeded,failed,cancelled)
      --dry-run          count what would be deleted; delete nothing
${commonUsage}`,
  async run(argv, ctx) {
    const { values: v } = parseRunsArgs('runs prune', argv, { 'older-than': { type: 'string' }, status: { type: 'string' }, 'dry-run': { type: 'boolean' } }, []);
    if (v.help) return (ctx.io.out(this.usage), 0);
    if (v['older-than'] === undefined) throw new UsageError('lovage runs prune: --older-than <age> is required, e.g. --older-than 30d');
    const olderThan = durationFlag('--older-than', v['older-than']);
    const status = statusFlag('--status', v.status) ?? ['succeeded', 'failed', 'cancelled'];
    for (const s of status) if (!PRUNABLE_STATUSES.includes(s)) throw new UsageError(`--status ${s}: prune deletes finished runs only; allowed are ${PRUNABLE_STATUSES.join(', ')}`);
    const app = await ctx.open(v.store);
    const store = await app.store();
    const before = (await store.now()) - olderThan;
    let count = 0;
    if (v['dry-run']) {
      for (let after: RunRecord | undefined, page: RunRecord[]; (page = await store.listRuns({ status, createdTo: before, limit: 1000, ...(after ? { after } : {}) })).length; after = page[page.length - 1]) count += page.length;
    } else {
      count = await app.runs.prune({ olderThan, status });
    }
    if (v.json) return (ctx.io.out(JSON.stringify({ [v['dry-run'] ? 'wouldPrune' : 'pruned']: count, status, createdBefore: iso(before) }, null, 2)), 0);
    ctx.io.out(`${v['dry-run'] ? 'would prune' : 'pruned'} ${plural(count, 'run')} (${status.join(', ')}) created before ${iso(before)}`);
    return 0;
  },
};

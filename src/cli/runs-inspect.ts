// `lovage runs ls | show | replay | graph`: reading runs, never changing them.
import { exprRefs } from '../canvas/dag.ts';
import type { WorkflowEvent } from '../engine/events.ts';
import type { RunRecord } from '../eventstore/store.ts';
import { intFlag, UsageError } from './args.ts';
import { formatDuration, iso, paintStatus, argsPreview, stateJson, statusCounts, taskSummary } from './format.ts';
import { GRAPH_FORMATS, renderGraph, type GraphFormat } from './render-graph.ts';
import { renderRunTree } from './render-tree.ts';
import type { RunsContext, RunsSubcommand } from './runs-command.ts';
import { atFlag, commonUsage, formatCursor, parseCursor, parseRunsArgs, statusFlag, timeFlag } from './runs-flags.ts';

const json = (ctx: RunsContext, value: unknown): void => ctx.io.out(JSON.stringify(value, null, 2));

/** What `ls` says of a run's canvas: its tasks, or a single task's call. */
async function describeRun(runId: string, history: (id: string) => Promise<{ event: WorkflowEvent }[]>) {
  try {
    const [first] = await history(runId);
    if (first?.event.type !== 'WorkflowSubmitted') return { tasks: [] as string[], nodes: 0, summary: '(no canvas)' };
    const nodes = first.event.dag.nodes;
    const tasks = nodes.map((n) => n.task);
    const summary = nodes.length === 1 ? `${nodes[0]!.task} ${argsPreview(nodes[0]!.args)}` : `${nodes.length} nodes: ${taskSummary(tasks)}`;
    return { tasks: [...new Set(tasks)], nodes: nodes.length, summary };
  } catch (e) {
    return { tasks: [] as string[], nodes: 0, summary: `(log unreadable: ${e instanceof Error ? e.message : String(e)})` };
  }
}

const runDuration = (r: RunRecord, now: number): string =>
  r.status === 'running' ? `${formatDuration(now - r.createdAt)} so far` : r.status === 'quarantined' ? '' : formatDuration(r.updatedAt - r.createdAt);

/** `lovage runs ls`. */
export const lsCommand: RunsSubcommand = {
  summary: 'list runs, newest first, with filters and pages',
  usage: `Usage: lovage runs ls [options]

Lists runs, newest first: id, status, created time, duration, tasks.

Options:
      --status <a,b>     only runs with these statuses: running, succeeded, failed, cancelled, quarantined
      --task <name>      only runs with a node of this task
      --text <str>       only runs whose submitted canvas (its JSON: task names, arguments) contains str
      --since <when>     created at or after: an ISO time (2026-11-22T10:00:00Z) or an age (30m, 2h, 7d)
      --until <when>     created before: an ISO time or an age
      --limit <n>        runs per page, 1-1000 (default 20)
      --after <cursor>   the next page: the cursor printed after "next page:" (or it in base64)
${commonUsage}

Example:
  lovage runs ls --status failed --since 2h --store sqlite:./lovage.db`,
  async run(argv, ctx) {
    const { values: v } = parseRunsArgs('runs ls', argv, {
      status: { type: 'string' }, task: { type: 'string' }, text: { type: 'string' }, since: { type: 'string' },
      until: { type: 'string' }, limit: { type: 'string' }, after: { type: 'string' },
    }, []);
    if (v.help) return (ctx.io.out(this.usage), 0);
    const limit = intFlag('--limit', v.limit, 1) ?? 20;
    if (limit > 1000) throw new UsageError(`--limit must be an integer 1-1000, got ${limit}`);
    const status = statusFlag('--status', v.status);
    const after = parseCursor('--after', v.after);
    const app = await ctx.open(v.store);
    const now = await (await app.store()).now();
    const from = timeFlag('--since', v.since, now);
    const to = timeFlag('--until', v.until, now);
    const found = await app.runs.list({
      limit: limit + 1,
      ...(status ? { status } : {}), ...(v.task !== undefined ? { task: v.task } : {}), ...(v.text !== undefined ? { text: v.text } : {}),
      ...(from !== undefined ? { createdFrom: from } : {}), ...(to !== undefined ? { createdTo: to } : {}), ...(after ? { after } : {}),
    });
    const page = found.slice(0, limit);
    const next = found.length > limit ? formatCursor(page[page.length - 1]!) : null;
    const rows = await Promise.all(page.map(async (r) => ({ r, d: await describeRun(r.runId, app.runs.history) })));
    if (v.json) {
      json(ctx, {
        runs: rows.map(({ r, d }) => ({
          runId: r.runId, status: r.status, createdAt: iso(r.createdAt), updatedAt: iso(r.updatedAt), version: r.version,
          ...(r.status !== 'running' && r.status !== 'quarantined' ? { durationMs: r.updatedAt - r.createdAt } : {}),
          ...(r.quarantineReason !== undefined ? { quarantineReason: r.quarantineReason } : {}),
          nodes: d.nodes, tasks: d.tasks, summary: d.summary,
        })),
        next,
      });
      return 0;
    }
    if (rows.length === 0) {
      ctx.io.out(after ? 'no more runs' : 'no runs match');
      return 0;
    }
    const idWidth = Math.max(3, ...rows.map(({ r }) => r.runId.length));
    const cells = rows.map(({ r, d }) => [r.runId.padEnd(idWidth), r.status, `${iso(r.createdAt).slice(0, 19)}Z`, runDuration(r, now), d.summary] as const);
    const durWidth = Math.max(8, ...cells.map((c) => c[3].length));
    ctx.io.out(`${'RUN'.padEnd(idWidth)}  ${'STATUS'.padEnd(11)}  ${'CREATED'.padEnd(20)}  ${'DURATION'.padEnd(durWidth)}  CANVAS`);
    for (const [id, s, created, took, summary] of cells) {
      // Pad before colouring: escape codes have no width.
      ctx.io.out(`${id}  ${paintStatus(ctx.color, s)}${' '.repeat(11 - s.length)}  ${created}  ${took.padEnd(durWidth)}  ${summary}`);
    }
    if (next) ctx.io.out(`next page: --after ${next}`);
    return 0;
  },
};

/** `lovage runs show`. */
export const showCommand: RunsSubcommand = {
  summary: 'a run as a tree: nodes, arguments, results, attempts, workers, times, errors',
  usage: `Usage: lovage runs show <id> [options]

Shows the run's status and result or error, then its DAG as a tree, one line a node: id, task,
arguments, status, attempt, worker, time queued, run time, result or error (with its stack).

Options:
${commonUsage}`,
  async run(argv, ctx) {
    const { values: v, positionals: [id] } = parseRunsArgs('runs show', argv, {}, ['id']);
    if (v.help) return (ctx.io.out(this.usage), 0);
    const app = await ctx.open(v.store);
    const state = await app.runs.inspect(id!);
    if (v.json) return (json(ctx, stateJson(state)), 0);
    ctx.io.out(renderRunTree(state, { details: true, color: ctx.color, now: await (await app.store()).now() }));
    return 0;
  },
};

/** `lovage runs replay`. */
export const replayCommand: RunsSubcommand = {
  summary: 'the run as it was at an event version or a time',
  usage: `Usage: lovage runs replay <id> --at <version | ISO time> [options]

Folds the run's log up to an event version (0 = before the first event) or up to a time, and shows
the state it stood in then: which nodes were running, waiting, done.

Options:
      --at <v | time>    an event version (see lovage runs history) or an ISO time (2026-11-22T10:00:00.000Z)
${commonUsage}`,
  async run(argv, ctx) {
    const { values: v, positionals: [id] } = parseRunsArgs('runs replay', argv, { at: { type: 'string' } }, ['id']);
    if (v.help) return (ctx.io.out(this.usage), 0);
    const at = atFlag(v.at);
    const app = await ctx.open(v.store);
    const history = await app.runs.history(id!);
    const state = await app.runs.inspect(id!, { at });
    const event = state.version > 0 ? history[state.version - 1]!.event : undefined;
    const counts = statusCounts(state);
    if (v.json) {
      json(ctx, { runId: id, at: { version: state.version, of: history.length, ...(event ? { time: iso(event.at), type: event.type } : {}) }, state: stateJson(state) });
      return 0;
    }
    const what = event ? `${iso(event.at)}, after ${event.type}${'nodeId' in event ? ` ${event.nodeId}` : ''}` : 'before the first event';
    ctx.io.out(`replay of run ${id} at version ${state.version} of ${history.length} (${what})`);
    ctx.io.out(`nodes: ${Object.entries(counts).map(([s, n]) => `${n} ${paintStatus(ctx.color, s)}`).join(', ') || 'none yet'}`);
    ctx.io.out(renderRunTree(state, { details: true, color: ctx.color, ...(event ? { now: event.at } : {}) }));
    return 0;
  },
};

/** `lovage runs graph`. */
export const graphCommand: RunsSubcommand = {
  summary: 'the DAG as a mermaid or Graphviz graph, coloured by status',
  usage: `Usage: lovage runs graph <id> [--format mermaid|dot] [options]

Writes the run's DAG: a box a node (id, task, status), an edge from each node whose result another
node reads. Mermaid renders in GitHub markdown (\`\`\`mermaid); dot renders with Graphviz (dot -Tsvg).

Options:
      --format <f>       mermaid (default) or dot
      --at <v | time>    the graph as it stood at an event version or ISO time (default: now)
${commonUsage}`,
  async run(argv, ctx) {
    const { values: v, positionals: [id] } = parseRunsArgs('runs graph', argv, { format: { type: 'string' }, at: { type: 'string' } }, ['id']);
    if (v.help) return (ctx.io.out(this.usage), 0);
    const format = (v.format ?? 'mermaid') as GraphFormat;
    if (!GRAPH_FORMATS.includes(format)) throw new UsageError(`--format ${JSON.stringify(v.format)} is not supported; allowed are ${GRAPH_FORMATS.join(', ')}`);
    const at = v.at === undefined ? undefined : atFlag(v.at);
    const app = await ctx.open(v.store);
    const state = await app.runs.inspect(id!, at === undefined ? {} : { at });
    if (v.json) {
      const nodes = (state.index?.dag.nodes ?? []).map((n) => ({ id: n.id, task: n.task, status: state.nodes.get(n.id)!.status, deps: exprRefs(n.input) }));
      json(ctx, { runId: id, status: state.status, version: state.version, format, nodes, graph: renderGraph(state, format) });
      return 0;
    }
    ctx.io.out(renderGraph(state, format));
    return 0;
  },
};

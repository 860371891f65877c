import { exprRefs } from '../canvas/dag.ts';
import type { RunState } from '../engine/state.ts';

/** The graph formats `lovage runs graph` writes. */
export const GRAPH_FORMATS = ['mermaid', 'dot'] as const;
/** One of {@link GRAPH_FORMATS}. */
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

/** Fill and stroke per node status (the same in both formats). */
const STYLE: Readonly<Record<string, { fill: string; stroke: string }>> = {
  pending: { fill: '#f3f4f6', stroke: '#9ca3af' },
  ready: { fill: '#cffafe', stroke: '#0891b2' },
  running: { fill: '#fef9c3', stroke: '#ca8a04' },
  succeeded: { fill: '#dcfce7', stroke: '#16a34a' },
  failed: { fill: '#fee2e2', stroke: '#dc2626' },
  skipped: { fill: '#e5e7eb', stroke: '#6b7280' },
  cancelled: { fill: '#f3e8ff', stroke: '#9333ea' },
};

/** The DAG's edges: from each node an input reference names to the node that reads it. */
function edges(state: RunState): [string, string][] {
  const out: [string, string][] = [];
  for (const node of state.index?.dag.nodes ?? []) for (const dep of exprRefs(node.input)) out.push([dep, node.id]);
  return out;
}

/** Text inside a quoted mermaid label: quotes and angle brackets as mermaid entity codes. */
function mermaidText(s: string): string {
  return s.replace(/#/g, '#35;').replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
}

/** Text inside a DOT double-quoted string. */
function dotText(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * The run's DAG as a mermaid flowchart: one box a node (id, task, status), an edge from each input
 * reference, a `classDef` per status. Node ids become `n0`, `n1`, ... in DAG order (mermaid ids
 * cannot hold dots).
 *
 * @example
 * console.log(renderMermaid(await app.inspect(runId))) // graph TD ...
 */
export function renderMermaid(state: RunState): string {
  const nodes = state.index?.dag.nodes ?? [];
  const key = new Map(nodes.map((n, i) => [n.id, `n${i}`]));
  const lines = ['graph TD', `  %% run ${mermaidText(state.runId)}: ${state.status}`];
  const byStatus = new Map<string, string[]>();
  for (const node of nodes) {
    const status = state.nodes.get(node.id)?.status ?? 'pending';
    lines.push(`  ${key.get(node.id)}["${mermaidText(node.id)} · ${mermaidText(node.task)}<br/>${status}"]`);
    let list = byStatus.get(status);
    if (!list) byStatus.set(status, (list = []));
    list.push(key.get(node.id)!);
  }
  for (const [from, to] of edges(state)) lines.push(`  ${key.get(from)} --> ${key.get(to)}`);
  for (const [status, ids] of byStatus) {
    const s = STYLE[status] ?? STYLE['pending']!;
    lines.push(`  classDef ${status} fill:${s.fill},stroke:${s.stroke},color:#111827`);
    lines.push(`  class ${ids.join(',')} ${status}`);
  }
  return lines.join('\n');
}

/**
 * The run's DAG as a Graphviz digraph: one box a node (id, task, status) filled by status, an edge
 * from each input reference.
 *
 * @example
 * writeFileSync('run.dot', renderDot(await app.inspect(runId))) // then: dot -Tsvg run.dot > run.svg
 */
export function renderDot(state: RunState): string {
  const lines = [
    `digraph "${dotText(`run ${state.runId}`)}" {`,
    '  rankdir=TB;',
    `  label="${dotText(`run ${state.runId}: ${state.status}`)}";`,
    '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
  ];
  for (const node of state.index?.dag.nodes ?? []) {
    const status = state.nodes.get(node.id)?.status ?? 'pending';
    const s = STYLE[status] ?? STYLE['pending']!;
    lines.push(`  "${dotText(node.id)}" [label="${dotText(`${node.id}\n${node.task}\n${status}`)}", fillcolor="${s.fill}", color="${s.stroke}"];`);
  }
  for (const [from, to] of edges(state)) lines.push(`  "${dotText(from)}" -> "${dotText(to)}";`);
  lines.push('}');
  return lines.join('\n');
}

/** The graph of a run in `format`. */
export function renderGraph(state: RunState, format: GraphFormat): string {
  return format === 'mermaid' ? renderMermaid(state) : renderDot(state);
}

import type { RunState } from '../engine/state.ts';

interface Trie {
  readonly label: string;
  readonly children: Map<string, Trie>;
  nodeId?: string;
}

const preview = (v: unknown, max = 40): string => {
  const text = JSON.stringify(v) ?? '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

const duration = (from?: number, to?: number): string => (from === undefined || to === undefined ? '' : `${to - from} ms`);

/**
 * The run as a tree, one line a node: id, task, args, status, attempt, duration, then result or error.
 *
 * @example
 * console.log(renderRunTree(fold(initialState(id), events.map((e) => e.event))))
 */
export function renderRunTree(state: RunState, options: { color?: boolean } = {}): string {
  const paint = (code: number, s: string) => (options.color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const statusColor: Record<string, number> = { succeeded: 32, failed: 31, running: 33, ready: 36, pending: 90, skipped: 90 };
  const root: Trie = { label: '', children: new Map() };
  for (const node of state.index?.dag.nodes ?? []) {
    let at = root;
    for (const part of node.id.split('.')) {
      let next = at.children.get(part);
      if (!next) at.children.set(part, (next = { label: part, children: new Map() }));
      at = next;
    }
    at.nodeId = node.id;
  }
  const lines: string[] = [];
  const head = state.status === 'succeeded' ? `result ${preview(state.result, 80)}` : state.error ? `node ${state.error.nodeId} (${state.error.task}) ${state.error.error.name}: ${state.error.error.message}` : '';
  lines.push(`run ${state.runId}  ${paint(statusColor[state.status] ?? 0, state.status)}  ${duration(state.submittedAt, state.finishedAt)}  ${head}`.trimEnd());
  const walk = (t: Trie, prefix: string): void => {
    const kids = [...t.children.values()];
    kids.forEach((kid, i) => {
      const last = i === kids.length - 1;
      const branch = `${prefix}${last ? '└─ ' : '├─ '}`;
      if (kid.nodeId !== undefined && kid.children.size === 0) {
        const dagNode = state.index!.byId.get(kid.nodeId)!;
        const n = state.nodes.get(kid.nodeId)!;
        const outcome = n.status === 'succeeded' ? `→ ${preview(n.result)}` : n.error ? `✗ ${n.error.name}: ${n.error.message}` : '';
        const parts = [
          kid.nodeId,
          dagNode.task,
          `(${preview(n.args ?? dagNode.args).replace(/^\[|\]$/g, '')})`,
          paint(statusColor[n.status] ?? 0, n.status),
          n.attempt > 0 ? `attempt ${n.attempt}` : '',
          duration(n.startedAt, n.finishedAt),
          outcome,
          n.fenced > 0 ? `(${n.fenced} stale completion${n.fenced > 1 ? 's' : ''} fenced)` : '',
        ];
        lines.push(branch + parts.filter(Boolean).join('  '));
      } else {
        lines.push(branch + paint(90, kid.label));
        walk(kid, `${prefix}${last ? '   ' : '│  '}`);
      }
    });
  };
  walk(root, '');
  return lines.join('\n');
}

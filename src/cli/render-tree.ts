import type { DagNode } from '../canvas/dag.ts';
import type { NodeState, RunState } from '../engine/state.ts';
import { argsPreview, dim, formatDuration, hasFinalArgs, iso, nodeTimes, paint, paintStatus, preview, span } from './format.ts';

interface Trie {
  readonly label: string;
  readonly children: Map<string, Trie>;
  nodeId?: string;
}

/** Options of {@link renderRunTree}. */
export interface RenderTreeOptions {
  /** ANSI colours (statuses, dimmed tree lines and stacks). */
  readonly color?: boolean;
  /**
   * The `lovage runs show` view: worker, time queued and run time per node, errors with their stack,
   * the run's error on its own line at the top. Default: the compact demo view.
   */
  readonly details?: boolean;
  /** The time "now" stands for, epoch ms: running nodes show how long they have run until then. */
  readonly now?: number;
}

/** Most stack lines shown under a failed node (the rest are counted; `--json` has them all). */
const STACK_LINES = 12;

/** Node ids split on `.` into a trie, so that `1.header.0` sits under `1` → `header`. */
function trieOf(state: RunState): Trie {
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
  return root;
}

/** The compact line of a node: id, task, args, status, attempt, run time, result or error. */
function compactLine(dagNode: DagNode, n: NodeState, o: RenderTreeOptions): string {
  const outcome = n.status === 'succeeded' ? `→ ${preview(n.result)}` : n.error ? `✗ ${n.error.name}: ${n.error.message}` : '';
  return [
    dagNode.id,
    dagNode.task,
    argsPreview(n.args ?? dagNode.args),
    paintStatus(o.color, n.status),
    n.attempt > 0 ? `attempt ${n.attempt}` : '',
    span(n.startedAt, n.finishedAt),
    outcome,
    fencedNote(n),
  ].filter(Boolean).join('  ');
}

function fencedNote(n: NodeState): string {
  return n.fenced > 0 ? `(${n.fenced} stale completion${n.fenced > 1 ? 's' : ''} fenced)` : '';
}

/**
 * The detailed line of a node. Arguments: the final ones once the node was made ready, else the
 * bound ones with `·` for the parent's result still to come.
 */
function detailLine(state: RunState, dagNode: DagNode, n: NodeState, o: RenderTreeOptions): string {
  const bound = state.argsOverride?.get(dagNode.id) ?? dagNode.args;
  const args = hasFinalArgs(n) ? argsPreview(n.args) : dagNode.input === null || dagNode.immutable ? argsPreview(bound) : argsPreview(['·', ...bound]).replace('"·"', '·');
  const t = nodeTimes(n);
  const running = n.status === 'running' && t.startedAt !== undefined && o.now !== undefined ? `running ${formatDuration(o.now - t.startedAt)}` : '';
  const held = n.status === 'ready' && n.availableAt !== undefined && o.now !== undefined && n.availableAt > o.now ? `due in ${formatDuration(n.availableAt - o.now)}` : '';
  const waiting = held || (n.status === 'ready' && t.readyAt !== undefined && o.now !== undefined ? `queued ${formatDuration(o.now - t.readyAt)}` : '');
  const outcome = n.status === 'succeeded' ? `→ ${preview(n.result, 60)}` : n.error ? paint(o.color, '31', `✗ ${n.error.name}: ${n.error.message}`) : '';
  return [
    dagNode.id,
    dagNode.task,
    args,
    paintStatus(o.color, n.status),
    n.attempt > 0 ? `attempt ${n.attempt}` : '',
    n.retries > 0 ? `${n.retries} ${n.retries === 1 ? 'retry' : 'retries'}` : '',
    n.attempt > 0 && n.worker !== undefined ? `worker ${n.worker}` : '',
    t.queuedMs !== undefined ? `queued ${formatDuration(t.queuedMs)}` : waiting,
    t.runMs !== undefined ? `ran ${formatDuration(t.runMs)}` : running,
    outcome,
    fencedNote(n),
  ].filter(Boolean).join('  ');
}

/** A stack's frames (its first line repeats `name: message`), capped at STACK_LINES. */
function stackLines(stack: string | undefined): string[] {
  if (!stack) return [];
  const lines = stack.split('\n').map((l) => l.trim()).filter(Boolean);
  const frames = lines[0] !== undefined && !lines[0].startsWith('at ') ? lines.slice(1) : lines;
  return frames.length > STACK_LINES ? [...frames.slice(0, STACK_LINES), `… ${frames.length - STACK_LINES} more lines (--json shows all)`] : frames;
}

/** The run's first line(s): id, status, duration, and its result or error. */
function headLines(state: RunState, o: RenderTreeOptions): string[] {
  const took = state.finishedAt !== undefined ? span(state.submittedAt, state.finishedAt) : state.submittedAt !== undefined && o.now !== undefined && o.details ? `${formatDuration(o.now - state.submittedAt)} so far` : '';
  if (!o.details) {
    const head = state.status === 'succeeded' ? `result ${preview(state.result, 80)}` : state.error ? `node ${state.error.nodeId} (${state.error.task}) ${state.error.error.name}: ${state.error.error.message}` : '';
    return [`run ${state.runId}  ${paintStatus(o.color, state.status)}  ${took}  ${head}`.replace(/ +$/, '')];
  }
  const when = state.submittedAt !== undefined ? `submitted ${iso(state.submittedAt)}` : '';
  const lines = [[`run ${state.runId}`, paintStatus(o.color, state.status), took, when, state.resumes ? `resumed ${state.resumes}×` : ''].filter(Boolean).join('  ')];
  if (state.status === 'succeeded') lines.push(`result ${preview(state.result, 200)}`);
  if (state.error) lines.push(paint(o.color, '31', `error  node ${state.error.nodeId} (task ${state.error.task}) raised ${state.error.error.name}: ${state.error.error.message}`));
  if (state.cancelled) lines.push(`cancelled: ${state.cancelled.reason}`);
  return lines;
}

/**
 * The run as a tree, one line a node: id, task, args, status, attempt, duration, then result or
 * error. With `details` (`lovage runs show`): worker, time queued and run time, and each error's
 * stack indented and dimmed under its node.
 *
 * @example
 * console.log(renderRunTree(fold(initialState(id), events.map((e) => e.event))))
 * console.log(renderRunTree(state, { details: true, color: true, now: Date.now() }))
 */
export function renderRunTree(state: RunState, options: RenderTreeOptions = {}): string {
  const lines = headLines(state, options);
  const walk = (t: Trie, prefix: string): void => {
    const kids = [...t.children.values()];
    kids.forEach((kid, i) => {
      const last = i === kids.length - 1;
      const branch = prefix + dim(options.details && options.color, last ? '└─ ' : '├─ ');
      const below = `${prefix}${last ? '   ' : '│  '}`;
      if (kid.nodeId !== undefined) {
        const dagNode = state.index!.byId.get(kid.nodeId)!;
        const n = state.nodes.get(kid.nodeId)!;
        if (!options.details) {
          lines.push(branch + compactLine(dagNode, n, options));
        } else {
          lines.push(branch + detailLine(state, dagNode, n, options));
          for (const frame of stackLines(n.error?.stack)) lines.push(dim(options.color, `${below}    ${frame}`));
        }
        // A node's callbacks (`0.link.0`) sit under it.
        if (kid.children.size > 0) walk(kid, below);
      } else {
        lines.push(branch + paint(options.color, '90', kid.label));
        walk(kid, below);
      }
    });
  };
  walk(trieOf(state), '');
  return lines.join('\n');
}

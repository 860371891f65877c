// Small text helpers shared by the `lovage runs` subcommands: colour, durations, times, previews.
import type { NodeState, RunState } from '../engine/state.ts';
import { exprRefs } from '../canvas/dag.ts';

/** ANSI SGR codes by status (and for dim text), used only when colour is on. */
const STATUS_CODE: Readonly<Record<string, string>> = {
  succeeded: '32', failed: '31', running: '33', ready: '36', pending: '90', skipped: '90', cancelled: '35', quarantined: '1;31', new: '90',
};

/**
 * Wraps text in ANSI colour when `on`; plain text otherwise.
 *
 * @example
 * paint(true, '31', 'failed') // '\u001b[31mfailed\u001b[0m'
 */
export function paint(on: boolean | undefined, code: string, text: string): string {
  return on && text !== '' ? `\u001b[${code}m${text}\u001b[0m` : text;
}

/** A status word, coloured by status when `on`. */
export function paintStatus(on: boolean | undefined, status: string): string {
  return paint(on, STATUS_CODE[status] ?? '0', status);
}

/** Dimmed text (stacks, tree lines), when `on`. */
export function dim(on: boolean | undefined, text: string): string {
  return paint(on, '2', text);
}

/**
 * A duration for people: `12 ms`, `3.2 s`, `4 min 12 s`, `2 h 5 min`, `3 d 4 h`.
 *
 * @example
 * formatDuration(3210) // '3.2 s'
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  const v = Math.max(0, Math.round(ms));
  if (v < 1000) return `${v} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(1).replace(/\.0$/, '')} s`;
  const s = Math.floor(v / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
  return `${Math.floor(s / 86_400)} d${Math.floor((s % 86_400) / 3600) ? ` ${Math.floor((s % 86_400) / 3600)} h` : ''}`;
}

/** `formatDuration(to - from)`, or `''` when either end is unknown. */
export function span(from: number | undefined, to: number | undefined): string {
  return from === undefined || to === undefined ? '' : formatDuration(to - from);
}

/** Epoch ms as an ISO 8601 UTC time (`2026-11-22T10:00:00.123Z`). */
export function iso(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? '' : new Date(ms).toISOString();
}

/**
 * A one-line JSON preview of a value, cut at `max` characters with `…`.
 *
 * @example
 * preview([1, 2, 3]) // '[1,2,3]'
 */
export function preview(value: unknown, max = 40): string {
  const text = (JSON.stringify(value) ?? String(value)).replace(/\s+/g, ' ');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Plain text cut at `max` characters with `…`, on one line. */
export function clip(text: string, max = 80): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** `1 step`, `2 steps`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Arguments as a call: `(1,2)` for `[1,2]`. */
export function argsPreview(args: unknown, max = 40): string {
  return `(${preview(args, max + 2).replace(/^\[|\]$/g, '')})`;
}

/**
 * The tasks of a run's DAG in DAG order, repeated ones counted: `add ×3, mul, xsum`.
 *
 * @example
 * taskSummary(['add', 'add', 'mul']) // 'add ×2, mul'
 */
export function taskSummary(tasks: readonly string[], max = 60): string {
  const counts = new Map<string, number>();
  for (const t of tasks) counts.set(t, (counts.get(t) ?? 0) + 1);
  const text = [...counts].map(([t, n]) => (n > 1 ? `${t} ×${n}` : t)).join(', ');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Counts of nodes per status, in lifecycle order: `3 succeeded, 1 running, 2 pending`. */
export function statusCounts(state: RunState): Record<string, number> {
  const order = ['succeeded', 'failed', 'running', 'ready', 'pending', 'skipped', 'cancelled'];
  const counts: Record<string, number> = {};
  for (const s of order) counts[s] = 0;
  for (const n of state.nodes.values()) counts[n.status] = (counts[n.status] ?? 0) + 1;
  for (const s of order) if (counts[s] === 0) delete counts[s];
  return counts;
}

/**
 * A node's times that belong to its current attempt. A resume resets a node to pending but keeps
 * the times and worker of its earlier attempt in the state; `attempt > 0` says a NodeStarted came
 * after the reset, and `ready` that a NodeReady did.
 */
export function nodeTimes(n: NodeState): { readyAt?: number; startedAt?: number; finishedAt?: number; queuedMs?: number; runMs?: number } {
  const started = n.attempt > 0 && n.startedAt !== undefined;
  const readyAt = n.readyAt !== undefined && (started || n.status === 'ready') ? n.readyAt : undefined;
  const startedAt = started ? n.startedAt : undefined;
  return {
    ...(readyAt !== undefined ? { readyAt } : {}),
    ...(startedAt !== undefined ? { startedAt } : {}),
    ...(n.finishedAt !== undefined ? { finishedAt: n.finishedAt } : {}),
    ...(readyAt !== undefined && startedAt !== undefined ? { queuedMs: Math.max(0, startedAt - readyAt) } : {}),
    ...(startedAt !== undefined && n.finishedAt !== undefined && (n.status === 'succeeded' || n.status === 'failed') ? { runMs: n.finishedAt - startedAt } : {}),
  };
}

/** Whether `n.args` are the arguments of the node's current attempt (a NodeReady since the last reset). */
export function hasFinalArgs(n: NodeState): boolean {
  return n.args !== undefined && (n.attempt > 0 || n.status === 'ready' || n.status === 'running' || n.status === 'succeeded' || n.status === 'failed');
}

function timesJson(n: NodeState): Record<string, unknown> {
  const t = nodeTimes(n);
  return {
    ...(t.readyAt !== undefined ? { readyAt: iso(t.readyAt) } : {}),
    ...(t.startedAt !== undefined ? { startedAt: iso(t.startedAt) } : {}),
    ...(t.finishedAt !== undefined ? { finishedAt: iso(t.finishedAt) } : {}),
    ...(t.queuedMs !== undefined ? { queuedMs: t.queuedMs } : {}),
    ...(t.runMs !== undefined ? { runMs: t.runMs } : {}),
  };
}

/**
 * A RunState as plain JSON for `--json`: times as ISO strings, durations in ms, one entry a node.
 *
 * @example
 * JSON.stringify(stateJson(await app.inspect(runId)))
 */
export function stateJson(state: RunState): Record<string, unknown> {
  const nodes = (state.index?.dag.nodes ?? []).map((d) => {
    const n = state.nodes.get(d.id)!;
    return {
      id: d.id, task: d.task, status: n.status, attempt: n.attempt, deps: exprRefs(d.input), queue: d.queue,
      boundArgs: state.argsOverride?.get(d.id) ?? d.args,
      ...(hasFinalArgs(n) ? { args: n.args ?? d.args } : {}),
      ...(n.attempt > 0 && n.worker !== undefined ? { worker: n.worker } : {}),
      ...(n.status === 'succeeded' ? { result: n.result ?? null } : {}),
      ...(n.error ? { error: n.error } : {}),
      ...timesJson(n),
      ...(n.fenced ? { fenced: n.fenced } : {}),
    };
  });
  return {
    runId: state.runId, status: state.status, version: state.version,
    ...(state.submittedAt !== undefined ? { submittedAt: iso(state.submittedAt) } : {}),
    ...(state.finishedAt !== undefined ? { finishedAt: iso(state.finishedAt) } : {}),
    ...(state.submittedAt !== undefined && state.finishedAt !== undefined ? { durationMs: state.finishedAt - state.submittedAt } : {}),
    ...(state.status === 'succeeded' ? { result: state.result ?? null } : {}),
    ...(state.error ? { error: state.error } : {}),
    ...(state.cancelled ? { cancelled: state.cancelled } : {}),
    resumes: state.resumes,
    counts: statusCounts(state),
    nodes,
  };
}

import { exprRefs } from '../canvas/dag.ts';
import { assertJson, type Json } from '../canvas/json.ts';
import { LovageError, preview } from '../errors.ts';
import { argsFor } from './args.ts';
import type { Command } from './decide.ts';
import type { WorkflowEvent } from './events.ts';
import type { RunState } from './state.ts';

/** Cancels a running run: every node not yet finished is cancelled; late completions are fenced. */
export function decideCancel(state: RunState, c: Extract<Command, { type: 'Cancel' }>): WorkflowEvent[] {
  if (state.status !== 'running') {
    throw new LovageError('VALIDATION', `run ${state.runId} is ${state.status}; only a running run can be cancelled`, { runId: state.runId, status: state.status });
  }
  const nodeIds: string[] = [];
  for (const [id, n] of state.nodes) if (n.status === 'pending' || n.status === 'ready' || n.status === 'running') nodeIds.push(id);
  return [{ type: 'WorkflowCancelled', at: c.at, reason: c.reason, nodeIds }];
}

/**
 * Resumes a failed or cancelled run at its frontier: failed, cancelled and skipped nodes (plus any
 * asked for) and everything downstream of them go back to pending; succeeded nodes keep their
 * results. The nodes whose inputs are all there become ready at once.
 */
export function decideResume(state: RunState, c: Extract<Command, { type: 'Resume' }>): WorkflowEvent[] {
  const index = state.index;
  if (!index || (state.status !== 'failed' && state.status !== 'cancelled')) {
    const why = state.status === 'running' ? 'it is still running (cancel it first, or wait for it to end)' : state.status === 'succeeded' ? 'it succeeded; there is nothing to resume' : `it is ${state.status}`;
    throw new LovageError('VALIDATION', `run ${state.runId} cannot be resumed: ${why}; only failed or cancelled runs can be resumed`, { runId: state.runId, status: state.status });
  }
  for (const id of c.nodes ?? []) {
    if (!index.byId.has(id)) throw new LovageError('VALIDATION', `run ${state.runId} has no node "${id}"; nodes are ${preview([...index.byId.keys()], 80)}`, { runId: state.runId, nodeId: id });
  }
  const reset = new Set<string>();
  const visit = (id: string): void => {
    if (reset.has(id)) return;
    reset.add(id);
    for (const d of index.dependents.get(id) ?? []) visit(d);
  };
  for (const [id, n] of state.nodes) if (n.status !== 'succeeded') visit(id);
  for (const id of c.nodes ?? []) visit(id);
  const args: Record<string, Json[]> = {};
  for (const [id, value] of Object.entries(c.args ?? {})) {
    if (!reset.has(id)) {
      throw new LovageError('VALIDATION', `run ${state.runId}: arguments can be replaced only for nodes that run again; "${id}" ${index.byId.has(id) ? 'keeps its result (add it with --node)' : 'is not a node'}`, { runId: state.runId, nodeId: id });
    }
    if (!Array.isArray(value)) throw new LovageError('VALIDATION', `run ${state.runId}: arguments for node ${id} must be a JSON array, got ${preview(value)}`, { nodeId: id });
    assertJson(value, `arguments for node ${id}`);
    args[id] = value as Json[];
  }
  // In DAG order, so the event reads the same however the set was built.
  const ordered = index.dag.nodes.map((n) => n.id).filter((id) => reset.has(id));
  const events: WorkflowEvent[] = [{ type: 'WorkflowResumed', at: c.at, nodes: [...(c.nodes ?? [])], reset: ordered, args }];
  const override = new Map(state.argsOverride);
  for (const [id, a] of Object.entries(args)) override.set(id, a);
  const result = (id: string): Json => state.nodes.get(id)?.result ?? null;
  for (const id of ordered) {
    const node = index.byId.get(id)!;
    if (exprRefs(node.input).every((dep) => !reset.has(dep))) {
      events.push({ type: 'NodeReady', at: c.at, nodeId: id, task: node.task, args: argsFor(node, result, override), queue: node.queue, priority: node.priority });
    }
  }
  return events;
}

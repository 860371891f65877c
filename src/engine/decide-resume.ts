import { evalExpr, inputDeps, type CollectMember } from '../canvas/dag.ts';
import { assertJson, type Json } from '../canvas/json.ts';
import { LovageError, preview } from '../errors.ts';
import { argsFor, readyEvent } from './args.ts';
import { settleDeps } from './dag-index.ts';
import { Draft } from './draft.ts';
import type { Command } from './decide.ts';
import type { WorkflowEvent } from './events.ts';
import type { RunState } from './state.ts';

/**
 * Cancels a running run: every node not yet finished is cancelled; late completions are fenced.
 * With `nodes`, only those subtrees: their unfinished nodes stop (NodesAborted), the rest of the run
 * goes on, and when it ends with part of its canvas not run it is cancelled (and can be resumed).
 */
export function decideCancel(state: RunState, c: Extract<Command, { type: 'Cancel' }>): WorkflowEvent[] {
  if (state.status !== 'running') {
    throw new LovageError('VALIDATION', `run ${state.runId} is ${state.status}; only a running run can be cancelled`, { runId: state.runId, status: state.status });
  }
  if (c.nodes !== undefined) return cancelSubtrees(state, c, c.nodes);
  const nodeIds: string[] = [];
  for (const [id, n] of state.nodes) if (n.status === 'pending' || n.status === 'ready' || n.status === 'running') nodeIds.push(id);
  return [{ type: 'WorkflowCancelled', at: c.at, reason: c.reason, nodeIds, ...(c.terminate ? { terminate: true } : {}) }];
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
  // Downstream: the readers of its result, of its end (a `collect` header's), and the `linkError`
  // callbacks its failure ran (they run again if it fails again).
  const visit = (id: string): void => {
    if (reset.has(id)) return;
    reset.add(id);
    for (const d of index.dependents.get(id) ?? []) visit(d);
    for (const d of index.settles.get(id) ?? []) visit(d);
    for (const scope of index.triggers.get(id) ?? []) for (const d of index.triggered.get(scope) ?? []) visit(d);
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
  // What waits for nothing reset runs now: every `collect` member it reads succeeded.
  const member = (m: CollectMember): Json => ({ ok: true, value: evalExpr(m.value, result, { member }) });
  for (const id of ordered) {
    const node = index.byId.get(id)!;
    const deps = inputDeps(node.input);
    if (deps.failures.length === 0 && deps.refs.every((dep) => !reset.has(dep)) && settleDeps(index, node).every((dep) => !reset.has(dep))) {
      events.push(readyEvent(node, c.at, argsFor(node, result, override, { member })));
    }
  }
  return events;
}

function cancelSubtrees(state: RunState, c: Extract<Command, { type: 'Cancel' }>, roots: readonly string[]): WorkflowEvent[] {
  const index = state.index!;
  if (roots.length === 0) throw new LovageError('VALIDATION', 'cancel nodes must name at least one node (omit it to cancel the whole run)');
  const ids = new Set<string>();
  for (const root of roots) {
    if (typeof root !== 'string' || !index.byId.has(root) && !index.dag.nodes.some((n) => n.id.startsWith(`${root}.`))) {
      const known = index.dag.nodes.slice(0, 8).map((n) => n.id).join(', ');
      throw new LovageError('VALIDATION', `run ${state.runId} has no node ${preview(root)}; its nodes are ${known}${index.dag.nodes.length > 8 ? ', ...' : ''} (a prefix such as 1 takes 1.header.0 and the rest under it)`, { runId: state.runId });
    }
    for (const n of index.dag.nodes) if (n.id === root || n.id.startsWith(`${root}.`)) ids.add(n.id);
  }
  const open = [...ids].filter((id) => {
    const s = state.nodes.get(id)!.status;
    return s === 'pending' || s === 'ready' || s === 'running';
  });
  if (open.length === 0) throw new LovageError('VALIDATION', `nothing to cancel in run ${state.runId}: every node under ${roots.join(', ')} has finished`, { runId: state.runId });
  const draft = new Draft(state, index, c.at);
  draft.cancelNodes(open, c.reason, c.terminate === true);
  draft.readyCounted();
  if (draft.active === 0) draft.end();
  return draft.events;
}

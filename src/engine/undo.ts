import type { Json } from '../canvas/json.ts';
import { LovageError } from '../errors.ts';
import type { WorkflowEvent } from './events.ts';
import { applyInPlace, type NodeState, type RunState } from './state.ts';

/** What in-place applies changed, so an optimistic change can be taken back (see {@link rollback}); the coordinator's optimistic decisions use it. */
export interface Undo {
  readonly state: RunState;
  readonly saved: RunState;
  readonly failed: string[];
  readonly argsOverride: Map<string, readonly Json[]> | undefined;
  /** Original copies of the nodes changed since. */
  readonly nodes: Map<string, NodeState>;
}

/** Starts recording changes to `state` (cheap: the run's fields, not its nodes). */
export function beginUndo(state: RunState): Undo {
  return { state, saved: { ...state }, failed: [...state.failed], argsOverride: state.argsOverride && new Map(state.argsOverride), nodes: new Map() };
}

/** Applies an event in place, first keeping a copy of every node it changes in `undo`. */
export function applyUndoable(undo: Undo, event: WorkflowEvent): void {
  const state = undo.state;
  switch (event.type) {
    case 'NodeSucceeded':
      keep(undo, event.nodeId);
      for (const d of state.index?.dependents.get(event.nodeId) ?? []) keep(undo, d);
      break;
    case 'NodesSkipped':
    case 'NodesAborted':
    case 'WorkflowCancelled':
      for (const id of event.nodeIds) keep(undo, id);
      break;
    case 'WorkflowResumed':
      for (const id of event.reset) keep(undo, id);
      break;
    case 'WorkflowSubmitted':
      throw new LovageError('VALIDATION', 'a submit cannot be undone');
    default:
      if ('nodeId' in event) keep(undo, event.nodeId);
  }
  applyInPlace(state, event);
}

/** Keeps a copy of node `id` (and of the `collect` readers it counts down) before its first change. */
function keep(undo: Undo, id: string): void {
  const state = undo.state;
  const node = state.nodes.get(id);
  if (node && !undo.nodes.has(id)) undo.nodes.set(id, { ...node });
  // The readers of a `collect` header count its nodes down as they end.
  for (const reader of state.index?.settles.get(id) ?? []) {
    const r = state.nodes.get(reader);
    if (r && !undo.nodes.has(reader)) undo.nodes.set(reader, { ...r });
  }
}

/** Puts `undo.state` back as it was at {@link beginUndo}. */
export function rollback(undo: Undo): void {
  const state = undo.state as unknown as Record<string, unknown>;
  for (const key of Object.keys(state)) delete state[key];
  Object.assign(state, undo.saved, { failed: undo.failed });
  if (undo.argsOverride) undo.state.argsOverride = undo.argsOverride;
  for (const [id, node] of undo.nodes) undo.state.nodes.set(id, node);
}

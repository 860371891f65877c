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
  const keep = (id: string): void => {
    const node = state.nodes.get(id);
    if (node && !undo.nodes.has(id)) undo.nodes.set(id, { ...node });
  };
  switch (event.type) {
    case 'NodeSucceeded':
      keep(event.nodeId);
      for (const d of state.index?.dependents.get(event.nodeId) ?? []) keep(d);
      break;
    case 'NodesSkipped':
    case 'WorkflowCancelled':
      event.nodeIds.forEach(keep);
      break;
    case 'WorkflowResumed':
      event.reset.forEach(keep);
      break;
    case 'WorkflowSubmitted':
      throw new LovageError('VALIDATION', 'a submit cannot be undone');
    default:
      if ('nodeId' in event) keep(event.nodeId);
  }
  applyInPlace(state, event);
}

/** Puts `undo.state` back as it was at {@link beginUndo}. */
export function rollback(undo: Undo): void {
  const state = undo.state as unknown as Record<string, unknown>;
  for (const key of Object.keys(state)) delete state[key];
  Object.assign(state, undo.saved, { failed: undo.failed });
  if (undo.argsOverride) undo.state.argsOverride = undo.argsOverride;
  for (const [id, node] of undo.nodes) undo.state.nodes.set(id, node);
}

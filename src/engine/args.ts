import { evalExpr, type Dag, type DagNode, type EvalEnv, type ExecOptions } from '../canvas/dag.ts';
import type { Json } from '../canvas/json.ts';
import type { WorkflowEvent } from './events.ts';

/** The arguments a node is called with: its bound ones (or a resume's replacement), after the parent's result. */
export function argsFor(dag: Dag['nodes'][number], result: (id: string) => Json, override?: ReadonlyMap<string, readonly Json[]>, env?: EvalEnv): Json[] {
  const bound = (override?.get(dag.id) ?? dag.args) as Json[];
  if (dag.immutable || dag.input === null) return bound;
  return [evalExpr(dag.input, result, env), ...bound];
}

/**
 * A node becoming ready at `at`: its per-call options turn into times (countdown and eta into
 * `availableAt`, expires into `expiresAt`) and what the worker applies.
 */
export function readyEvent(node: DagNode, at: number, args: Json[]): Extract<WorkflowEvent, { type: 'NodeReady' }> {
  const base = { type: 'NodeReady' as const, at, nodeId: node.id, task: node.task, args, queue: node.queue, priority: node.priority };
  const o = node.options;
  if (!o) return base;
  const availableAt = Math.max(o.countdownMs !== undefined ? at + o.countdownMs : at, o.eta ?? at);
  const expiresAt = o.expiresAt ?? (o.expiresMs !== undefined ? at + o.expiresMs : undefined);
  const exec: ExecOptions = {
    ...(o.retry ? { retry: o.retry } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...(expiresAt !== undefined && o.expireSkip ? { expireSkip: true as const } : {}),
    ...(o.softTimeLimitMs !== undefined ? { softTimeLimitMs: o.softTimeLimitMs } : {}),
    ...(o.timeLimitMs !== undefined ? { timeLimitMs: o.timeLimitMs } : {}),
  };
  return { ...base, ...(availableAt > at ? { availableAt } : {}), ...(Object.keys(exec).length > 0 ? { options: exec } : {}) };
}

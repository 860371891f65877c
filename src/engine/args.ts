import { evalExpr, type Dag } from '../canvas/dag.ts';
import type { Json } from '../canvas/json.ts';

/** The arguments a node is called with: its bound ones (or a resume's replacement), after the parent's result. */
export function argsFor(dag: Dag['nodes'][number], result: (id: string) => Json, override?: ReadonlyMap<string, readonly Json[]>): Json[] {
  const bound = (override?.get(dag.id) ?? dag.args) as Json[];
  if (dag.immutable || dag.input === null) return bound;
  return [evalExpr(dag.input, result), ...bound];
}

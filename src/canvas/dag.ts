import type { Json } from './json.ts';

/**
 * How a node's input is computed from other nodes' results: one node's result, or an array of
 * sub-expressions (a group's results, in member order). `after` orders without adding a value: an
 * empty group in a chain evaluates to `[]`, yet still waits for the steps before it.
 */
export type Expr = { readonly ref: string } | { readonly list: readonly Expr[]; readonly after?: Expr };

/** One task execution in a run. `input` is what is prepended to `args` (ignored when `immutable`). */
export interface DagNode {
  /** Stable id naming the node's place in the canvas: `0`, `1.header.2`, `1.body`. */
  readonly id: string;
  readonly task: string;
  readonly args: readonly Json[];
  readonly immutable: boolean;
  /** The parent results this node waits for; `null` for a node that starts the run. */
  readonly input: Expr | null;
  readonly queue: string;
  readonly priority: number;
}

/** A compiled canvas: nodes in a deterministic order and the expression of the run's result. */
export interface Dag {
  readonly nodes: readonly DagNode[];
  readonly result: Expr;
}

/** The node ids an expression reads, each once, in first-seen order. */
export function exprRefs(expr: Expr | null, into: string[] = [], seen = new Set<string>()): string[] {
  if (expr === null) return into;
  if ('ref' in expr) {
    if (!seen.has(expr.ref)) {
      seen.add(expr.ref);
      into.push(expr.ref);
    }
    return into;
  }
  for (const e of expr.list) exprRefs(e, into, seen);
  if (expr.after) exprRefs(expr.after, into, seen);
  return into;
}

/** Evaluates an expression against the results known so far. */
export function evalExpr(expr: Expr, result: (nodeId: string) => Json): Json {
  if ('ref' in expr) return result(expr.ref);
  return expr.list.map((e) => evalExpr(e, result));
}

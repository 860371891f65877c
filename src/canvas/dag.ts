import type { Json } from './json.ts';

/**
 * How a node's input is computed from other nodes' results: one node's result, or an array of
 * sub-expressions (a group's results, in member order). `after` orders without adding a value: an
 * empty group in a chain evaluates to `[]`, yet still waits for the steps before it.
 *
 * Two forms come with callbacks and chord modes: `collect` (a `collect` chord's header) evaluates to
 * one `{ ok: true, value } | { ok: false, error: { name, message } }` per member, once every member
 * has finished whatever way; `failure` (the input of a `linkError` callback) evaluates to the failure
 * it handles, `{ runId, nodeId, task, error: { name, message } }`.
 */
export type Expr =
  | { readonly ref: string }
  | { readonly list: readonly Expr[]; readonly after?: Expr }
  | { readonly collect: readonly CollectMember[]; readonly after?: Expr }
  | { readonly failure: string };

/** One member of a `collect` chord's header: the scope its nodes belong to and its value. */
export interface CollectMember {
  readonly scope: string;
  readonly value: Expr;
}

/**
 * A failure scope: the nodes whose failure is contained in it instead of failing the run. A `link` or
 * `linkError` callback canvas is one (its failures are recorded, the run's outcome does not change);
 * so is each member of a `collect` chord's header (its failure becomes `{ ok: false, error }`).
 * Scopes nest: `parent` is the enclosing one (absent: the run's canvas proper).
 */
export interface DagScope {
  /** The callback's or the member's place: `0.link.0`, `1.linkError.0`, `2.header.1`. */
  readonly id: string;
  readonly kind: 'link' | 'linkError' | 'member';
  readonly parent?: string;
  /** For `linkError`: the nodes whose failure runs the callback (the first of them to fail). */
  readonly on?: readonly string[];
}

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
  /** Per-call execution options (retry, countdown, eta, expires, time limits); absent when none were given. */
  readonly options?: NodeOptions;
  /** The innermost {@link DagScope} the node belongs to; absent: the run's canvas proper. */
  readonly scope?: string;
  /** Set on the header nodes of a `failFast` chord (its path): their failure stops their scope at once. */
  readonly failFast?: string;
}

/**
 * A retry policy as data. `max` counts retries (so at most `max + 1` executions that fail);
 * the delay before retry `n` (1-based) is `delayMs · factor^(n-1)` for `exponential`, `delayMs` for
 * `fixed`, at most `maxDelayMs`; with `jitter` a uniform random value from 0 to that delay ("full jitter").
 */
export interface RetryPolicy {
  readonly max: number;
  readonly backoff: 'fixed' | 'exponential';
  readonly delayMs: number;
  readonly factor: number;
  readonly maxDelayMs: number;
  readonly jitter: boolean;
  /** Error names to retry; when set, other errors fail at once. */
  readonly autoretryFor?: readonly string[];
  /** Error names never retried. */
  readonly dontRetryFor?: readonly string[];
}

/** A node's per-call options, normalised by `compile` (all times in ms). */
export interface NodeOptions {
  /** The retry fields the call set; the worker puts them over the task's own policy. */
  readonly retry?: Partial<RetryPolicy>;
  /** Ready this long after the node's inputs are (Celery's countdown). */
  readonly countdownMs?: number;
  /** Not before this time, epoch ms (Celery's eta). */
  readonly eta?: number;
  /** Expires this long after it became ready. */
  readonly expiresMs?: number;
  /** Expires at this time, epoch ms. */
  readonly expiresAt?: number;
  /** An expired node succeeds with `null` (onExpire 'skip') instead of failing. */
  readonly expireSkip?: true;
  readonly softTimeLimitMs?: number;
  readonly timeLimitMs?: number;
}

/** What a worker needs to run a node besides its task's own options: handed over with the claim. */
export interface ExecOptions {
  readonly retry?: Partial<RetryPolicy>;
  /** A node claimed after this time (epoch ms, store clock) is recorded as expired and not run. */
  readonly expiresAt?: number;
  /** Expired: recorded succeeded with result `null` (`NodeSucceeded.expired`) instead of failed (onExpire 'skip'). */
  readonly expireSkip?: true;
  readonly softTimeLimitMs?: number;
  readonly timeLimitMs?: number;
}

/** A compiled canvas: nodes in a deterministic order and the expression of the run's result. */
export interface Dag {
  readonly nodes: readonly DagNode[];
  readonly result: Expr;
  /** The failure scopes (callbacks, `collect` members), outermost first; absent when there are none. */
  readonly scopes?: readonly DagScope[];
}

/** The node ids an expression reads, each once, in first-seen order (a `collect` member's included). */
export function exprRefs(expr: Expr | null): readonly string[] {
  // A node without input (most: a group member, a chain's first step) allocates nothing.
  return expr === null ? noRefs : collectRefs(expr, [], new Set<string>());
}

const noRefs: readonly string[] = Object.freeze([]);

function collectRefs(expr: Expr | null, into: string[], seen: Set<string>): string[] {
  if (expr === null) return into;
  if ('ref' in expr) {
    if (!seen.has(expr.ref)) {
      seen.add(expr.ref);
      into.push(expr.ref);
    }
    return into;
  }
  if ('failure' in expr) return into;
  if ('list' in expr) for (const e of expr.list) collectRefs(e, into, seen);
  else for (const m of expr.collect) collectRefs(m.value, into, seen);
  if (expr.after) collectRefs(expr.after, into, seen);
  return into;
}

/** What a node waits for: results (`refs`), `collect` members to finish, a `linkError` failure. */
export interface InputDeps {
  /** Nodes that must succeed (outside `collect` members). */
  readonly refs: string[];
  /** Scopes of `collect` members: every node of each must finish, whatever way. */
  readonly collect: string[];
  /** `linkError` scopes: the node runs when one of the scope's sources fails. */
  readonly failures: string[];
}

/** The dependencies of an input expression, each once, in first-seen order. */
export function inputDeps(expr: Expr | null): InputDeps {
  const deps: InputDeps = { refs: [], collect: [], failures: [] };
  const seen = new Set<string>();
  const walk = (e: Expr): void => {
    if ('ref' in e) {
      if (!seen.has(e.ref)) {
        seen.add(e.ref);
        deps.refs.push(e.ref);
      }
      return;
    }
    if ('failure' in e) {
      if (!deps.failures.includes(e.failure)) deps.failures.push(e.failure);
      return;
    }
    if ('list' in e) e.list.forEach(walk);
    else for (const m of e.collect) if (!deps.collect.includes(m.scope)) deps.collect.push(m.scope);
    if (e.after) walk(e.after);
  };
  if (expr !== null) walk(expr);
  return deps;
}

/** How the `collect` and `failure` forms evaluate; without it they evaluate to `null`. */
export interface EvalEnv {
  readonly member?: (member: CollectMember) => Json;
  readonly failure?: (scope: string) => Json;
}

/** Evaluates an expression against the results known so far. */
export function evalExpr(expr: Expr, result: (nodeId: string) => Json, env?: EvalEnv): Json {
  if ('ref' in expr) return result(expr.ref);
  if ('failure' in expr) return env?.failure?.(expr.failure) ?? null;
  if ('collect' in expr) return expr.collect.map((m) => env?.member?.(m) ?? null);
  return expr.list.map((e) => evalExpr(e, result, env));
}

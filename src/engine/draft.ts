import { evalExpr, inputDeps, type CollectMember, type DagNode, type EvalEnv } from '../canvas/dag.ts';
import type { Json } from '../canvas/json.ts';
import { argsFor, readyEvent } from './args.ts';
import { domainOf, inCallback, type DagIndex } from './dag-index.ts';
import type { TaskErrorInfo, WorkflowEvent } from './events.ts';
import { isFinished, type NodeStatus } from './lifecycle.ts';
import type { RunState } from './state.ts';

/** An error as a `collect` member or a `linkError` callback sees it: its name and message (the stack stays in the log). */
export function errorBrief(e: TaskErrorInfo): { name: string; message: string } {
  return { name: e.name, message: e.message };
}

const noMembers: EvalEnv = Object.freeze({});

/**
 * The decisions of one completion, drafted over a run's state without changing it: the statuses,
 * waiting counts and results as the batch leaves them, and its events in order.
 */
export class Draft {
  readonly events: WorkflowEvent[] = [];
  /** Nodes ready or running once the batch is applied. */
  active: number;
  // What this batch changed, over the state. One draft is made per completion, which mostly
  // changes one node: the maps it seldom needs are made on first use.
  readonly #status = new Map<string, NodeStatus>();
  readonly #results = new Map<string, Json>();
  #remaining: Map<string, number> | undefined;
  #errors: Map<string, TaskErrorInfo> | undefined;
  readonly #failed: string[] = [];
  readonly #counted: string[] = [];
  #result: ((id: string) => Json) | undefined;

  constructor(readonly state: RunState, readonly index: DagIndex, readonly at: number) {
    this.active = state.active;
  }

  status(id: string): NodeStatus {
    return this.#status.get(id) ?? this.state.nodes.get(id)!.status;
  }

  /** A node's result as the batch leaves it, as a function to hand to `evalExpr` (made when first asked for). */
  get result(): (id: string) => Json {
    this.#result ??= (id) => (this.#results.has(id) ? this.#results.get(id)! : (this.state.nodes.get(id)?.result ?? null));
    return this.#result;
  }

  #node(id: string): DagNode {
    return this.index.byId.get(id)!;
  }

  /** Failed nodes in log order, this batch's last. */
  *#failures(): Generator<string> {
    yield* this.state.failed;
    yield* this.#failed;
  }

  #firstByScope: Map<string | undefined, string> | undefined;

  /** The first failed node (in log order) whose failure is the scope's own (`undefined`: the run's canvas proper). */
  firstFailedIn(scope: string | undefined): string | undefined {
    if (this.state.failed.length === 0 && this.#failed.length === 0) return undefined;
    if (!this.#firstByScope) {
      // Once per batch (reset by a failure): a `collect` header of many failed members reads it per member.
      this.#firstByScope = new Map();
      for (const id of this.#failures()) {
        const s = this.#node(id).scope;
        if (!this.#firstByScope.has(s)) this.#firstByScope.set(s, id);
      }
    }
    return this.#firstByScope.get(scope);
  }

  #move(id: string, next: NodeStatus): void {
    const prev = this.status(id);
    this.active += Number(next === 'ready' || next === 'running') - Number(prev === 'ready' || prev === 'running');
    this.#status.set(id, next);
    if (isFinished(next) && !isFinished(prev)) for (const reader of this.index.settles.get(id) ?? []) this.#countDown(reader);
  }

  #countDown(id: string): void {
    this.#remaining ??= new Map();
    this.#remaining.set(id, (this.#remaining.get(id) ?? this.state.nodes.get(id)!.remaining) - 1);
    this.#counted.push(id);
  }

  succeed(id: string, attempt: number, value: Json, expired?: true): void {
    this.events.push({ type: 'NodeSucceeded', at: this.at, nodeId: id, attempt, result: value, ...(expired ? { expired } : {}) });
    this.#results.set(id, value);
    for (const d of this.index.dependents.get(id) ?? []) this.#countDown(d);
    this.#move(id, 'succeeded');
  }

  fail(id: string, attempt: number, error: TaskErrorInfo): void {
    this.events.push({ type: 'NodeFailed', at: this.at, nodeId: id, attempt, error });
    (this.#errors ??= new Map()).set(id, error);
    this.#failed.push(id);
    this.#firstByScope = undefined;
    this.#move(id, 'failed');
  }

  /** How `collect` members evaluate now: `{ ok: true, value }`, or the first failure their scope holds. */
  env(): EvalEnv {
    // Without scopes a DAG has no `collect` member to evaluate (most runs): no closure to make.
    if (this.index.scopes.size === 0) return noMembers;
    const member = (m: CollectMember): Json => {
      if (inputDeps(m.value).refs.every((id) => this.status(id) === 'succeeded')) return { ok: true, value: evalExpr(m.value, this.result, { member }) };
      const failed = this.firstFailedIn(m.scope);
      const error = failed !== undefined ? (this.#errors?.get(failed) ?? this.state.nodes.get(failed)?.error) : undefined;
      return { ok: false, error: error ? errorBrief(error) : { name: 'Skipped', message: `member ${m.scope} did not run to its end` } };
    };
    return { member };
  }

  #ready(node: DagNode, env: EvalEnv): void {
    this.events.push(readyEvent(node, this.at, argsFor(node, this.result, this.state.argsOverride, env)));
    this.#move(node.id, 'ready');
  }

  /** Readies the nodes whose waiting count reached zero in this batch, in the order they were counted down. */
  readyCounted(): void {
    if (this.#counted.length === 0) return;
    const seen = new Set<string>();
    for (const id of this.#counted) {
      if (seen.has(id)) continue;
      seen.add(id);
      if (this.status(id) === 'pending' && (this.#remaining?.get(id) ?? 1) === 0) this.#ready(this.#node(id), this.env());
    }
    this.#counted.length = 0;
  }

  /** Readies the `linkError` callbacks a node's failure triggers (each once: the first failure of its canvas). */
  fireErrbacks(node: DagNode, error: TaskErrorInfo): void {
    const scopes = this.index.triggers.get(node.id);
    if (!scopes) return;
    const info: Json = { runId: this.state.runId, nodeId: node.id, task: node.task, error: errorBrief(error) };
    const env: EvalEnv = { ...this.env(), failure: () => info };
    for (const scope of scopes) {
      for (const id of this.index.triggered.get(scope) ?? []) {
        // Waiting for nothing but the failure (a callback already run is not run again).
        if (this.status(id) === 'pending' && (this.#remaining?.get(id) ?? this.state.nodes.get(id)!.remaining) === 1) this.#ready(this.#node(id), env);
      }
    }
  }

  /** A `failFast` member failed: every unfinished node of its scope stops now (callbacks excepted). */
  abort(scope: string | undefined, reason: string): void {
    const ids = domainOf(this.index, scope).filter((id) => {
      const s = this.status(id);
      return s === 'pending' || s === 'ready' || s === 'running';
    });
    if (ids.length === 0) return;
    this.events.push({ type: 'NodesAborted', at: this.at, nodeIds: ids, reason });
    for (const id of ids) this.#move(id, this.status(id) === 'running' ? 'cancelled' : 'skipped');
  }

  /** Parts of the run cancelled by request: unfinished `ids` stop now (NodesAborted, byRequest). */
  cancelNodes(ids: readonly string[], reason: string, terminate: boolean): void {
    this.events.push({ type: 'NodesAborted', at: this.at, nodeIds: ids, reason, byRequest: true, ...(terminate ? { terminate: true as const } : {}) });
    for (const id of ids) this.#move(id, this.status(id) === 'running' ? 'cancelled' : 'skipped');
  }

  /**
   * A `collect` member that failed and has nothing left ready or running is over: what still waits
   * in it never runs, so it is skipped now, and the chord's body can count the member as finished.
   */
  settleMember(scope: string | undefined): void {
    if (scope === undefined || this.index.scopes.get(scope)?.kind !== 'member') return;
    const pending: string[] = [];
    for (const id of this.index.domains.get(scope) ?? []) {
      const s = this.status(id);
      if (s === 'ready' || s === 'running') return;
      if (s === 'pending') pending.push(id);
    }
    if (pending.length === 0) return;
    const failed = this.firstFailedIn(scope);
    if (failed === undefined) return;
    this.events.push({ type: 'NodesSkipped', at: this.at, nodeIds: pending, reason: `upstream node ${failed} failed` });
    for (const id of pending) this.#move(id, 'skipped');
  }

  /**
   * Nothing is ready or running: the run ends. What still waits is skipped; the run fails with the
   * first failure of its canvas proper (callbacks' and `collect` members' failures do not count),
   * else it succeeds with the canvas's result.
   */
  end(): void {
    const fatal = this.firstFailedIn(undefined);
    const first = fatal ?? this.state.failed[0] ?? this.#failed[0];
    const proper: string[] = [];
    const callbacks: string[] = [];
    const scoped = this.index.scopes.size > 0;
    for (const node of this.index.dag.nodes) {
      if (this.status(node.id) !== 'pending') continue;
      (scoped && inCallback(this.index, node) ? callbacks : proper).push(node.id);
    }
    const upstream = fatal ?? first;
    if (proper.length > 0) {
      this.events.push({ type: 'NodesSkipped', at: this.at, nodeIds: proper, reason: upstream !== undefined ? `upstream node ${upstream} failed` : 'the run ended before they became ready' });
    }
    if (callbacks.length > 0) {
      this.events.push({ type: 'NodesSkipped', at: this.at, nodeIds: callbacks, reason: 'callbacks not run: what they wait for (their canvas succeeding, or failing for linkError) did not happen' });
    }
    if (fatal === undefined) {
      // Nothing failed, but part of the canvas proper was cancelled by request: the run is cancelled (resumable).
      const cut = this.index.dag.nodes.find((n) => n.scope === undefined && !inCallback(this.index, n) && this.status(n.id) !== 'succeeded');
      if (cut !== undefined) {
        this.events.push({ type: 'WorkflowCancelled', at: this.at, reason: `part of the run was cancelled (node ${cut.id} did not run to its end)`, nodeIds: [], partial: true });
        return;
      }
      this.events.push({ type: 'WorkflowSucceeded', at: this.at, result: evalExpr(this.index.dag.result, this.result, this.env()) });
      return;
    }
    const error = this.#errors?.get(fatal) ?? this.state.nodes.get(fatal)!.error!;
    this.events.push({ type: 'WorkflowFailed', at: this.at, nodeId: fatal, task: this.#node(fatal).task, error });
  }
}

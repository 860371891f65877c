import { exprRefs, inputDeps, type Dag, type DagNode, type DagScope } from '../canvas/dag.ts';
import { LovageError } from '../errors.ts';
import { isFinished, type NodeStatus } from './lifecycle.ts';

/** The DAG with the indexes the fold and `decide` need; built once per run, never changed. */
export interface DagIndex {
  readonly dag: Dag;
  readonly byId: ReadonlyMap<string, DagNode>;
  /** The nodes waiting for a node's result: its success makes their `remaining` drop. */
  readonly dependents: ReadonlyMap<string, readonly string[]>;
  /** What each node waits for at submit: results, `collect` member nodes, a `linkError` failure. */
  readonly depCount: ReadonlyMap<string, number>;
  /** The nodes waiting for a node to finish, whatever way (the readers of a `collect` header it is in). */
  readonly settles: ReadonlyMap<string, readonly string[]>;
  /** The `linkError` scopes a node's failure triggers. */
  readonly triggers: ReadonlyMap<string, readonly string[]>;
  /** The nodes a `linkError` scope's trigger makes ready (their input holds its `failure`). */
  readonly triggered: ReadonlyMap<string, readonly string[]>;
  readonly scopes: ReadonlyMap<string, DagScope>;
  /** Per scope, its nodes: those in it and in `collect` members inside it (callbacks inside excluded). */
  readonly domains: ReadonlyMap<string, readonly string[]>;
}

const none: ReadonlyMap<string, readonly string[]> = new Map();
const noScopes: ReadonlyMap<string, DagScope> = new Map();

function push(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Throws CORRUPT_LOG unless `dep` is a node of the DAG (a module function: no closure per run). */
function known(byId: ReadonlyMap<string, DagNode>, node: DagNode, dep: string): void {
  if (!byId.has(dep)) throw new LovageError('CORRUPT_LOG', `node ${node.id} reads unknown node ${dep}`);
}

/** Indexes a DAG; a DAG without scopes (no callbacks, no `collect` chords) takes the short way. */
export function indexDag(dag: Dag): DagIndex {
  const byId = new Map<string, DagNode>();
  const dependents = new Map<string, string[]>();
  const depCount = new Map<string, number>();
  for (const node of dag.nodes) byId.set(node.id, node);
  if (!dag.scopes?.length) {
    for (const node of dag.nodes) {
      const deps = exprRefs(node.input);
      depCount.set(node.id, deps.length);
      for (const dep of deps) {
        known(byId, node, dep);
        push(dependents, dep, node.id);
      }
    }
    return { dag, byId, dependents, depCount, settles: none, triggers: none, triggered: none, scopes: noScopes, domains: none };
  }
  const scopes = new Map<string, DagScope>();
  for (const s of dag.scopes) {
    if (s.parent !== undefined && !scopes.has(s.parent)) throw new LovageError('CORRUPT_LOG', `scope ${s.id} names unknown parent scope ${s.parent}`);
    scopes.set(s.id, s);
  }
  const domains = new Map<string, string[]>();
  for (const node of dag.nodes) {
    for (let s = node.scope; s !== undefined; ) {
      const scope = scopes.get(s);
      if (!scope) throw new LovageError('CORRUPT_LOG', `node ${node.id} names unknown scope ${s}`);
      push(domains, s, node.id);
      if (scope.kind !== 'member') break;
      s = scope.parent;
    }
  }
  const settles = new Map<string, string[]>();
  const triggers = new Map<string, string[]>();
  const triggered = new Map<string, string[]>();
  for (const s of dag.scopes) for (const source of s.on ?? []) push(triggers, source, s.id);
  for (const node of dag.nodes) {
    const deps = inputDeps(node.input);
    let count = deps.refs.length + deps.failures.length;
    for (const dep of deps.refs) {
      known(byId, node, dep);
      push(dependents, dep, node.id);
    }
    for (const scope of deps.collect) {
      if (scopes.get(scope)?.kind !== 'member') throw new LovageError('CORRUPT_LOG', `node ${node.id} collects unknown member scope ${scope}`);
      for (const dep of domains.get(scope) ?? []) {
        push(settles, dep, node.id);
        count++;
      }
    }
    for (const scope of deps.failures) {
      if (scopes.get(scope)?.kind !== 'linkError') throw new LovageError('CORRUPT_LOG', `node ${node.id} handles the failures of unknown scope ${scope}`);
      push(triggered, scope, node.id);
    }
    depCount.set(node.id, count);
  }
  return { dag, byId, dependents, depCount, settles, triggers, triggered, scopes, domains };
}

/** Whether a node belongs to a callback (`link` / `linkError`) rather than to the run's canvas proper. */
export function inCallback(index: DagIndex, node: DagNode): boolean {
  for (let s = node.scope; s !== undefined; ) {
    const scope = index.scopes.get(s);
    if (!scope || scope.kind !== 'member') return true;
    s = scope.parent;
  }
  return false;
}

/** The nodes of a scope (`undefined`: the run's canvas proper, callbacks excluded), in DAG order. */
export function domainOf(index: DagIndex, scope: string | undefined): readonly string[] {
  if (scope !== undefined) return index.domains.get(scope) ?? [];
  return index.dag.nodes.filter((n) => !inCallback(index, n)).map((n) => n.id);
}

/** The nodes whose end a node's `collect` input waits for. */
export function settleDeps(index: DagIndex, node: DagNode): string[] {
  return inputDeps(node.input).collect.flatMap((scope) => index.domains.get(scope) ?? []);
}

/** What a node still waits for, given the nodes' statuses (after a resume). */
export function remainingOf(index: DagIndex, node: DagNode, statusOf: (id: string) => NodeStatus | undefined): number {
  const deps = inputDeps(node.input);
  let n = deps.failures.length;
  for (const dep of deps.refs) if (statusOf(dep) !== 'succeeded') n++;
  for (const dep of settleDeps(index, node)) {
    const s = statusOf(dep);
    if (s === undefined || !isFinished(s)) n++;
  }
  return n;
}

import { shortPath } from '../canvas/json.ts';
import { preview } from '../errors.ts';

// What the fold, `decide` and `evalExpr` rely on in a DAG beyond its fields' kinds (event-fields.ts):
// node and scope ids unique, every expression of the grammar in canvas/dag.ts (`ref` | `list` + `after`
// | `collect` + `after` | `failure`), every id they name known, nothing waiting for itself. `compile`
// makes only such DAGs; a DAG from elsewhere (an imported export) is checked against this first, else
// evalExpr throws a TypeError when the run ends (a result of `{}`) and the run never ends.

/**
 * How deep an expression may nest: six levels per level of the deepest canvas compile allows (maxDepth
 * 256; compiled canvases reach about three per level). evalExpr and inputDeps recurse once per level, so
 * this keeps them well off the stack's end.
 */
export const MAX_EXPR_DEPTH = 1536;

const EXPRESSION = 'an expression: { ref } naming a node, { list: [...], after? }, { collect: [{ scope, value }], after? } or { failure } naming a linkError scope';
const FORMS: ReadonlyMap<string, readonly string[]> = new Map([
  ['ref', ['ref']],
  ['failure', ['failure']],
  ['list', ['list', 'after']],
  ['collect', ['collect', 'after']],
]);
const SCOPE_KINDS: readonly unknown[] = ['link', 'linkError', 'member'];

type Obj = Readonly<Record<string, unknown>>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An expression still to check, with the way to it (built into a path only for the message). */
interface Todo {
  readonly expr: unknown;
  readonly key: string;
  readonly up: Todo | undefined;
  readonly depth: number;
}

function pathOf(todo: Todo, last?: string): string {
  const parts: string[] = last === undefined ? [] : [last];
  for (let t: Todo | undefined = todo; t !== undefined; t = t.up) parts.push(t.key);
  return shortPath(parts.reverse());
}

const wrong = (path: string, value: unknown, allowed: string): string => `WorkflowSubmitted ${path} is ${preview(value)}; allowed is ${allowed}`;

/**
 * What is wrong with a DAG whose fields have their kinds (nodes with id, task, args, immutable, input,
 * queue, priority; result an object), or undefined when nothing is. Names the path of the bad part.
 * Walks without recursion: a valid DAG may be long (10,000 empty groups in a chain) or deep.
 *
 * @example
 * dagError({ nodes: [], result: {} }) // 'WorkflowSubmitted dag.result is {}; allowed is an expression: ...'
 */
export function dagError(dag: { readonly nodes: readonly Obj[]; readonly result: unknown; readonly scopes?: unknown }): string | undefined {
  const position = new Map<string, number>();
  for (let i = 0; i < dag.nodes.length; i++) {
    const id = dag.nodes[i]!['id'] as string;
    if (position.has(id)) return wrong(`dag.nodes[${i}].id`, id, 'an id no other node has');
    position.set(id, i);
  }
  const scopes = new Map<string, Obj>();
  if (dag.scopes !== undefined) {
    if (!Array.isArray(dag.scopes)) return wrong('dag.scopes', dag.scopes, 'an array of scopes { id, kind, parent?, on? }');
    for (let i = 0; i < dag.scopes.length; i++) {
      const s: unknown = dag.scopes[i];
      const at = `dag.scopes[${i}]`;
      if (!isObject(s) || typeof s['id'] !== 'string' || s['id'] === '') return wrong(at, s, 'a scope { id, kind, parent?, on? } with a non-empty string id');
      if (scopes.has(s['id'])) return wrong(`${at}.id`, s['id'], 'an id no other scope has');
      if (!SCOPE_KINDS.includes(s['kind'])) return wrong(`${at}.kind`, s['kind'], '"link", "linkError" or "member"');
      if (s['parent'] !== undefined && !scopes.has(s['parent'] as string)) return wrong(`${at}.parent`, s['parent'], 'the id of a scope listed before it');
      const on = s['on'];
      if (on !== undefined) {
        if (!Array.isArray(on)) return wrong(`${at}.on`, on, 'an array of node ids');
        for (let k = 0; k < on.length; k++) if (!position.has(on[k] as string)) return wrong(`${at}.on[${k}]`, on[k], 'the id of a node of the DAG');
      }
      scopes.set(s['id'], s);
    }
  }
  // The last node each scope waits for: a member scope's nodes (for `collect`), a linkError's sources.
  const lastOf = new Map<string, number>();
  for (let i = 0; i < dag.nodes.length; i++) {
    const n = dag.nodes[i]!;
    for (const field of ['scope', 'failFast'] as const) {
      if (n[field] !== undefined && typeof n[field] !== 'string') return wrong(`dag.nodes[${i}].${field}`, n[field], 'a string');
    }
    if (n['options'] !== undefined && !isObject(n['options'])) return wrong(`dag.nodes[${i}].options`, n['options'], 'an object of node options');
    // A node belongs to its scope and, through `member` scopes, to those around it (dag-index.ts domains).
    for (let s = n['scope'] as string | undefined; s !== undefined; ) {
      const scope = scopes.get(s);
      if (!scope) return wrong(`dag.nodes[${i}].scope`, n['scope'], 'the id of a scope of the DAG');
      if (scope['kind'] !== 'member') break;
      lastOf.set(s, i);
      s = scope['parent'] as string | undefined;
    }
  }
  for (const [id, s] of scopes) for (const source of (s['on'] as readonly string[] | undefined) ?? []) lastOf.set(id, Math.max(lastOf.get(id) ?? -1, position.get(source)!));
  for (let i = 0; i < dag.nodes.length; i++) {
    const input = dag.nodes[i]!['input'];
    if (input === null) continue;
    const reader = { index: i, id: dag.nodes[i]!['id'] as string };
    const why = exprError({ expr: input, key: `dag.nodes[${i}].input`, up: undefined, depth: 1 }, position, scopes, lastOf, reader);
    if (why !== undefined) return why;
  }
  return exprError({ expr: dag.result, key: 'dag.result', up: undefined, depth: 1 }, position, scopes, lastOf, undefined);
}

/**
 * What is wrong with an expression, the input of node `reader` (undefined: the run's result). A node
 * reads only nodes listed before it: compile adds a node after those it waits for, and a node that waits
 * for itself or a later node never runs.
 */
function exprError(root: Todo, position: ReadonlyMap<string, number>, scopes: ReadonlyMap<string, Obj>, lastOf: ReadonlyMap<string, number>, reader: { readonly index: number; readonly id: string } | undefined): string | undefined {
  const before = reader === undefined ? '' : ` listed before node ${reader.id}`;
  const stack: Todo[] = [root];
  while (stack.length > 0) {
    const todo = stack.pop()!;
    const e = todo.expr;
    if (todo.depth > MAX_EXPR_DEPTH) {
      return `WorkflowSubmitted ${pathOf(todo)}: an expression nested deeper than ${MAX_EXPR_DEPTH} levels; allowed is at most ${MAX_EXPR_DEPTH} (compiled canvases nest far less)`;
    }
    const keys = isObject(e) ? Object.keys(e) : [];
    const form = keys.find((k) => FORMS.has(k));
    if (form === undefined || keys.some((k) => !FORMS.get(form)!.includes(k))) return wrong(pathOf(todo), e, EXPRESSION);
    const x = e as Obj;
    const value = x[form];
    const deeper = (expr: unknown, key: string, up: Todo = todo): Todo => ({ expr, key, up, depth: todo.depth + 1 });
    if (form === 'ref') {
      const at = typeof value === 'string' ? position.get(value) : undefined;
      if (at === undefined) return wrong(pathOf(todo, '.ref'), value, 'the id of a node of the DAG');
      if (reader !== undefined && at >= reader.index) return wrong(pathOf(todo, '.ref'), value, `the id of a node${before} (a node that waits for itself or a later node never runs)`);
    } else if (form === 'failure') {
      if (typeof value !== 'string' || scopes.get(value)?.['kind'] !== 'linkError') return wrong(pathOf(todo, '.failure'), value, 'the id of a linkError scope of the DAG');
      if (reader !== undefined && (lastOf.get(value) ?? -1) >= reader.index) return wrong(pathOf(todo, '.failure'), value, `a linkError scope whose sources are all${before}`);
    } else {
      if (!Array.isArray(value)) return wrong(pathOf(todo, `.${form}`), value, form === 'list' ? 'an array of expressions' : 'an array of collect members { scope, value }');
      if (x['after'] !== undefined) stack.push(deeper(x['after'], '.after'));
      const list: Todo = { expr: value, key: `.${form}`, up: todo, depth: todo.depth };
      for (let k = value.length - 1; k >= 0; k--) {
        const item: unknown = value[k];
        if (form === 'list') {
          stack.push(deeper(item, `[${k}]`, list));
          continue;
        }
        const member: Todo = { expr: item, key: `[${k}]`, up: list, depth: todo.depth };
        if (!isObject(item) || !('scope' in item) || !('value' in item) || Object.keys(item).length !== 2) return wrong(pathOf(member), item, 'a collect member { scope, value }');
        const scope = item['scope'];
        if (typeof scope !== 'string' || scopes.get(scope)?.['kind'] !== 'member') return wrong(pathOf(member, '.scope'), scope, 'the id of a member scope of the DAG');
        if (reader !== undefined && (lastOf.get(scope) ?? -1) >= reader.index) return wrong(pathOf(member, '.scope'), scope, `a member scope whose nodes are all${before}`);
        stack.push(deeper(item['value'], '.value', member));
      }
    }
  }
  return undefined;
}

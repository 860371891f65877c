import { LovageError, preview } from '../errors.ts';
import type { Dag, DagNode, DagScope, Expr } from './dag.ts';
import { assertJson, type Json } from './json.ts';
import { resolveLimits, type CompileLimits } from './limits.ts';
import { nodeOptions } from './options.ts';
import type { CallbackData, CanvasData, ChordData, SignatureOptions } from './types.ts';

export { defaultLimits, resolveLimits, type CompileLimits } from './limits.ts';

/** What compile needs to know of a task: its default queue and priority; `undefined` if unknown. */
export type TaskResolver = (name: string) => { readonly queue: string; readonly priority: number } | undefined;

export interface CompileOptions {
  readonly limits?: Partial<CompileLimits>;
  /** Refuses unknown task names when given; without it every name routes to `default`. */
  readonly resolveTask?: TaskResolver;
  /**
   * The submit's time (epoch ms): an `eta` or `expires` time more than 366 days after it is refused,
   * as a countdown is. It comes in as input, so compile stays pure; without it those are not bounded.
   */
  readonly now?: number;
}

/** What a task name may be. */
export const TASK_NAME = /^[A-Za-z0-9_.:\-/]{1,200}$/;
/** What a queue name may be. */
export const QUEUE_NAME = /^[A-Za-z0-9_.:\-]{1,100}$/;

/**
 * Compiles a canvas into a DAG: pure and deterministic, node ids name each node's place.
 * Throws a VALIDATION or LIMIT LovageError naming the path of the first bad part; nothing is written.
 *
 * @example
 * compile(chain(add.s(1, 2), mul.s(10))).nodes.map((n) => n.id) // ['0', '1']
 */
export function compile(canvas: CanvasData, options: CompileOptions = {}): Dag {
  const limits = resolveLimits(options.limits);
  const nodes: DagNode[] = [];
  const scopes: DagScope[] = [];
  const ids = new Set<string>();

  const fail = (code: 'VALIDATION' | 'LIMIT', path: string, message: string): never => {
    throw new LovageError(code, `canvas at ${path || 'root'}: ${message}`, { path });
  };

  const addNode = (path: string, task: unknown, args: unknown, immutable: boolean, opts: SignatureOptions | undefined, input: Expr | null, ctx: Ctx): Expr => {
    if (typeof task !== 'string' || !TASK_NAME.test(task)) fail('VALIDATION', path, `task name ${preview(task)} is invalid; allowed are 1-200 of A-Z a-z 0-9 _ . : - /`);
    const name = task as string;
    const known = options.resolveTask ? options.resolveTask(name) : { queue: 'default', priority: 0 };
    if (!known) fail('VALIDATION', path, `unknown task "${name}"; register it with app.task("${name}", fn) before submitting`);
    if (!Array.isArray(args)) fail('VALIDATION', path, 'args must be an array');
    assertJson(args, `canvas at ${path} (task ${name}) args`);
    const text = JSON.stringify(args);
    const size = Buffer.byteLength(text, 'utf8');
    if (size > limits.maxArgsBytes) fail('LIMIT', path, `arguments of task ${name} are ${size} bytes; the limit is maxArgsBytes = ${limits.maxArgsBytes}`);
    const queue = opts?.queue ?? known!.queue;
    if (typeof queue !== 'string' || !QUEUE_NAME.test(queue)) fail('VALIDATION', path, `queue ${preview(queue)} is invalid; allowed are 1-100 of A-Z a-z 0-9 _ . : -`);
    const priority = opts?.priority ?? known!.priority;
    if (!Number.isInteger(priority) || Math.abs(priority) > 1_000_000) fail('VALIDATION', path, `priority ${String(priority)} is invalid; allowed are integers from -1000000 to 1000000`);
    let exec: ReturnType<typeof nodeOptions>;
    try {
      exec = nodeOptions(opts as Readonly<Record<string, unknown>> | undefined, `task ${name}`, options.now);
    } catch (e) {
      fail('VALIDATION', path, (e as Error).message);
    }
    if (nodes.length >= limits.maxNodes) fail('LIMIT', path, `the run has more than maxNodes = ${limits.maxNodes} nodes (callbacks count)`);
    if (ids.has(path)) fail('VALIDATION', path, 'duplicate node id');
    ids.add(path);
    nodes.push({
      id: path, task: name, args: ownCopy(args as Json[], text), immutable, input, queue, priority, ...(exec ? { options: exec } : {}),
      ...(ctx.scope !== undefined ? { scope: ctx.scope } : {}), ...(ctx.failFast !== undefined ? { failFast: ctx.failFast } : {}),
    });
    return { ref: path };
  };

  const width = (path: string, n: number, what: string): void => {
    if (n > limits.maxGroupWidth) fail('LIMIT', path, `${what} has ${n} members; the limit is maxGroupWidth = ${limits.maxGroupWidth}`);
  };

  const at = (prefix: string, part: string | number): string => (prefix === '' ? String(part) : `${prefix}.${part}`);

  // Array methods skip holes: a hole would be a missing member, its result stored as null.
  const dense = (path: string, items: readonly unknown[], what: string): void => {
    for (let i = 0; i < items.length; i++) if (!(i in items)) fail('VALIDATION', at(path, i), `${what} has a hole at index ${i} (a sparse array); holes are refused, give every item`);
  };

  // A chain's steps, nested chains spliced flat; a nested chain with callbacks stays whole (they need its place).
  const flattenChain = (c: CanvasData, path: string, depth: number): CanvasData[] => {
    if (depth > limits.maxDepth) fail('LIMIT', path, `nesting is deeper than maxDepth = ${limits.maxDepth}`);
    if (c?.kind !== 'chain') return [c];
    if (!Array.isArray(c.steps)) fail('VALIDATION', path, 'chain steps must be an array');
    dense(path, c.steps, 'chain steps');
    return c.steps.flatMap((step) => (hasCallbacks(step) ? [step] : flattenChain(step, path, depth + 1)));
  };
  // The value of a group-like part: its members' results, ordered after `prev` even when it has none.
  const list = (members: Expr[], prev: Expr | null): Expr => (members.length === 0 && prev !== null ? { list: members, after: flatAfter(prev) } : { list: members });
  const parentOf = (ctx: Ctx) => (ctx.scope !== undefined ? { parent: ctx.scope } : {});

  /**
   * The callbacks of the canvas at `path`, whose nodes start at `start` and whose value is `value`:
   * each becomes a scope of its own. A `linkError` runs on the first failure among `own` scopes' nodes.
   */
  const callbacks = (c: CanvasData, path: string, value: Expr, start: number, depth: number, ctx: Ctx, own: readonly (string | undefined)[] = [ctx.scope]): Expr => {
    const { links: link, linkErrors: linkError } = c as CallbackData;
    if (link === undefined && linkError === undefined) return value;
    for (const [key, cbs] of [['links', link], ['linkErrors', linkError]] as const) {
      if (cbs !== undefined && !Array.isArray(cbs)) fail('VALIDATION', path, `${key} must be an array of canvases (signatures, chain, group, chord, map, chunks), got ${typeof cbs}`);
    }
    const sources = linkError?.length ? nodes.slice(start).filter((n) => own.includes(n.scope)).map((n) => n.id) : [];
    (link ?? []).forEach((cb, k) => {
      const id = at(path, `link.${k}`);
      scopes.push({ id, kind: 'link', ...parentOf(ctx) });
      visit(cb, id, value, depth + 1, { scope: id });
    });
    (linkError ?? []).forEach((eb, k) => {
      const id = at(path, `linkError.${k}`);
      scopes.push({ id, kind: 'linkError', ...parentOf(ctx), on: sources });
      visit(eb, id, { failure: id }, depth + 1, { scope: id });
    });
    return value;
  };

  const visit = (c: CanvasData, path: string, prev: Expr | null, depth: number, ctx: Ctx): Expr => {
    if (depth > limits.maxDepth) fail('LIMIT', path, `nesting is deeper than maxDepth = ${limits.maxDepth}`);
    if (typeof c !== 'object' || c === null) return fail('VALIDATION', path, `expected a canvas, got ${c === null ? 'null' : typeof c}`);
    const start = nodes.length;
    let value: Expr;
    switch (c.kind) {
      case 'signature':
        value = addNode(path, c.task, c.args, c.immutable === true, c.options, prev, ctx);
        break;
      case 'chain': {
        const steps = flattenChain(c, path, depth);
        if (steps.length === 0) fail('VALIDATION', path, 'a chain needs at least one step');
        let out = prev;
        steps.forEach((step, i) => { out = visit(step, at(path, i), out, depth + 1, ctx); });
        value = out!;
        break;
      }
      case 'group':
        if (!Array.isArray(c.members)) fail('VALIDATION', path, 'group members must be an array');
        dense(path, c.members, 'group members');
        width(path, c.members.length, 'group');
        value = list(c.members.map((m, i) => visit(m, at(path, i), prev, depth + 1, ctx)), prev);
        break;
      case 'chord':
        value = visit(c.body, at(path, 'body'), chordHeader(c, path, prev, depth, ctx), depth + 1, ctx);
        break;
      case 'map': {
        if (!Array.isArray(c.argLists)) fail('VALIDATION', path, 'map items must be an array');
        dense(path, c.argLists, 'map items');
        width(path, c.argLists.length, 'map');
        value = list(c.argLists.map((args, i) => addNode(at(path, i), c.task, args, true, c.options, prev, ctx)), prev);
        break;
      }
      case 'chunks': {
        if (!Array.isArray(c.argLists)) fail('VALIDATION', path, 'chunks argument lists must be an array');
        dense(path, c.argLists, 'chunks argument lists');
        if (!Number.isInteger(c.size) || c.size < 1) fail('VALIDATION', path, `chunk size ${String(c.size)} is invalid; allowed are integers ≥ 1`);
        width(path, c.argLists.length, 'chunks');
        const chunks: Expr[] = [];
        for (let start = 0, k = 0; start < c.argLists.length; start += c.size, k++) {
          const slice = c.argLists.slice(start, start + c.size);
          chunks.push({ list: slice.map((args, j) => addNode(at(path, `${k}.${j}`), c.task, args, true, c.options, prev, ctx)) });
        }
        value = list(chunks, prev);
        break;
      }
      default:
        return fail('VALIDATION', path, `unknown canvas kind ${preview((c as { kind?: unknown }).kind)}; allowed are signature, chain, group, chord, map, chunks`);
    }
    return callbacks(c, path, value, start, depth, ctx);
  };

  /** A chord's header value: members in the chord's scope (`failFast`: marked), or one scope each (`collect`). */
  const chordHeader = (c: ChordData, path: string, prev: Expr | null, depth: number, ctx: Ctx): Expr => {
    const mode = c.onMemberFailure ?? 'waitAll';
    if (!MODES.includes(mode)) fail('VALIDATION', path, `onMemberFailure ${preview(mode)} is invalid; allowed are "waitAll" (the default), "failFast" and "collect"`);
    if (c.header?.kind !== 'group') fail('VALIDATION', path, 'chord header must be a group');
    if (!Array.isArray(c.header.members)) fail('VALIDATION', at(path, 'header'), 'group members must be an array');
    dense(at(path, 'header'), c.header.members, 'chord header members');
    width(path, c.header.members.length, 'chord header');
    const start = nodes.length;
    const headerPath = at(path, 'header');
    if (mode !== 'collect') {
      const inner: Ctx = mode === 'failFast' ? { ...ctx, failFast: path } : ctx;
      const header = list(c.header.members.map((m, i) => visit(m, at(headerPath, i), prev, depth + 1, inner)), prev);
      return callbacks(c.header, headerPath, header, start, depth + 1, ctx);
    }
    const members = c.header.members.map((m, i) => {
      const scope = at(headerPath, i);
      scopes.push({ id: scope, kind: 'member', ...parentOf(ctx) });
      return { scope, value: visit(m, scope, prev, depth + 1, { scope }) };
    });
    // The members' results are read whatever way they end, so `after` keeps the wait for the steps before.
    const header: Expr = prev !== null ? { collect: members, after: flatAfter(prev) } : { collect: members };
    return callbacks(c.header, headerPath, header, start, depth + 1, ctx, members.map((m) => m.scope));
  };

  const root = canvas?.kind === 'chain' ? canvas : ({ kind: 'chain', steps: [canvas] } as const);
  const result = visit(root, '', null, 0, {});
  return { nodes, result, ...(scopes.length > 0 ? { scopes } : {}) };
}

/** Where a node is compiled: its failure scope and the `failFast` chord whose header holds it. */
interface Ctx {
  readonly scope?: string;
  readonly failFast?: string;
}

const MODES: readonly unknown[] = ['waitAll', 'failFast', 'collect'];

/**
 * What an `after` waits for, kept flat: the dependencies of `prev` (its refs, `failure`s and `collect`
 * members, in first-seen order), not its shape. Each empty group, map or chunks in a chain waits for
 * the value before it; kept whole, a chain of 10,000 of them nested 10,000 deep (and every walk of the
 * expression overflowed the stack). Flat, an expression nests no deeper than the canvas does.
 */
function flatAfter(prev: Expr): Expr {
  if ('ref' in prev || 'failure' in prev || ('list' in prev && prev.after === undefined && prev.list.every((e) => 'ref' in e))) return prev;
  const leaves: Expr[] = [];
  const refs = new Set<string>();
  const stack: Expr[] = [prev];
  while (stack.length > 0) {
    const e = stack.pop()!;
    if ('ref' in e) {
      if (!refs.has(e.ref)) leaves.push(e);
      refs.add(e.ref);
    } else if ('failure' in e) {
      leaves.push(e);
    } else {
      // What a collect waits for is its members' scopes (inputDeps); an `after` is never evaluated, so
      // their values are left out: kept, they nested every level before (nested collect chords doubled
      // the DAG at each level).
      if ('collect' in e) leaves.push({ collect: e.collect.map((m) => ({ scope: m.scope, value: { list: [] } })) });
      if (e.after) stack.push(e.after);
      if ('list' in e) for (let i = e.list.length - 1; i >= 0; i--) stack.push(e.list[i]!);
    }
  }
  return { list: leaves };
}

/**
 * The DAG's own copy of a node's arguments (`text` is their JSON): a caller who changes an argument
 * object after submitting must not change what a later step receives, nor what the log says it
 * receives. Arguments of primitives only (the common case) are copied without a parse. `-0` becomes
 * `0`, as on every store that serializes.
 */
function ownCopy(args: readonly Json[], text: string): Json[] {
  for (const a of args) if ((typeof a === 'object' && a !== null) || Object.is(a, -0)) return JSON.parse(text) as Json[];
  return args.slice();
}

/** Whether a canvas carries callbacks (then a chain keeps its place instead of splicing into its parent). */
export function hasCallbacks(c: unknown): boolean {
  return typeof c === 'object' && c !== null && ((c as CallbackData).links !== undefined || (c as CallbackData).linkErrors !== undefined);
}

import { LovageError } from '../errors.ts';
import type { Accepting, AnyCanvas, Canvas, CanvasData, LinkErrorInfo, OutOf, SignatureOptions } from './types.ts';

/** Options of a submit (`applyAsync`). */
export interface ApplyOptions {
  /**
   * Submit inside the caller's own open transaction, so the run exists if and only if that
   * transaction commits (a store that cannot join it refuses with UNSUPPORTED). Postgres: a kysely
   * `Transaction` or a `pg` client inside `BEGIN` (anything else, a pool or a failed transaction
   * included, is refused with VALIDATION); the append runs in a subtransaction of its own, so one
   * that fails leaves the transaction usable, and it is refused if the transaction has ended.
   */
  readonly transaction?: unknown;
  /** Run id to use instead of a generated one (letters, digits, `_`, `-`, `.`, `:`; at most 128). */
  readonly runId?: string;
  /**
   * Submit at most once per key: a second submit with the same key returns the first run's handle
   * and writes nothing (whatever its canvas). The run id is derived from the key (`idem-…`).
   */
  readonly idempotencyKey?: string;
}

/** The status of a run as the log tells it. */
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'quarantined';

/**
 * A handle on a submitted run.
 *
 * @example
 * const run = await chain(add.s(1, 2), mul.s(10)).applyAsync()
 * console.log(run.id, await run.get({ timeoutMs: 5000 })) // 30
 */
export interface RunHandle<T = unknown> {
  /** The run id. */
  readonly id: string;
  /**
   * Resolves to the run's result; rejects with a LovageError: TASK_FAILED naming the failed node, task and
   * error, CANCELLED, TIMEOUT, NOT_FOUND (no such run) or CORRUPT_LOG (a quarantined run).
   */
  get(options?: { timeoutMs?: number }): Promise<T>;
  /** The run's status now. */
  status(): Promise<RunStatus>;
}

/** What submits a canvas: the app that made its signatures. */
export interface Submitter {
  submit(canvas: CanvasData, options?: ApplyOptions): Promise<RunHandle<unknown>>;
}

/** Where a signature keeps the app that made it (non-enumerable, never serialized). */
export const SUBMITTER: unique symbol = Symbol.for('lovage.submitter') as never;

/** One callback canvas or several, for `applyAsync(..., { link, linkError })`. */
type OneOrMany<C> = C | readonly C[];

/**
 * Callbacks given at submit, like Celery's `apply_async(link=..., link_error=...)`: the same as
 * `canvas.link(cb)` / `canvas.linkError(eb)` before submitting.
 */
export interface CallbackOptions<Out> {
  /** Runs when the canvas succeeds, with its result prepended (unless immutable). */
  readonly link?: OneOrMany<Canvas<Out, unknown>>;
  /** Runs once when the canvas fails, with a {@link LinkErrorInfo} prepended (unless immutable). */
  readonly linkError?: OneOrMany<Canvas<LinkErrorInfo, unknown>>;
}

/** Methods every canvas value has (non-enumerable: the canvas stays plain JSON data). */
export interface Submittable<Out> {
  /** Submits the canvas through the app of its signatures (with callbacks, if given). */
  applyAsync(options?: ApplyOptions & CallbackOptions<Out>): Promise<RunHandle<Out>>;
  /**
   * A copy that also runs `callback` when this canvas succeeds, with its result prepended (unless
   * immutable), like Celery's `sig.link(cb)`. The callback is a node of the run (id `<place>.link.<k>`);
   * its outcome never changes the run's result or status. On a chain it follows the last step, on a
   * group or chord it gets the whole result (Celery: the first member / the body).
   *
   * @example
   * const run = await add.s(1, 2).link(notify.s('sum')).applyAsync() // notify(3, 'sum'); the run's result is 3
   */
  link<C extends AnyCanvas>(callback: C & Accepting<C, Out>): this;
  /**
   * A copy that also runs `errback` once when this canvas fails (its first failed node), with
   * `{ runId, nodeId, task, error: { name, message } }` prepended (unless immutable), like Celery's
   * `sig.link_error(eb)`. The run still fails with the original error once the errback has run.
   *
   * @example
   * const run = await chain(fetch.s(url), parse.s()).linkError(alert.s()).applyAsync()
   */
  linkError<C extends AnyCanvas>(errback: C & Accepting<C, LinkErrorInfo>): this;
}

const KINDS = ['signature', 'chain', 'group', 'chord', 'map', 'chunks'];

/** Throws VALIDATION naming `where` unless `value` is a canvas. */
export function assertCanvas(value: unknown, where: string): asserts value is CanvasData {
  const kind = (value as { kind?: unknown } | null)?.kind;
  if (typeof value !== 'object' || value === null || !KINDS.includes(kind as string)) {
    throw new LovageError('VALIDATION', `${where} is not a canvas (got ${typeof value === 'object' ? JSON.stringify(value)?.slice(0, 60) : typeof value}); allowed are signatures (task.s(...)), chain, group, chord, task.map/starmap/chunks`);
  }
}

function findSubmitter(canvas: CanvasData): Submitter | undefined {
  const own = (canvas as { [SUBMITTER]?: Submitter })[SUBMITTER];
  if (own) return own;
  switch (canvas.kind) {
    case 'chain':
      for (const s of canvas.steps) { const f = findSubmitter(s); if (f) return f; }
      break;
    case 'group':
      for (const m of canvas.members) { const f = findSubmitter(m); if (f) return f; }
      break;
    case 'chord': {
      const f = findSubmitter(canvas.header) ?? findSubmitter(canvas.body);
      if (f) return f;
      break;
    }
    default:
      break;
  }
  return callbackSubmitter(canvas);
}

/** A callback's app, for a canvas that has none of its own (an empty group with a link). */
function callbackSubmitter(canvas: CanvasData): Submitter | undefined {
  for (const cb of [...(canvas.links ?? []), ...(canvas.linkErrors ?? [])]) { const f = findSubmitter(cb); if (f) return f; }
  return undefined;
}

const many = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** A copy of `canvas` with `patch` over its data; it keeps its app and its methods. */
function derive<C extends CanvasData>(canvas: C, patch: Partial<CanvasData>): C {
  return submittable({ ...canvas, ...patch } as C & AnyCanvas, (canvas as { [SUBMITTER]?: Submitter })[SUBMITTER]);
}

/** `canvas` with more callbacks, each checked to be a canvas (`where` names the call in errors). */
function withCallbacks<C extends CanvasData>(canvas: C, link: unknown[], linkError: unknown[], where: { link: string; linkError: string }): C {
  if (link.length === 0 && linkError.length === 0) return canvas;
  link.forEach((cb, i) => assertCanvas(cb, `${where.link}${link.length > 1 ? ` ${i}` : ''}`));
  linkError.forEach((eb, i) => assertCanvas(eb, `${where.linkError}${linkError.length > 1 ? ` ${i}` : ''}`));
  return derive(canvas, {
    ...(link.length ? { links: Object.freeze([...(canvas.links ?? []), ...(link as CanvasData[])]) } : {}),
    ...(linkError.length ? { linkErrors: Object.freeze([...(canvas.linkErrors ?? []), ...(linkError as CanvasData[])]) } : {}),
  });
}

/** `this` of a canvas method: a method taken off its canvas (`const f = sig.applyAsync`) has none. */
function self(value: unknown, method: string): CanvasData {
  if (typeof value !== 'object' || value === null || !KINDS.includes((value as { kind?: unknown }).kind as string)) {
    throw new LovageError('VALIDATION', `${method}() was called without its canvas; call it on the canvas (sig.${method}(...)), or bind it (sig.${method}.bind(sig))`);
  }
  return value as CanvasData;
}

// The methods live on shared prototypes, not on each value: a 10k-member group made 40k closures
// (each a defineProperty under tsx) and took ~10 µs a signature; now one object and one freeze.
// `this` is the canvas the method is called on.
const canvasMethods: PropertyDescriptorMap = {
  applyAsync: {
    value(this: CanvasData, options: ApplyOptions & { link?: unknown; linkError?: unknown } = {}) {
      const { link, linkError, ...submit } = options;
      let target: CanvasData;
      try {
        target = withCallbacks(self(this, 'applyAsync'), many(link), many(linkError), { link: 'applyAsync option link', linkError: 'applyAsync option linkError' });
      } catch (e) {
        return Promise.reject(e);
      }
      const submitter = findSubmitter(target);
      if (!submitter) {
        return Promise.reject(new LovageError('VALIDATION', 'this canvas has no signature made by an app task; submit it with app.submit(canvas)'));
      }
      return submitter.submit(target, submit);
    },
  },
  link: {
    value(this: CanvasData, callback: unknown) {
      const canvas = self(this, 'link');
      return withCallbacks(canvas, [callback], [], { link: `the callback of ${canvas.kind}.link()`, linkError: '' });
    },
  },
  linkError: {
    value(this: CanvasData, errback: unknown) {
      const canvas = self(this, 'linkError');
      return withCallbacks(canvas, [], [errback], { link: '', linkError: `the errback of ${canvas.kind}.linkError()` });
    },
  },
};
const signatureMethods: PropertyDescriptorMap = {
  set: {
    value(this: CanvasData & { options: SignatureOptions }, more: SignatureOptions) {
      const sig = self(this, 'set') as CanvasData & { options: SignatureOptions };
      return derive(sig, { options: Object.freeze({ ...sig.options, ...more }) } as Partial<CanvasData>);
    },
  },
};
const CANVAS = Object.create(Object.prototype, canvasMethods) as object;
const SIGNATURE = Object.create(CANVAS, signatureMethods) as object;
/** Per app (its submitter): prototypes that also hold SUBMITTER, for the values its tasks make. */
const bySubmitter = new WeakMap<Submitter, { canvas: object; signature: object }>();

function prototypeOf(kind: CanvasData['kind'], submitter: Submitter | undefined): object {
  if (!submitter) return kind === 'signature' ? SIGNATURE : CANVAS;
  let protos = bySubmitter.get(submitter);
  if (!protos) {
    const own = { [SUBMITTER]: { value: submitter } };
    protos = { canvas: Object.create(CANVAS, own) as object, signature: Object.create(SIGNATURE, own) as object };
    bySubmitter.set(submitter, protos);
  }
  return kind === 'signature' ? protos.signature : protos.canvas;
}

/**
 * A frozen canvas value with the data of `canvas` (its own properties: plain JSON) and the methods
 * (`applyAsync`, `link`, `linkError`, and `set` on a signature) and app (`submitter`, for a task's
 * signature) on its prototype.
 */
export function submittable<C extends AnyCanvas>(canvas: C, submitter?: Submitter): C & Submittable<OutOf<C>> {
  return Object.freeze(Object.assign(Object.create(prototypeOf(canvas.kind, submitter)) as object, canvas)) as C & Submittable<OutOf<C>>;
}

import { LovageError } from '../errors.ts';
import type { AnyCanvas, CanvasData, OutOf } from './types.ts';

/** Options of a submit (`applyAsync`). */
export interface ApplyOptions {
  /**
   * Submit inside the caller's own open transaction, so the run exists if and only if that
   * transaction commits (a store that cannot join it refuses with UNSUPPORTED). Postgres: a kysely
   * `Transaction` or a `pg` client inside `BEGIN`.
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
  /** Resolves to the run's result; rejects with a TASK_FAILED LovageError naming the failed node, task and error, or TIMEOUT. */
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

/** Methods every canvas value has. */
export interface Submittable<Out> {
  /** Submits the canvas through the app of its signatures. */
  applyAsync(options?: ApplyOptions): Promise<RunHandle<Out>>;
}

function findSubmitter(canvas: CanvasData): Submitter | undefined {
  const own = (canvas as { [SUBMITTER]?: Submitter })[SUBMITTER];
  if (own) return own;
  switch (canvas.kind) {
    case 'chain':
      for (const s of canvas.steps) { const f = findSubmitter(s); if (f) return f; }
      return undefined;
    case 'group':
      for (const m of canvas.members) { const f = findSubmitter(m); if (f) return f; }
      return undefined;
    case 'chord':
      return findSubmitter(canvas.header) ?? findSubmitter(canvas.body);
    default:
      return undefined;
  }
}

/** Attaches the non-enumerable `applyAsync` to a canvas value; the data stays plain JSON. */
export function submittable<C extends AnyCanvas>(canvas: C): C & Submittable<OutOf<C>> {
  Object.defineProperty(canvas, 'applyAsync', {
    enumerable: false,
    value(options?: ApplyOptions) {
      const submitter = findSubmitter(canvas);
      if (!submitter) {
        return Promise.reject(new LovageError('VALIDATION', 'this canvas has no signature made by an app task; submit it with app.submit(canvas)'));
      }
      return submitter.submit(canvas, options);
    },
  });
  return Object.freeze(canvas) as C & Submittable<OutOf<C>>;
}

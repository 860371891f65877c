import type { Json } from '../canvas/json.ts';
import type { TaskErrorInfo } from '../engine/events.ts';
import { LovageError } from '../errors.ts';

interface TaskInfo {
  readonly runId: string;
  readonly nodeId: string;
  readonly task: string;
  readonly args: readonly Json[];
  readonly attempt: number;
}

/** What each hook of `app.on(name, fn)` receives. */
export interface HookPayloads {
  /** Before a task's function is called (after the expiry and lost-lease checks). */
  taskPrerun: TaskInfo;
  /**
   * After the attempt ended and its outcome was recorded, whatever it was (`retry`: a retry is
   * scheduled). Not for an attempt whose outcome was fenced (its run cancelled, its lease lost).
   */
  taskPostrun: TaskInfo & { readonly state: 'succeeded' | 'failed' | 'retry'; readonly result?: Json; readonly error?: TaskErrorInfo; readonly durationMs: number };
  /** The attempt failed and the node's failure was recorded (not retried). Not for a fenced attempt. */
  taskFailure: TaskInfo & { readonly error: TaskErrorInfo };
  /** The attempt failed and its retry was recorded: the node runs again at `retryAt` (epoch ms, store clock). Not for a fenced attempt. */
  taskRetry: TaskInfo & { readonly error: TaskErrorInfo; readonly retryAt: number };
  /**
   * A run ended, fired once, in the process that recorded its end. Succeeded or failed: the worker's
   * process that recorded the outcome ending it, or the submitting process for a run that ends at its
   * submit (nothing to run: an empty group), unless submitted in a caller's `transaction` (it may roll
   * back: no hook). Cancelled: the process that called `runs.cancel` (or, for a run that ends cancelled
   * after a cancel of some of its nodes, the process that recorded the outcome ending it).
   */
  runFinished: { readonly runId: string };
}

/** The hook names. */
export type HookName = keyof HookPayloads;

/** Calls hooks. */
export interface HookEmitter {
  emit<K extends HookName>(name: K, payload: HookPayloads[K]): void;
  has(name: HookName): boolean;
}

const NAMES: ReadonlySet<string> = new Set<HookName>(['taskPrerun', 'taskPostrun', 'taskFailure', 'taskRetry', 'runFinished']);

/**
 * The app's hooks. Payloads hold copies of a task's args, result and error (a hook that writes to
 * them changes nothing). A hook runs synchronously in the worker's process; what it returns is ignored
 * (a returned promise is not awaited, its rejection is reported); a hook that throws is reported
 * through `report` and never changes the task's outcome.
 */
export class Hooks implements HookEmitter {
  readonly #hooks = new Map<HookName, Set<(payload: never) => unknown>>();
  constructor(private readonly report: (error: unknown) => void) {}

  on<K extends HookName>(name: K, fn: (payload: HookPayloads[K]) => unknown): () => void {
    if (!NAMES.has(name)) throw new LovageError('VALIDATION', `unknown hook ${JSON.stringify(name)}; allowed are ${[...NAMES].join(', ')}`);
    if (typeof fn !== 'function') throw new LovageError('VALIDATION', `hook ${name}: expected a function, got ${typeof fn}`);
    let set = this.#hooks.get(name);
    if (!set) this.#hooks.set(name, (set = new Set()));
    set.add(fn as (payload: never) => unknown);
    return () => set.delete(fn as (payload: never) => unknown);
  }

  has(name: HookName): boolean {
    return (this.#hooks.get(name)?.size ?? 0) > 0;
  }

  emit<K extends HookName>(name: K, payload: HookPayloads[K]): void {
    const set = this.#hooks.get(name);
    if (!set) return;
    for (const fn of set) {
      try {
        const out = fn(payload as never) as unknown;
        if (out instanceof Promise) out.catch((e: unknown) => this.report(hookError(name, e)));
      } catch (e) {
        this.report(hookError(name, e));
      }
    }
  }
}

function hookError(name: string, e: unknown): LovageError {
  return new LovageError('HOOK_FAILED', `hook ${name} threw: ${e instanceof Error ? e.message : String(e)}`);
}

// Properties of the retry rules (pure): planFailure never retries past max, and the delays follow the
// policy's backoff within its cap, with or without jitter.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RetryPolicy } from '../src/canvas/dag.ts';
import { defaultRetry, retryDelay } from '../src/canvas/options.ts';
import { NonRetryableError, planFailure, RetryRequest, type TaskDefinition } from '../src/workers/execution.ts';

const policy: fc.Arbitrary<RetryPolicy> = fc.record({
  max: fc.integer({ min: 0, max: 20 }),
  backoff: fc.constantFrom('fixed' as const, 'exponential' as const),
  delayMs: fc.integer({ min: 0, max: 10_000 }),
  factor: fc.double({ min: 1, max: 10, noNaN: true }),
  maxDelayMs: fc.integer({ min: 0, max: 600_000 }),
  jitter: fc.boolean(),
});
const def = (retry: Partial<RetryPolicy> | undefined): TaskDefinition => ({ fn: () => undefined, maxLeaseExpiries: 3, ...(retry ? { retry } : {}) });

describe('retry rules', () => {
  it('retries exactly while attempt ≤ max, never for NonRetryableError, and waits within the backoff', () => {
    fc.assert(fc.property(policy, fc.integer({ min: 1, max: 25 }), fc.double({ min: 0, max: 0.999, noNaN: true }), (p, attempt, r) => {
      const now = 1_000_000;
      const plan = planFailure(def(p), undefined, attempt, new Error('x'), now, () => r);
      expect(plan.retryAt !== undefined).toBe(attempt <= p.max);
      if (plan.retryAt !== undefined) {
        const full = Math.min(p.maxDelayMs, p.backoff === 'fixed' ? p.delayMs : p.delayMs * p.factor ** (attempt - 1));
        const waited = plan.retryAt - now;
        expect(waited).toBeGreaterThanOrEqual(0);
        expect(waited).toBeLessThanOrEqual(Math.round(full));
        if (!p.jitter) expect(waited).toBe(Math.round(full));
      }
      expect(planFailure(def(p), undefined, attempt, new NonRetryableError('no'), now).retryAt).toBeUndefined();
    }));
  });

  it('without a policy only ctx.retry retries (up to the default max), with its countdown', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 100_000 }), (attempt, countdown) => {
      expect(planFailure(def(undefined), undefined, attempt, new Error('x'), 0).retryAt).toBeUndefined();
      const plan = planFailure(def(undefined), undefined, attempt, new RetryRequest(countdown, new Error('later')), 0);
      expect(plan.retryAt).toBe(attempt <= defaultRetry.max ? countdown : undefined);
      expect((plan.error as Error).message).toBe('later');
    }));
  });

  it('a call policy overrides the task policy field by field', () => {
    fc.assert(fc.property(policy, fc.integer({ min: 0, max: 20 }), (task, max) => {
      const plan = (attempt: number) => planFailure(def(task), { retry: { max } }, attempt, new Error('x'), 0, () => 0.5);
      expect(plan(Math.max(1, max)).retryAt !== undefined).toBe(max >= 1);
      expect(plan(max + 1).retryAt).toBeUndefined();
      if (max >= 1 && !task.jitter) expect(plan(1).retryAt).toBe(retryDelay(task, 1));
    }));
  });
});

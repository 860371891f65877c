import { expect } from 'vitest';
import { LovageError, type App, type ErrorCode } from '../../src/index.ts';

/** The LovageError `f` throws or rejects with; fails the test when it succeeds or throws anything else. */
export async function refusal(f: () => unknown): Promise<LovageError> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(LovageError);
    return e as LovageError;
  }
  throw new Error('expected a LovageError, but the call succeeded');
}

/** Runs `f`, expects a refusal with `code` whose message holds every fragment, and an empty log. */
export async function expectRefused(app: App, f: () => unknown, code: ErrorCode, ...fragments: string[]): Promise<LovageError> {
  const error = await refusal(f);
  expect(error.code).toBe(code);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
  expect(await (await app.store()).readAll()).toEqual([]);
  return error;
}

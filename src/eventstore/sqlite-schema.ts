import type Database from 'better-sqlite3';
import type { WorkflowEvent } from '../engine/events.ts';
import { LovageError } from '../errors.ts';
import type { RunRecord } from './store.ts';

// The SQLite store's schema, row shapes and conversions; the store itself is sqlite.ts.

export const EXPIRED_CHECK_MS = 50;

export interface RunRow {
  run_id: string;
  status: RunRecord['status'];
  version: number | null;
  finished_version: number | null;
  quarantine_reason: string | null;
  created_at: number;
  updated_at: number;
}

export function toRecord(r: RunRow): RunRecord {
  return {
    runId: r.run_id,
    status: r.status,
    version: r.version ?? 0,
    ...(r.finished_version !== null ? { finishedVersion: r.finished_version } : {}),
    ...(r.quarantine_reason !== null ? { quarantineReason: r.quarantine_reason } : {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Task names as `|a|b|`, so `instr(tasks, '|a|')` matches a whole name. */
export function taskList(names: readonly string[]): string {
  return `|${[...new Set(names)].join('|')}|`;
}

export interface ReadyRow {
  run_key: number;
  run_id: string;
  node_id: string;
  task: string;
  args: string;
  attempts: number;
  worker: string | null;
  lease_token: string | null;
  options: string | null;
}

/** Parses a stored event; unreadable JSON quarantines the run (CORRUPT_LOG), it never crashes a reader. */
export function parseEvent(data: string, runId: string, version: number): WorkflowEvent {
  try {
    const event = JSON.parse(data) as WorkflowEvent;
    if (typeof event !== 'object' || event === null || typeof event.type !== 'string') throw new Error('not an event object');
    return event;
  } catch (e) {
    throw new LovageError('CORRUPT_LOG', `run ${runId} event ${version} is unreadable (${(e as Error).message}); the log does not fold`, { runId, version });
  }
}

export function conflict(runId: string, expected: number, why: string): LovageError {
  return new LovageError('CONCURRENCY', `run ${runId} is not at version ${expected}: ${why}`, { runId });
}

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

/** The store's prepared statements (made once per open database). */
export function prepareStatements(db: Database.Database) {
  return {
    runKey: db.prepare<[string], { run_key: number }>('SELECT run_key FROM runs WHERE run_id = ?'),
    runVersion: db.prepare<[number], { version: number | null }>('SELECT max(version) AS version FROM events WHERE run_key = ?'),
    hasVersion: db.prepare<[number, number], { one: number }>('SELECT 1 AS one FROM events WHERE run_key = ? AND version = ?'),
    insertRun: db.prepare('INSERT INTO runs (run_id, status, finished_version, tasks, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)'),
    deleteEvents: db.prepare('DELETE FROM events WHERE run_key = ?'),
    deleteRun: db.prepare('DELETE FROM runs WHERE run_key = ?'),
    setStatus: db.prepare('UPDATE runs SET status = ?, finished_version = ?, updated_at = ? WHERE run_key = ?'),
    insertEvent: db.prepare('INSERT INTO events (run_key, version, type, at, data) VALUES (?, ?, ?, ?, ?)'),
    insertReady: db.prepare('INSERT INTO ready (run_key, node_id, run_id, queue, priority, seq, task, args, attempts, available_at, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)'),
    delayLease: db.prepare('UPDATE ready SET lease_token = NULL, lease_expires = NULL, worker = NULL, available_at = ?, attempts = coalesce(?, attempts) WHERE run_key = ? AND node_id = ?'),
    promoteDue: db.prepare('UPDATE ready SET available_at = NULL WHERE available_at IS NOT NULL AND available_at <= ?'),
    deleteReady: db.prepare('DELETE FROM ready WHERE run_key = ? AND node_id = ?'),
    clearLease: db.prepare('UPDATE ready SET lease_token = NULL, lease_expires = NULL, worker = NULL WHERE run_key = ? AND node_id = ?'),
    setLease: db.prepare('UPDATE ready SET lease_token = ?, lease_expires = ?, worker = ?, attempts = ?, available_at = NULL WHERE run_key = ? AND node_id = ?'),
    extend: db.prepare('UPDATE ready SET lease_expires = ? WHERE run_key = ? AND node_id = ? AND lease_token = ?'),
    readStream: db.prepare<[string, number], { version: number; position: number; data: string }>(
      'SELECT e.version, e.position, e.data FROM events e JOIN runs r ON r.run_key = e.run_key WHERE r.run_id = ? AND e.version >= ? ORDER BY e.version',
    ),
    readAll: db.prepare<[number, number], { run_id: string; version: number; position: number; data: string }>(
      'SELECT r.run_id, e.version, e.position, e.data FROM events e JOIN runs r ON r.run_key = e.run_key WHERE e.position > ? ORDER BY e.position LIMIT ?',
    ),
    quarantine: db.prepare('UPDATE runs SET status = ?, quarantine_reason = ?, updated_at = ? WHERE run_key = ?'),
    dropReady: db.prepare('DELETE FROM ready WHERE run_key = ?'),
    getRun: db.prepare<[string], RunRow>(
      'SELECT r.*, (SELECT max(version) FROM events e WHERE e.run_key = r.run_key) AS version FROM runs r WHERE r.run_id = ?',
    ),
  };
}

/** What prepareStatements returns. */
export type Statements = ReturnType<typeof prepareStatements>;

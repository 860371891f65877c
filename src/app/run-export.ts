import { createHash } from 'node:crypto';
import { assertFiniteNumbers } from '../canvas/json.ts';
import { eventFieldError } from '../engine/event-fields.ts';
import type { EventType, StoredEvent, WorkflowEvent } from '../engine/events.ts';
import { eventTypes } from '../engine/events.ts';
import { applyInPlace, initialState, type RunState } from '../engine/state.ts';
import { LovageError } from '../errors.ts';

/** The format of an exported run, written in its first line. */
export const EXPORT_FORMAT = 'lovage-run';
export const EXPORT_VERSION = 1;

/**
 * A run's history as JSON Lines: a header (format, version, run id, event count), one line per
 * event, and a trailer with the SHA-256 of the event lines. Deterministic: the same log gives the
 * same bytes.
 */
export function exportRun(runId: string, events: readonly StoredEvent[]): string {
  const lines = events.map((s) => JSON.stringify({ version: s.version, event: s.event }));
  const header = JSON.stringify({ format: EXPORT_FORMAT, formatVersion: EXPORT_VERSION, runId, events: lines.length });
  return `${header}\n${lines.join('\n')}${lines.length ? '\n' : ''}${JSON.stringify({ checksum: `sha256:${digest(lines)}` })}\n`;
}

/**
 * Reads an export back: every line checked (JSON, versions in order, known event types, each event's
 * fields, count, checksum), then the events folded, so a damaged file is refused with the line that is
 * wrong. Lines may end in CRLF (a file passed through Windows tools): the \r is not part of the line.
 */
export function parseExport(text: string): { runId: string; events: WorkflowEvent[] } {
  const lines = text.split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  const bad = (line: number, why: string): never => {
    throw new LovageError('VALIDATION', `export line ${line}: ${why}`, { line });
  };
  const json = (line: number): Record<string, unknown> => {
    try {
      const v: unknown = JSON.parse(lines[line - 1]!);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad(line, 'not a JSON object');
      return v as Record<string, unknown>;
    } catch {
      return bad(line, 'not valid JSON (a truncated or edited file?)');
    }
  };
  if (lines.length === 0) bad(1, 'the file is empty');
  const header = json(1);
  if (header['format'] !== EXPORT_FORMAT) bad(1, `not a Lovage run export (format ${JSON.stringify(header['format'])}, expected "${EXPORT_FORMAT}")`);
  if (header['formatVersion'] !== EXPORT_VERSION) bad(1, `format version ${JSON.stringify(header['formatVersion'])} is not supported; this version reads ${EXPORT_VERSION}`);
  const runId = header['runId'];
  const count = header['events'];
  if (typeof runId !== 'string' || runId === '') bad(1, 'the header has no run id');
  if (!Number.isInteger(count) || (count as number) < 0) bad(1, 'the header has no event count');
  const n = count as number;
  if (lines.length < n + 2) bad(lines.length + 1, `the file ends after ${Math.max(0, lines.length - 1)} of ${n} events and no checksum (truncated)`);
  if (lines.length > n + 2) bad(n + 3, `more lines than the ${n} events and checksum the header announces`);
  if (n === 0) bad(2, 'the export holds no events; a run has at least its WorkflowSubmitted');
  const events: WorkflowEvent[] = [];
  for (let i = 0; i < n; i++) {
    const line = i + 2;
    const entry = json(line);
    if (entry['version'] !== i + 1) bad(line, `event version ${JSON.stringify(entry['version'])}, expected ${i + 1}`);
    const event = entry['event'] as { type?: unknown; at?: unknown } | undefined;
    if (typeof event !== 'object' || event === null || !eventTypes.has(event.type as string)) bad(line, `unknown event ${JSON.stringify(event?.type)}`);
    try {
      // JSON.parse reads 1e400 as Infinity, which no store keeps (it would be stored as null). No depth
      // limit here: the event's own wrapping would count against its argument's or result's 256 levels.
      assertFiniteNumbers(event, 'event');
    } catch (e) {
      bad(line, (e as Error).message);
    }
    const wrong = eventFieldError(event as { type: EventType } & Record<string, unknown>);
    if (wrong !== undefined) bad(line, wrong);
    events.push(event as WorkflowEvent);
  }
  const trailer = json(n + 2);
  const expected = `sha256:${digest(lines.slice(1, n + 1))}`;
  if (trailer['checksum'] !== expected) bad(n + 2, 'checksum mismatch: the events were changed after export');
  const state = initialState(runId as string);
  events.forEach((event, i) => {
    try {
      applyInPlace(state, event);
    } catch (e) {
      bad(i + 2, e instanceof Error ? e.message : String(e));
    }
    const active = state.status !== 'running' && state.active > 0 ? activeNode(state) : undefined;
    if (active) bad(i + 2, `the run ends (${event.type}) while node ${active.id} is still ${active.status}; a run ends only when no node is ready or running (else a worker would run a node of a finished run)`);
  });
  return { runId: runId as string, events };
}

/** A node ready or running, if the run has one. */
function activeNode(state: RunState): { id: string; status: string } | undefined {
  for (const [id, node] of state.nodes) if (node.status === 'ready' || node.status === 'running') return { id, status: node.status };
  return undefined;
}

function digest(lines: readonly string[]): string {
  const hash = createHash('sha256');
  for (const line of lines) hash.update(line).update('\n');
  return hash.digest('hex');
}

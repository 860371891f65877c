// Command-line parsing for `lovage runs ...`: positionals around args.ts's parseFlags, and the
// values its flags take (statuses, times, cursors, node arguments).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDuration } from '../app/duration.ts';
import { isoTime } from '../app/iso-time.ts';
import type { Json } from '../canvas/json.ts';
import type { RunRecord } from '../eventstore/store.ts';
import { LovageError } from '../errors.ts';
import { parseFlags, UsageError } from './args.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The parsed values of flags `O`: strings or booleans, arrays for `multiple`, absent when not given. */
export type FlagValues<O extends Options> = {
  -readonly [K in keyof O]?: O[K] extends { readonly type: 'boolean' } ? (O[K] extends { readonly multiple: true } ? boolean[] : boolean) : O[K] extends { readonly multiple: true } ? string[] : string;
};

/** Flags every `lovage runs` subcommand takes. */
export const commonFlags = {
  store: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The help lines of {@link commonFlags}. */
export const commonUsage = `      --store <url>      store URL: sqlite:<path>, postgres://..., redis://..., memory: (default
                         LOVAGE_STORE, else sqlite:./.lovage/lovage.db)
      --json             print JSON for scripts instead of text
  -h, --help             show this help`;

/**
 * Parses a subcommand's flags (with {@link commonFlags}) and its positionals, named in `names`
 * (a trailing `?` makes one optional). Positionals are checked unless `--help` was given.
 *
 * @example
 * const { values, positionals } = parseRunsArgs('runs show', argv, {}, ['id'])
 */
export function parseRunsArgs<O extends Options>(command: string, argv: readonly string[], flags: O, names: readonly string[]): { values: FlagValues<O & typeof commonFlags>; positionals: string[] } {
  const options = { ...flags, ...commonFlags };
  // Find the positionals with parseArgs' own tokenizer (so `--store x` keeps its value), then let
  // parseFlags check the flags strictly, with its messages.
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const drop = new Set<number>();
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') {
      drop.add(t.index);
      positionals.push(t.value);
    } else if (t.kind === 'option-terminator') drop.add(t.index);
  }
  const values = parseFlags(command, argv.filter((_, i) => !drop.has(i)), options).values as FlagValues<O & typeof commonFlags>;
  if (!values.help) {
    const required = names.filter((n) => !n.endsWith('?'));
    const shape = names.map((n) => (n.endsWith('?') ? `[<${n.slice(0, -1)}>]` : `<${n}>`)).join(' ');
    if (positionals.length < required.length) throw new UsageError(`lovage ${command}: missing <${required[positionals.length]}>; usage: lovage ${command} ${shape} [options] (see lovage ${command} --help)`);
    if (positionals.length > names.length) throw new UsageError(`lovage ${command}: unexpected argument ${JSON.stringify(positionals[names.length])}; usage: lovage ${command} ${shape} [options]`);
  }
  return { values, positionals };
}

/** The statuses a run can have, for `--status`. */
export const RUN_STATUSES: readonly RunRecord['status'][] = ['running', 'succeeded', 'failed', 'cancelled', 'quarantined'];

/**
 * `--status a,b` checked against the run statuses.
 *
 * @example
 * statusFlag('--status', 'failed,cancelled') // ['failed', 'cancelled']
 */
export function statusFlag(flag: string, value: string | undefined): RunRecord['status'][] | undefined {
  if (value === undefined) return undefined;
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new UsageError(`${flag} is empty; allowed is a comma-separated list of ${RUN_STATUSES.join(', ')}`);
  for (const s of list) {
    if (!(RUN_STATUSES as readonly string[]).includes(s)) throw new UsageError(`${flag}: unknown status ${JSON.stringify(s)}; allowed are ${RUN_STATUSES.join(', ')} (comma-separated)`);
  }
  return [...new Set(list)] as RunRecord['status'][];
}

/**
 * A point in time: an ISO time (`2026-11-22`, `2026-11-22T10:00:00Z`) or an age before `now`
 * (`30m`, `2h`, `7d`, `500ms`). Returns epoch ms.
 *
 * @example
 * timeFlag('--since', '2h', Date.now())
 */
export function timeFlag(flag: string, value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+(\.\d+)?(ms|s|m|h|d|w)$/.test(value.trim())) return now - parseDuration(value);
  const t = isoTime(value);
  if (t === undefined) throw new UsageError(`${flag} ${JSON.stringify(value)} is invalid; allowed are an ISO time (2026-11-22, 2026-11-22T10:00:00Z) or an age such as 30m, 2h, 7d`);
  return t;
}

/** A duration flag (`30d`, `12h`) in ms, as a UsageError naming the flag when malformed. */
export function durationFlag(flag: string, value: string): number {
  try {
    return parseDuration(value, flag);
  } catch (e) {
    throw new UsageError(e instanceof LovageError ? e.message : String(e));
  }
}

/** A page cursor: the last run of the page. */
export interface Cursor {
  readonly createdAt: number;
  readonly runId: string;
}

/**
 * `<createdAt>:<runId>`, the cursor `lovage runs ls` prints. {@link parseCursor} also reads it base64-encoded.
 *
 * @example
 * formatCursor({ createdAt: 1763805600000, runId: 'Hx3' }) // '1763805600000:Hx3'
 */
export function formatCursor(c: Cursor): string {
  return `${c.createdAt}:${c.runId}`;
}

/**
 * Reads `--after`: `<createdAt>:<runId>` or the same text in base64 (or base64url).
 *
 * @example
 * parseCursor('--after', '1763805600000:Hx3') // { createdAt: 1763805600000, runId: 'Hx3' }
 */
export function parseCursor(flag: string, value: string | undefined): Cursor | undefined {
  if (value === undefined) return undefined;
  const plain = /^(\d{1,16}):(.+)$/;
  let m = plain.exec(value);
  if (!m && /^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) m = plain.exec(Buffer.from(value, 'base64').toString('utf8'));
  if (!m || !Number.isSafeInteger(Number(m[1]))) throw new UsageError(`${flag} ${JSON.stringify(value)} is not a cursor; allowed is the <createdAt>:<runId> that \`lovage runs ls\` prints after "next page:", or that text in base64`);
  return { createdAt: Number(m[1]), runId: m[2]! };
}

/**
 * `--args <node>=<json array>` (repeatable) as a map from node id to arguments.
 *
 * @example
 * nodeArgsFlag(['1=[5,"x"]']) // { '1': [5, 'x'] }
 */
export function nodeArgsFlag(values: readonly string[] | undefined): Record<string, Json[]> | undefined {
  if (!values?.length) return undefined;
  const out: Record<string, Json[]> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const bad = (why: string): never => {
      throw new UsageError(`--args ${JSON.stringify(v)}: ${why}; allowed is <node>=<JSON array>, e.g. --args '1=[5,"x"]'`);
    };
    if (eq <= 0) bad('no node id before "="');
    const node = v.slice(0, eq);
    let parsed: unknown;
    try {
      parsed = JSON.parse(v.slice(eq + 1));
    } catch {
      bad('the value after "=" is not valid JSON');
    }
    if (!Array.isArray(parsed)) bad('the value after "=" is not a JSON array');
    if (node in out) bad(`node ${node} is given twice`);
    out[node] = parsed as Json[];
  }
  return out;
}

/**
 * `--at <version | ISO time>` for replay: an event version (integer ≥ 0) or an ISO time.
 *
 * @example
 * atFlag('7') // 7
 */
export function atFlag(value: string | undefined): number | string {
  if (value === undefined || value === '') throw new UsageError('lovage runs replay: --at <version | ISO time> is required, e.g. --at 7 or --at 2026-11-22T10:00:00Z');
  if (/^\d+$/.test(value)) return Number(value);
  if (isoTime(value) === undefined) throw new UsageError(`--at ${JSON.stringify(value)} is invalid; allowed are an event version (an integer ≥ 0) or an ISO time such as 2026-11-22T10:00:00.000Z`);
  return value;
}

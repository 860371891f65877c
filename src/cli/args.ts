import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LovageError } from '../errors.ts';

/** A bad command line: the CLI prints the message and exits with code 2. */
export class UsageError extends LovageError {
  constructor(message: string) {
    super('VALIDATION', message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `util.parseArgs` in strict mode, with its errors turned into UsageErrors that name the flag and
 * list the flags `command` allows.
 *
 * @example
 * const { values } = parseFlags('worker', argv, { app: { type: 'string' } })
 */
export function parseFlags<O extends Options>(command: string, args: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const message = e instanceof Error ? e.message.split('\n')[0]! : String(e);
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']*)'/.exec(message)?.[1] ?? message;
      throw new UsageError(`lovage ${command}: unknown option ${flag}; allowed are ${flagList(options)} (see lovage ${command} --help)`);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']*)'/.exec(message)?.[1] ?? message;
      throw new UsageError(`lovage ${command}: unexpected argument ${JSON.stringify(arg)}; it takes options only (see lovage ${command} --help)`);
    }
    const flag = /'([^']*)'/.exec(message)?.[1] ?? '';
    if (/ambiguous/.test(message)) throw new UsageError(`lovage ${command}: ${flag} needs a value, and the next argument starts with "-"; to pass such a value write ${flag}=<value>`);
    if (/argument missing/.test(message)) throw new UsageError(`lovage ${command}: ${flag.replace(/ <value>$/, '')} needs a value`);
    throw new UsageError(`lovage ${command}: ${message}`);
  }
}

function flagList(options: Options): string {
  return Object.entries(options).map(([name, o]) => (o.short ? `-${o.short}/--${name}` : `--${name}`)).join(', ');
}

/**
 * An integer flag value: digits only, at least `min`. Absent gives `undefined`.
 *
 * @example
 * intFlag('--concurrency', '8', 1) // 8
 */
export function intFlag(flag: string, value: string | undefined, min: number, max?: number): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
    throw new UsageError(`${flag} must be an integer ${max === undefined ? `≥ ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Where the CLI writes: one line at a time (tests pass their own). */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

/** The process's stdout and stderr. */
export const processIo: Io = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
};

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** One Lua script: `lua/lib.lua` (key layout, shared functions), the fragments it needs, then its own file (its KEYS and ARGV). */
export interface Script {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

const read = (file: string): string => readFileSync(new URL(`./lua/${file}.lua`, import.meta.url), 'utf8');
const fragments = { lib: read('lib'), append: read('lib-append'), claim: read('lib-claim') };

function load(name: string, uses: readonly ('append' | 'claim')[] = []): Script {
  const lua = [fragments.lib, ...uses.map((f) => fragments[f]), read(name)].join('\n');
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/** Every atomic step of the Redis store, one script each. */
export const scripts = {
  append: load('append', ['append']),
  claim: load('claim', ['claim']),
  appendAndClaim: load('append-and-claim', ['append', 'claim']),
  extend: load('extend'),
  quarantine: load('quarantine'),
  deleteRuns: load('delete-runs'),
  readAll: load('read-all'),
  readStream: load('read-stream'),
  listRuns: load('list-runs'),
  getRun: load('get-run'),
  takeToken: load('take-token'),
  setRateLimit: load('set-rate-limit'),
} as const;

/** A script's arguments: KEYS (always the 13 global keys, see lua/lib.lua) and ARGV. */
export type ScriptArg = string | number;

/**
 * Runs a script by its SHA1 (EVALSHA), loading it on NOSCRIPT (a restarted or flushed server). Arguments
 * go as one array (`call`), not spread: a 100k-node submit has more arguments than a JS call may take.
 */
export async function runScript(client: Redis, script: Script, keys: readonly string[], argv: ScriptArg[]): Promise<unknown> {
  const args: ScriptArg[] = [script.sha, keys.length, ...keys];
  for (const a of argv) args.push(a);
  try {
    return await client.call('evalsha', args);
  } catch (e) {
    if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e;
    args[0] = script.lua;
    return client.call('eval', args);
  }
}

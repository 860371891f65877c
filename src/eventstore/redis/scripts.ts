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

/** A script's arguments: KEYS (always the 14 global keys, see lua/lib.lua) and ARGV. */
export type ScriptArg = string | number;

/**
 * ARGV as one MessagePack array of strings (numbers as their decimal text, as Redis would pass them):
 * the scripts open with `local ARGV = cmsgpack.unpack(ARGV[1])` (lua/lib.lua). One bulk argument
 * instead of one per value spares ioredis a string concatenation per value (~2 KB of garbage per
 * task) and Redis an object per value. A string's header is sized for its length × 3 (its UTF-8
 * bound) and filled in once it is written: a wider header than needed is still valid MessagePack.
 */
export function packArgs(argv: readonly ScriptArg[]): Buffer {
  let buf = Buffer.allocUnsafe(64 + argv.length * 8);
  let at = 0;
  const room = (n: number): void => {
    if (at + n <= buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(buf.length * 2, at + n));
    buf.copy(next, 0, 0, at);
    buf = next;
  };
  const n = argv.length;
  room(5);
  if (n < 16) buf[at++] = 0x90 | n;
  else if (n < 0x10000) { buf[at] = 0xdc; buf.writeUInt16BE(n, at + 1); at += 3; }
  else { buf[at] = 0xdd; buf.writeUInt32BE(n, at + 1); at += 5; }
  for (const a of argv) {
    const s = typeof a === 'string' ? a : String(a);
    const bound = s.length * 3;
    const head = bound < 32 ? 1 : bound < 0x100 ? 2 : bound < 0x10000 ? 3 : 5;
    room(head + bound);
    const start = at + head;
    let len = -1;
    if (s.length < 48) {
      // Short ASCII text byte by byte: cheaper than a call into C++ per value.
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        buf[start + i] = c;
      }
      if (i === s.length) len = i;
    }
    if (len < 0) len = buf.write(s, start, 'utf8');
    if (head === 1) buf[at] = 0xa0 | len;
    else if (head === 2) { buf[at] = 0xd9; buf[at + 1] = len; }
    else if (head === 3) { buf[at] = 0xda; buf.writeUInt16BE(len, at + 1); }
    else { buf[at] = 0xdb; buf.writeUInt32BE(len, at + 1); }
    at = start + len;
  }
  return buf.subarray(0, at);
}

let reloads = 0;

/** How many scripts were sent whole after a NOSCRIPT so far (a call that went so ran after calls sent behind it). */
export function scriptReloads(): number {
  return reloads;
}

/**
 * Runs a script by its SHA1 (EVALSHA), loading it on NOSCRIPT (a restarted or flushed server). ARGV
 * goes packed (see {@link packArgs}).
 */
export async function runScript(client: Redis, script: Script, keys: readonly string[], argv: readonly ScriptArg[]): Promise<unknown> {
  const args: (string | number | Buffer)[] = [script.sha, keys.length, ...keys, packArgs(argv)];
  try {
    return await client.call('evalsha', args);
  } catch (e) {
    if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e;
    reloads++;
    args[0] = script.lua;
    return client.call('eval', args);
  }
}

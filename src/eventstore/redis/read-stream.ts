// A run's log read from Redis a page at a time (lua/read-stream.lua), for RedisStore.readStream.
import type { StoredEvent } from '../../engine/events.ts';
import { LovageError } from '../../errors.ts';
import { parseItem } from './codec.ts';

/** Events a read-stream script call returns at most. */
const READ_PAGE = 10_000;
/** How often a run is read again from the start when it changed between two pages. */
const READ_RETRIES = 3;

/** One script call: the run's version, its creation time, then the items of versions `first`.. (at most `size`). */
export type ReadPage = (first: number, size: number) => Promise<unknown[]>;

/**
 * A run's events from `fromVersion`, READ_PAGE a call, the next page asked for before this one is
 * parsed: Redis reads it meanwhile, and no call holds Redis long (a 100k-event run: ~30% quicker than
 * in one call). A run deleted, or deleted and submitted again, between two pages (its version went
 * down, or its creation time changed) is read again from the start, so the log returned is one run's,
 * as one call's would be; after READ_RETRIES such reads, CONCURRENCY.
 */
export async function readStreamPaged(runId: string, fromVersion: number, page: ReadPage): Promise<StoredEvent[]> {
  const start = Math.max(1, Math.floor(fromVersion));
  for (let attempt = 0; attempt <= READ_RETRIES; attempt++) {
    const events = await readPages(runId, start, page);
    if (events) return events;
  }
  throw new LovageError('CONCURRENCY', `run ${runId} was deleted or replaced while its log was read, ${READ_RETRIES + 1} times; read it again`, { runId });
}

/** The pages of one read, or undefined when the run changed under them. */
async function readPages(runId: string, start: number, page: ReadPage): Promise<StoredEvent[] | undefined> {
  const ask = (first: number): Promise<unknown[]> => {
    const call = page(first, READ_PAGE);
    call.catch(() => undefined); // awaited below, unless a page before it fails
    return call;
  };
  const out: StoredEvent[] = [];
  let from = start;
  let seen: { version: number; created: string } | undefined;
  for (let next = ask(from); ;) {
    const reply = await next;
    const version = reply[0] as number;
    const created = reply[1] as string;
    if (seen && (version < seen.version || created !== seen.created)) return undefined;
    seen = { version, created };
    const count = reply.length - 2;
    const more = count === READ_PAGE && from + count <= version;
    if (more) next = ask(from + count);
    for (let i = 0; i < count; i++) out.push(parseItem(reply[i + 2] as string | null, runId, from + i));
    if (!more) return out;
    from += count;
  }
}

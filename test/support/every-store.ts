// The four stores as URLs for end-to-end tests that make an app per test: memory and SQLite always,
// Postgres and Redis when they answer (see services.ts). Each call of a row's `url()` names a fresh,
// empty store (its own SQLite file, Postgres schema or Redis key prefix); `cleanup()` (afterAll)
// removes them all.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deletePrefixes } from './redis-server.ts';
import { postgresUrl, redisUrl, uniqueName } from './services.ts';

export interface EveryStore {
  readonly stores: readonly (readonly [name: string, url: () => string])[];
  /** A scratch folder of the file, removed by cleanup(). */
  readonly dir: string;
  cleanup(): Promise<void>;
}

/** The stores for a test file; `tag` names its files, schemas and prefixes. */
export async function everyStore(tag: string): Promise<EveryStore> {
  const dir = mkdtempSync(join(tmpdir(), `lovage-${tag}-`));
  let n = 0;
  const stores: [string, () => string][] = [['memory', () => 'memory:'], ['sqlite', () => `sqlite:${join(dir, `s${n++}.db`)}`]];
  const pg = await postgresUrl();
  const schemas: string[] = [];
  // A small pool: test files run two at a time against one server (max_connections 100).
  if (pg) stores.push(['postgres', () => `${pg}?max=4&schema=${schemas[schemas.push(uniqueName(`lovage_${tag}`)) - 1]}`]);
  const redis = await redisUrl();
  const prefixes: string[] = [];
  if (redis) stores.push(['redis', () => `${redis}?prefix=${prefixes[prefixes.push(`${uniqueName(`lovage_${tag}`)}:`) - 1]}`]);
  return {
    stores,
    dir,
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
      if (redis && prefixes.length) await deletePrefixes(redis, prefixes);
      if (schemas.length === 0) return;
      const { default: pgLib } = await import('pg');
      const admin = new pgLib.Client({ connectionString: pg });
      await admin.connect();
      for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
      await admin.end();
    },
  };
}

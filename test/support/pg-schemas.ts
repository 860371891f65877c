// The shared Postgres for a test file: its URL (undefined, after saying why, when none answers; see
// services.ts), an admin pool, and fresh schema names that are dropped, with all in them, after the file.
import pg from 'pg';
import { afterAll } from 'vitest';
import { postgresUrl, uniqueName } from './services.ts';

/** Call at the top of a test file (it registers an afterAll). */
export async function pgSchemas(): Promise<{ url: string | undefined; admin: pg.Pool | undefined; fresh(prefix?: string): string }> {
  const url = await postgresUrl();
  const admin = url ? new pg.Pool({ connectionString: url, max: 2 }) : undefined;
  const schemas = new Set<string>();
  afterAll(async () => {
    for (const s of schemas) await admin!.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await admin?.end();
  });
  return {
    url,
    admin,
    fresh(prefix = 'lovage_t') {
      const s = uniqueName(prefix);
      schemas.add(s);
      return s;
    },
  };
}

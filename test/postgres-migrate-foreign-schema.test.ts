// Migrating into a schema that holds tables Lovage did not create (another application's `runs`):
// refused with an error naming the schema, not a raw 'relation "runs" already exists' stack trace.
// Each test works in a schema of its own, dropped afterwards. Skips without a server (see services.ts).
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.ts';
import { migratePostgres, PostgresStore } from '../src/eventstore/postgres.ts';
import { pgSchemas } from './support/pg-schemas.ts';

const { url, admin, fresh } = await pgSchemas();

/** A fresh schema holding another application's `runs` table. */
async function foreignSchema(): Promise<string> {
  const schema = fresh('lovage_foreign');
  await admin!.query(`CREATE SCHEMA "${schema}"`);
  await admin!.query(`CREATE TABLE "${schema}".runs (id integer PRIMARY KEY, note text)`);
  return schema;
}

describe.skipIf(!url)('postgres: migrating into a schema that holds tables of something else', () => {
  it('PostgresStore.open and migratePostgres refuse with VALIDATION naming the schema and the relation; nothing is changed', async () => {
    const schema = await foreignSchema();
    const opened = await PostgresStore.open({ connectionString: url!, schema, max: 1 }).catch((e: unknown) => e);
    expect(opened).toMatchObject({ code: 'VALIDATION', details: { schema } });
    expect((opened as Error).message).toContain(`Postgres schema "${schema}" holds relation "runs" already`);
    expect((opened as Error).message).toContain('?schema=');
    const migrated = await migratePostgres(admin!, schema).catch((e: unknown) => e);
    expect(migrated).toMatchObject({ code: 'VALIDATION', details: { schema } });
    const { rows } = await admin!.query<{ name: string }>(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1`, [schema]);
    expect(rows).toEqual([{ name: 'runs' }]);
  });

  it('lovage migrate says so in one line, no stack trace', async () => {
    const schema = await foreignSchema();
    const err: string[] = [];
    const code = await main(['migrate', '--store', `${url!}?schema=${schema}`], { out: () => undefined, err: (l) => err.push(l) });
    expect(code).toBe(1);
    expect(err.join('\n')).toContain(`error: Postgres schema "${schema}" holds relation "runs" already`);
    expect(err.join('\n')).not.toContain('    at ');
  });
});

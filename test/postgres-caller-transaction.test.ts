// Submitting inside the caller's own transaction (Postgres): idempotency keys there, a failed submit
// that leaves the caller's transaction usable, and what is refused because it is not an open
// transaction. The basics (commit keeps the run, rollback drops it) are in stores-postgres.test.ts.
// Each test works in a schema of its own, dropped afterwards. Skips without a server (see services.ts).
import { Kysely, PostgresDialect, sql } from 'kysely';
import { createRequire } from 'node:module';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/index.ts';
import { PostgresStore } from '../src/eventstore/postgres.ts';
import { pgSchemas } from './support/pg-schemas.ts';

const { url, admin, fresh } = await pgSchemas();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An app on a store in a fresh schema (dropped after the file), with one task `add`. */
async function setup() {
  const schema = fresh('lovage_tx');
  const store = await PostgresStore.open({ connectionString: url!, schema, max: 2 });
  const app = createApp({ store });
  const add = app.task('add', (a: number, b: number) => a + b);
  return { schema, store, app, add };
}

/** A pg client of its own, connected. */
async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url! });
  await c.connect();
  return c;
}

describe.skipIf(!url)("postgres: submitting in the caller's transaction", () => {
  it('idempotencyKey: a concurrent second submit with the key waits for the first transaction, gets its run, writes nothing; its own transaction goes on', async () => {
    const { store, app, add } = await setup();
    const a = await client();
    const b = await client();
    try {
      await a.query('BEGIN');
      await b.query('BEGIN');
      const first = await add.s(1, 2).applyAsync({ transaction: a, idempotencyKey: 'order-42' });
      const second = add.s(5, 5).applyAsync({ transaction: b, idempotencyKey: 'order-42' }).then((h) => h.id, (e: unknown) => e);
      await sleep(200); // b waits on a's uncommitted run row
      await a.query('COMMIT');
      expect(await second).toBe(first.id);
      expect((await b.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]); // b's transaction is still usable
      await b.query('COMMIT');
      expect(await store.getRun(first.id)).toMatchObject({ version: 2 });
      expect((await store.readStream(first.id)).map((e) => e.version)).toEqual([1, 2]);
    } finally {
      await a.end();
      await b.end();
      await app.close();
    }
  });

  it('idempotencyKey: the key submitted twice in one transaction (pg client, kysely) gives one run, and the transaction commits it', async () => {
    const { store, app, add } = await setup();
    const c = await client();
    const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url!, max: 1 }) }) });
    try {
      await c.query('BEGIN');
      const one = await add.s(1, 2).applyAsync({ transaction: c, idempotencyKey: 'twice' });
      const two = await add.s(1, 2).applyAsync({ transaction: c, idempotencyKey: 'twice' });
      expect(two.id).toBe(one.id);
      await c.query('COMMIT');
      expect((await store.readStream(one.id)).map((e) => e.version)).toEqual([1, 2]);

      const [k1, k2] = await db.transaction().execute(async (trx) => [
        (await add.s(3, 4).applyAsync({ transaction: trx, idempotencyKey: 'twice-kysely' })).id,
        (await add.s(3, 4).applyAsync({ transaction: trx, idempotencyKey: 'twice-kysely' })).id,
      ]);
      expect(k2).toBe(k1);
      expect((await store.readStream(k1!)).map((e) => e.version)).toEqual([1, 2]);
    } finally {
      await c.end();
      await db.destroy();
      await app.close();
    }
  });

  it('a submit refused inside the transaction (a run id taken) writes nothing of its own and leaves the transaction usable', async () => {
    const { store, app, add } = await setup();
    const c = await client();
    try {
      await c.query('BEGIN');
      await add.s(1, 2).applyAsync({ transaction: c, runId: 'taken' });
      await expect(add.s(7, 7).applyAsync({ transaction: c, runId: 'taken' })).rejects.toMatchObject({ code: 'CONCURRENCY' });
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
      await c.query('COMMIT');
      const events = await store.readStream('taken');
      expect(events.map((e) => e.version)).toEqual([1, 2]);
      expect(JSON.stringify(events)).toContain('[1,2]');
      expect(JSON.stringify(events)).not.toContain('[7,7]');
    } finally {
      await c.end();
      await app.close();
    }
  });

  it('submits on one client at once: one refused rolls back only itself', async () => {
    const { store, app, add } = await setup();
    const c = await client();
    try {
      await c.query('BEGIN');
      const outcomes = await Promise.allSettled([
        add.s(1, 1).applyAsync({ transaction: c, runId: 'p1' }),
        add.s(2, 2).applyAsync({ transaction: c, runId: 'p1' }),
        add.s(3, 3).applyAsync({ transaction: c, runId: 'p2' }),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'CONCURRENCY' });
      await c.query('COMMIT');
      expect((await store.readStream('p1')).map((e) => e.version)).toEqual([1, 2]);
      expect((await store.readStream('p2')).map((e) => e.version)).toEqual([1, 2]);
    } finally {
      await c.end();
      await app.close();
    }
  });

  it('what is not an open transaction is refused (VALIDATION, naming what was given and what is allowed), never committed on its own', async () => {
    const { store, app, add } = await setup();
    // A pool not made by this copy of `pg`: pg-pool itself (a second copy of pg in node_modules is alike).
    const PgPool = createRequire(import.meta.url)('pg-pool') as new (options: object) => { end(): Promise<void> };
    const otherPool = new PgPool({ connectionString: url! });
    const c = await client();
    const refusal = async (tx: unknown) => {
      const r = await add.s(1, 2).applyAsync({ transaction: tx }).then((h) => h.id, (e: unknown) => e);
      if (typeof r === 'string') return `committed: ${(await store.getRun(r))?.status}`;
      const e = r as { code?: string; message?: string };
      expect(e.message).toContain('allowed is a kysely Transaction');
      return `${e.code}: ${e.message?.split('; allowed')[0]}`;
    };
    try {
      const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: store.pool }) });
      expect(await refusal(db)).toBe('VALIDATION: transaction is a Kysely instance, not a Transaction: a statement on it commits on its own');
      expect(await refusal(store.pool)).toBe('VALIDATION: transaction is a pool (pg.Pool or alike), not a transaction: each statement on it commits on its own');
      expect(await refusal(otherPool)).toBe('VALIDATION: transaction is a pool (pg.Pool or alike), not a transaction: each statement on it commits on its own');
      expect(await refusal(c)).toBe('VALIDATION: transaction is a pg client outside a transaction (no BEGIN): the submit would commit on its own');
      await c.query('BEGIN');
      await c.query('SELECT 1/0').catch(() => undefined);
      expect(await refusal(c)).toBe('VALIDATION: transaction is a pg client in a failed transaction (a statement in it failed, it can only roll back)');
      await c.query('ROLLBACK');
      expect(await store.listRuns()).toEqual([]);
    } finally {
      await otherPool.end();
      await c.end();
      await app.close();
    }
  });
  it("a failed submit rolls back only itself: the caller's statements sent meanwhile on the same client are kept", async () => {
    const { schema, app, add } = await setup();
    await admin!.query(`CREATE TABLE "${schema}".orders (id integer PRIMARY KEY)`);
    const c = await client();
    try {
      await c.query('BEGIN');
      const first = await add.s(1, 2).applyAsync({ transaction: c, idempotencyKey: 'order-7' });
      const reported: string[] = [];
      const [second] = await Promise.all([
        add.s(1, 2).applyAsync({ transaction: c, idempotencyKey: 'order-7' }), // its append conflicts, then gets the first run
        (async () => {
          for (let i = 0; i < 30; i++) {
            await c.query(`INSERT INTO "${schema}".orders VALUES ($1)`, [i]).then(() => reported.push(`${i} ok`), (e: Error) => reported.push(`${i} ${e.message}`));
          }
        })(),
      ]);
      expect(second.id).toBe(first.id);
      await c.query('COMMIT');
      const { rows } = await admin!.query(`SELECT id FROM "${schema}".orders ORDER BY id`);
      expect({ failed: reported.filter((r) => !r.endsWith(' ok')), kept: rows.length }).toEqual({ failed: [], kept: 30 });
    } finally {
      await c.end();
      await app.close();
    }
  });

  it("a COMMIT of the caller's that goes out before the submit: the submit is refused and writes nothing", async () => {
    const { store, app, add } = await setup();
    const c = await client();
    try {
      await c.query('BEGIN');
      const submit = add.s(1, 2).applyAsync({ transaction: c, runId: 'late' }).then(() => 'submitted', (e: { code?: string; message: string }) => `${e.code}: ${e.message}`);
      await c.query('SELECT pg_sleep(0.2)'); // queued behind the submit's first statement, the COMMIT behind it
      await c.query('COMMIT');
      expect(await submit).toMatch(/^VALIDATION: transaction is a pg client whose transaction ended \(COMMIT or ROLLBACK\), or was rolled back to a savepoint, before the submit ran; nothing was written/);
      expect(await store.getRun('late')).toBeUndefined();
    } finally {
      await c.end();
      await app.close();
    }
  });
  it('two submits at once through trx and trx.withSchema() (two objects, one connection) both write; the transaction stays usable', async () => {
    const { store, app, add } = await setup();
    const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url!, max: 1 }) }) });
    try {
      const outcome = await db.transaction().execute(async (trx) => {
        const other = trx.withSchema('public');
        const settled = await Promise.allSettled([
          add.s(1, 1).applyAsync({ transaction: trx, runId: 'ws-a' }),
          add.s(2, 2).applyAsync({ transaction: other, runId: 'ws-b' }),
        ]);
        const usable = await sql`SELECT 1 AS ok`.execute(trx).then(() => 'usable', (e: Error) => e.message);
        return { settled: settled.map((x) => (x.status === 'fulfilled' ? 'ok' : String(x.reason))), usable };
      });
      expect(outcome).toEqual({ settled: ['ok', 'ok'], usable: 'usable' });
      expect((await store.readStream('ws-a')).length).toBeGreaterThan(0);
      expect((await store.readStream('ws-b')).length).toBeGreaterThan(0);
    } finally {
      await db.destroy();
      await app.close();
    }
  });

  it("a caller's ROLLBACK TO SAVEPOINT between the submit's two statements: the submit is refused, the transaction stays usable", async () => {
    const { store, app, add } = await setup();
    const c = await client();
    try {
      await c.query('BEGIN');
      await c.query('SAVEPOINT mine');
      const submit = add.s(1, 2).applyAsync({ transaction: c, runId: 'sp' }).then(() => 'submitted', (e: { code?: string; message: string }) => `${e.code}: ${e.message}`);
      while (!(c as unknown as { activeQuery: unknown }).activeQuery) await new Promise((r) => setImmediate(r)); // its set_config is on the wire
      const rolled = c.query('ROLLBACK TO SAVEPOINT mine').then(() => 'ok', (e: Error) => e.message);
      expect(await submit).toMatch(/^VALIDATION: transaction is a pg client whose transaction ended \(COMMIT or ROLLBACK\), or was rolled back to a savepoint, before the submit ran; nothing was written/);
      expect(await rolled).toBe('ok');
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
      await c.query('COMMIT');
      expect(await store.getRun('sp')).toBeUndefined();
    } finally {
      await c.end();
      await app.close();
    }
  });

  it.each([
    ['lock_timeout', '55P03'],
    ['statement_timeout', '57014'],
  ])('a submit cut by %s (waiting for a run id another transaction holds) throws an Error with its code; the transaction stays usable', async (setting, code) => {
    const { app, add } = await setup();
    const a = await client();
    const b = await client();
    try {
      await a.query('BEGIN');
      await add.s(1, 2).applyAsync({ transaction: a, runId: 'held' });
      await b.query('BEGIN');
      await b.query(`SET LOCAL ${setting} = '200ms'`);
      const err = await add.s(1, 2).applyAsync({ transaction: b, runId: 'held' }).then(() => undefined, (e: unknown) => e);
      expect({ isError: err instanceof Error, code: (err as { code?: string }).code }).toEqual({ isError: true, code });
      expect((await b.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await a.query('ROLLBACK').catch(() => undefined);
      await b.query('ROLLBACK').catch(() => undefined);
      await a.end();
      await b.end();
      await app.close();
    }
  });
});

// The Postgres store: the shared conformance suite and semantics properties, then what only Postgres
// does (migrations, schema names, the caller's transaction, LISTEN/NOTIFY, the database clock).
// Each test works in a schema of its own, dropped afterwards. Skips without a server (see services.ts).
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { compile } from '../src/canvas/compile.ts';
import type { CanvasData } from '../src/canvas/types.ts';
import { main } from '../src/cli/main.ts';
import { decide, decideStart } from '../src/engine/decide.ts';
import type { WorkflowEvent } from '../src/engine/events.ts';
import { initialState } from '../src/engine/state.ts';
import { createApp, group, LovageError } from '../src/index.ts';
import { LATEST_VERSION, migratePostgres, PostgresStore, type PostgresStoreOptions } from '../src/eventstore/postgres.ts';
import { buildAppend } from '../src/eventstore/postgres/append-input.ts';
import { EVENT_ROW_MAX } from '../src/eventstore/postgres/functions-sql.ts';
import { openStore } from '../src/eventstore/url.ts';
import { Coordinator } from '../src/workers/coordinator.ts';
import { semantics } from './support/semantics.ts';
import { ManualClock, storeConformance } from './support/store-conformance.ts';
import { pgSchemas } from './support/pg-schemas.ts';

const { url, admin, fresh } = await pgSchemas();


/** A store on a fresh schema (or the one given); closing it drops the schema. */
async function open(options: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const schema = options.schema ?? fresh();
  const store = await PostgresStore.open({ connectionString: url!, max: 4, ...options, schema });
  const close = store.close.bind(store);
  return Object.assign(store, {
    close: async () => {
      await close();
      await admin!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
  });
}

const sig = (task: string, args: number[] = []): CanvasData => ({ kind: 'signature', task, args, immutable: false, options: {} });
const submitted = (canvas: CanvasData, at: number) => decide(initialState('x'), { type: 'Submit', at, dag: compile(canvas) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const claimReq = (worker: string, leaseMs = 60_000) => ({ queues: ['default'], limit: 10, worker, leaseMs });

describe.skipIf(!url)('postgres', () => {
  storeConformance('postgres', (clock) => open({ clock: clock.now }), { claimsBringHistory: true });

  describe('semantics (end to end, random canvases)', () => {
    semantics(() => open(), 30);
  });

  it('claims append exactly the events decideStart makes (fresh and expired), as read back', async () => {
    const clock = new ManualClock();
    const store = await open({ clock: clock.now });
    try {
      await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
      const [a] = await store.claim({ ...claimReq('worker "A"\n\\'), leaseMs: 1000 });
      clock.t += 5000;
      const [b] = await store.claim({ ...claimReq('B'), leaseMs: 1000 });
      expect(a!.events.map((s) => s.event)).toEqual(decideStart({ nodeId: '0', attempts: 0, worker: 'worker "A"\n\\', leaseToken: a!.leaseToken, leaseExpiresAt: clock.t - 4000, at: clock.t - 5000 }));
      expect(b!.events.map((s) => s.event)).toEqual(decideStart({ nodeId: '0', attempts: 1, expiredWorker: 'worker "A"\n\\', worker: 'B', leaseToken: b!.leaseToken, leaseExpiresAt: clock.t + 1000, at: clock.t }));
      expect(await store.readStream('r1', 3)).toEqual([...a!.events, ...b!.events]);
    } finally {
      await store.close();
    }
  });

  it("a run's events of one append or claim share events rows of at most EVENT_ROW_MAX; every event keeps its version and position", async () => {
    const clock = new ManualClock();
    const store = await open({ clock: clock.now });
    try {
      const n = EVENT_ROW_MAX + 476;
      const [submittedEvents] = await store.append([{ runId: 'g', expectedVersion: 0, events: submitted({ kind: 'group', members: Array.from({ length: n }, (_, i) => sig('t', [i])) }, clock.t) }]);
      const rows = async () => (await admin!.query<{ version: number; n: number }>(`SELECT e.version, e.n FROM "${store.schema}".events e ORDER BY e.position`)).rows;
      expect(await rows()).toEqual([{ version: 1, n: 1 }, { version: 2, n: EVENT_ROW_MAX }, { version: 2 + EVENT_ROW_MAX, n: n - EVENT_ROW_MAX }]);
      const first = await store.claim({ queues: ['default'], limit: n, worker: 'A', leaseMs: 1000 });
      clock.t += 5000;
      const again = await store.claim({ queues: ['default'], limit: n, worker: 'B', leaseMs: 1000 }); // every lease expired: two events a node
      expect(first).toHaveLength(n);
      expect(again).toHaveLength(n);
      expect((await rows()).slice(3).map((r) => r.n)).toEqual([EVENT_ROW_MAX, n - EVENT_ROW_MAX, EVENT_ROW_MAX, EVENT_ROW_MAX, 2 * n - 2 * EVENT_ROW_MAX]);
      const log = await store.readStream('g');
      expect(log.map((e) => e.version)).toEqual(Array.from({ length: 1 + 3 * n + n }, (_, i) => i + 1));
      const positions = log.map((e) => e.position);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
      expect(new Set(positions).size).toBe(positions.length);
      expect([...submittedEvents!, ...first.flatMap((c) => c.events), ...again.flatMap((c) => c.events)]).toEqual(log);
      expect(await store.readStream('g', 2 + EVENT_ROW_MAX - 3)).toEqual(log.slice(EVENT_ROW_MAX - 2));
      expect(await store.readAll(positions[EVENT_ROW_MAX]!, 5)).toEqual(log.slice(EVENT_ROW_MAX + 1, EVENT_ROW_MAX + 6));
    } finally {
      await store.close();
    }
  });

  it('a worker that ran while the queue was small never scans the whole ready table after a fan-out', async () => {
    // Each session plans the functions' statements once; planned on a small table, a claim used to read
    // its rows by a scan of the whole table, and went on doing so once thousands of nodes were ready.
    const store = await open();
    const app = createApp({ store });
    try {
      const noop = app.task('noop', () => null);
      app.worker({ concurrency: 20, batchSize: 20 });
      for (let i = 0; i < 5; i++) await (await noop.delay()).get({ timeoutMs: 10_000 }); // plans made on a small table
      const run = await group(Array.from({ length: 2000 }, () => noop.s())).applyAsync();
      await run.get({ timeoutMs: 60_000 });
      await sleep(1200); // busy backends report their table counters every second
      // Scans of the whole table: the migrations' five index builds on it, reported maybe later, and no other.
      const { rows } = await admin!.query<{ n: string }>(`SELECT seq_scan AS n FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'ready'`, [store.schema]);
      expect(Number(rows[0]!.n)).toBeLessThanOrEqual(5); // over 150 before schema version 5 (one a claim)
    } finally {
      await app.close();
    }
  });

  it('concurrent claimers never take the same node (SKIP LOCKED), and appends conflict with CONCURRENCY and the run id', async () => {
    const store = await open();
    const others = await Promise.all([1, 2, 3].map(() => PostgresStore.open({ connectionString: url!, schema: store.schema, migrate: false, max: 2 })));
    try {
      const members = Array.from({ length: 60 }, (_, i) => sig('t', [i]));
      await store.append([{ runId: 'g', expectedVersion: 0, events: submitted({ kind: 'group', members }, await store.now()) }]);
      await store.append(Array.from({ length: 40 }, (_, i) => ({ runId: `s${i}`, expectedVersion: 0, events: submitted(sig('t'), 1) })));
      const all = [store, ...others];
      const claimed = (await Promise.all(all.flatMap((s, i) => [0, 1, 2, 3, 4].map(() => s.claim({ queues: ['default'], limit: 7, worker: `w${i}`, leaseMs: 60_000 }))))).flat();
      const rest = await store.claim({ queues: ['default'], limit: 200, worker: 'x', leaseMs: 60_000 });
      const keys = [...claimed, ...rest].map((c) => `${c.runId}/${c.nodeId}`);
      expect(new Set(keys).size).toBe(100);
      expect(keys).toHaveLength(100);
      const error = await store.append([{ runId: 'g', expectedVersion: 2, events: [{ type: 'NodesSkipped', at: 1, nodeIds: [], reason: 'x' }] }]).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'CONCURRENCY', details: { runId: 'g' } });
      expect((error as Error).message).toMatch(/run g is not at version 2: it is at version \d+/);
    } finally {
      await Promise.all(others.map((s) => s.close()));
      await store.close();
    }
  });

  it('a worker that did not submit the run records its outcome (the claim brings the log), reads its own writes, survives a stale copy', async () => {
    const submitter = await open();
    const worker = await PostgresStore.open({ connectionString: url!, schema: submitter.schema, migrate: false, max: 2 });
    try {
      const at = await submitter.now();
      await new Coordinator(submitter).submit('solo', compile(sig('t', [1])), at);
      await new Coordinator(submitter).submit('pair', compile({ kind: 'group', members: [sig('t', [1]), sig('t', [2])] }), at);
      const coordinator = new Coordinator(worker); // has cached nothing
      const claimed = await worker.claim({ queues: ['default'], limit: 10, worker: 'W', leaseMs: 60_000 });
      expect(claimed).toHaveLength(3);
      // Another process appends to "pair" after the claim: the worker's copy of its log is now stale.
      const other = claimed.find((c) => c.runId === 'pair')!;
      await new Coordinator(submitter).record([{ type: 'Release', runId: 'pair', nodeId: other.nodeId, leaseToken: other.leaseToken, reason: 'test', at }]);
      const done = (c: (typeof claimed)[number]) => ({ type: 'Complete' as const, runId: c.runId, nodeId: c.nodeId, attempt: c.attempt, leaseToken: c.leaseToken, outcome: { ok: true as const, value: 7 }, at });
      await coordinator.record(claimed.filter((c) => c !== other).map(done));
      expect(await worker.getRun('solo')).toMatchObject({ status: 'succeeded' });
      const pair = (await worker.readStream('pair')).map((s) => s.event.type);
      expect(pair.slice(-2)).toEqual(['NodeReleased', 'NodeSucceeded']); // decided on the fresh log, after the conflict
      expect((await worker.readStream('solo')).map((s) => s.event.type).slice(-1)).toEqual(['WorkflowSucceeded']);
    } finally {
      await worker.close();
      await submitter.close();
    }
  });

  describe('migrations', () => {
    it('are idempotent, and concurrent starts apply each version once', async () => {
      const schema = fresh();
      const stores = await Promise.all([1, 2, 3, 4, 5].map(() => PostgresStore.open({ connectionString: url!, schema, max: 1 })));
      await Promise.all(stores.map((s) => s.close()));
      const { rows } = await admin!.query(`SELECT version FROM "${schema}".lovage_migrations ORDER BY version`);
      expect(rows.map((r) => r.version)).toEqual(Array.from({ length: LATEST_VERSION }, (_, i) => i + 1));
      const pool = new pg.Pool({ connectionString: url!, max: 1 });
      try {
        expect(await migratePostgres(pool, schema)).toEqual({ schema, from: LATEST_VERSION, to: LATEST_VERSION });
      } finally {
        await pool.end();
      }
    });

    it('migrate: false refuses a schema that is not migrated, naming the command; a newer schema is refused', async () => {
      const schema = fresh();
      const error = await PostgresStore.open({ connectionString: url!, schema, migrate: false }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'VALIDATION' });
      expect((error as Error).message).toContain(`schema "${schema}" is at version 0, this Lovage needs version ${LATEST_VERSION}; run \`lovage migrate --store <url>\``);
      const store = await PostgresStore.open({ connectionString: url!, schema });
      await store.close();
      await admin!.query(`INSERT INTO "${schema}".lovage_migrations (version, name) VALUES (999, 'future')`);
      await expect(PostgresStore.open({ connectionString: url!, schema })).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    });

    /**
     * Across version 4 a store does not migrate as it opens (workers of the earlier Lovage, still running,
     * would quarantine new runs): it refuses, changing nothing, and names the command an operator runs
     * once they are stopped.
     */
    async function upgradeWithWorkersStopped(schema: string, from: number): Promise<void> {
      // Checked only (migrate: false): the advice is the command, not migrate: true, which refuses this schema.
      const checked = await PostgresStore.open({ connectionString: url!, schema, migrate: false }).then(async (s) => { await s.close(); return undefined; }, (e: unknown) => e);
      expect(checked).toMatchObject({ code: 'VALIDATION', message: expect.stringContaining(`is at version ${from}, this Lovage needs version ${LATEST_VERSION}; stop every worker of the earlier Lovage (version 4 needs it`) });
      expect((checked as Error).message).not.toContain('migrate: true');
      const refused = await PostgresStore.open({ connectionString: url!, schema }).then(async (s) => { await s.close(); return undefined; }, (e: unknown) => e);
      expect(refused).toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining(`is at version ${from}; version 4 needs every worker of the earlier Lovage stopped first`) });
      expect((refused as Error).message).toContain('lovage migrate --store <url>');
      const { rows } = await admin!.query(`SELECT max(version) AS v FROM "${schema}".lovage_migrations`);
      expect(rows[0].v).toBe(from);
      const pool = new pg.Pool({ connectionString: url!, max: 1 });
      try {
        expect(await migratePostgres(pool, schema)).toEqual({ schema, from, to: LATEST_VERSION });
      } finally {
        await pool.end();
      }
    }

    it('a schema left at version 1 by the previous Lovage upgrades: its queued and leased rows still work, countdowns wait', async () => {
      const schema = fresh();
      const clock = new ManualClock();
      const s = `"${schema}"`;
      const pool = new pg.Pool({ connectionString: url!, max: 1 });
      try {
        expect(await migratePostgres(pool, schema, { to: 1 })).toEqual({ schema, from: 0, to: 1 });
        await expect(PostgresStore.open({ connectionString: url!, schema, migrate: false })).rejects.toMatchObject({ code: 'VALIDATION' });
        // What the previous Lovage did: append through version 1's function, claim one node with a short lease.
        const { params } = buildAppend([
          { runId: 'leased', expectedVersion: 0, events: submitted(sig('t', [1]), clock.t) },
          { runId: 'queued', expectedVersion: 0, events: submitted(sig('t', [2]), clock.t) },
        ]);
        await pool.query(`SELECT ${s}.append_events($1, $2, $3, $4, $5, $6, NULL)`, [params.newRuns, params.oldRuns, params.events, params.ready, params.drop, params.lease]);
        const old = await pool.query(`SELECT * FROM ${s}.claim_nodes($1::text[], 1, 'old', 1000, $2::text[], $3::bigint)`, [['default'], ['tok'], clock.t]);
        expect(old.rows.map((r) => [r.run_id, r.attempt])).toEqual([['leased', 1]]);
      } finally {
        await pool.end();
      }
      await upgradeWithWorkersStopped(schema, 1);
      const store = await open({ schema, clock: clock.now });
      try {
        const { rows } = await admin!.query(`SELECT version FROM ${s}.lovage_migrations ORDER BY version`);
        expect(rows.map((r) => r.version)).toEqual(Array.from({ length: LATEST_VERSION }, (_, i) => i + 1));
        const indexes = await admin!.query<{ name: string; def: string }>(`SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE schemaname = $1`, [schema]);
        const def = (name: string) => indexes.rows.find((r) => r.name === name)?.def;
        expect(def('ready_fresh')).toMatch(/WHERE \(\(lease_token IS NULL\) AND \(available_at IS NULL\)\)/);
        expect(def('ready_delayed')).toMatch(/\(available_at\) WHERE \(available_at IS NOT NULL\)/);
        const canvas: CanvasData = { kind: 'group', members: [
          { kind: 'signature', task: 'later', args: [], immutable: false, options: { countdown: 5000, softTimeLimit: 100 } },
          sig('now'),
        ] };
        await store.append([{ runId: 'new', expectedVersion: 0, events: submitted(canvas, clock.t) }]);
        const first = await store.claim(claimReq('W'));
        expect(first.map((c) => `${c.runId}/${c.task}`).sort()).toEqual(['new/now', 'queued/t']);
        expect(first.every((c) => c.options === undefined)).toBe(true);
        clock.t += 5000;
        const second = await store.claim(claimReq('W'));
        expect(second.map((c) => [c.runId, c.task, c.attempt])).toEqual([['leased', 't', 2], ['new', 'later', 1]]); // the expired lease first
        expect(second[0]!.events.map((e) => e.event.type)).toEqual(['NodeLeaseExpired', 'NodeStarted']);
        expect(second[1]!.options).toEqual({ softTimeLimitMs: 100 });
      } finally {
        await store.close();
      }
    });

    it('a schema left at version 3 upgrades: its one-event rows read as before, new events follow them in one order', async () => {
      const schema = fresh();
      const clock = new ManualClock();
      const s = `"${schema}"`;
      const pool = new pg.Pool({ connectionString: url!, max: 1 });
      try {
        expect(await migratePostgres(pool, schema, { to: 3 })).toEqual({ schema, from: 0, to: 3 });
        // What the previous Lovage did: a group of two submitted through version 2's function (an events row
        // per event), one member claimed.
        const { params } = buildAppend([{ runId: 'old', expectedVersion: 0, events: submitted({ kind: 'group', members: [sig('t', [1]), sig('t', [2])] }, clock.t) }]);
        await pool.query(`SELECT ${s}.append_events($1, $2, $3, $4, $5, $6, NULL)`, [params.newRuns, params.oldRuns, params.events, params.ready, params.drop, params.lease]);
        await pool.query(`SELECT * FROM ${s}.claim_nodes($1::text[], 1, 'old', 60000, $2::text[], $3::bigint)`, [['default'], ['tok'], clock.t]);
      } finally {
        await pool.end();
      }
      await upgradeWithWorkersStopped(schema, 3);
      const store = await open({ schema, clock: clock.now });
      try {
        const before = await store.readStream('old');
        expect(before.map((e) => e.event.type)).toEqual(['WorkflowSubmitted', 'NodeReady', 'NodeReady', 'NodeStarted']);
        const started = before[3]!.event as Extract<WorkflowEvent, { type: 'NodeStarted' }>;
        const [other] = await store.claim(claimReq('new'));
        expect(other).toMatchObject({ runId: 'old', attempt: 1 });
        expect(other!.nodeId).not.toBe(started.nodeId);
        const coordinator = new Coordinator(store);
        await coordinator.record([
          { type: 'Complete', runId: 'old', nodeId: started.nodeId, attempt: 1, leaseToken: 'tok', outcome: { ok: true, value: 1 }, at: clock.t },
          { type: 'Complete', runId: 'old', nodeId: other!.nodeId, attempt: 1, leaseToken: other!.leaseToken, outcome: { ok: true, value: 2 }, at: clock.t },
        ]);
        expect(await store.getRun('old')).toMatchObject({ status: 'succeeded', version: 8 });
        const log = await store.readStream('old');
        expect(log.map((e) => e.event.type)).toEqual([
          'WorkflowSubmitted', 'NodeReady', 'NodeReady', 'NodeStarted', 'NodeStarted', 'NodeSucceeded', 'NodeSucceeded', 'WorkflowSucceeded',
        ]);
        expect(log.slice(0, 4)).toEqual(before);
        expect(log.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        const positions = log.map((e) => e.position);
        expect([...positions].sort((a, b) => a - b)).toEqual(positions);
        expect(new Set(positions).size).toBe(8);
        expect(await store.readStream('old', 6)).toEqual(log.slice(5));
        expect(await store.readAll()).toEqual(log);
        expect(await store.readAll(positions[4]!, 2)).toEqual(log.slice(5, 7));
      } finally {
        await store.close();
      }
    });

    it('lovage migrate --store applies them and says so', async () => {
      const schema = fresh();
      const out: string[] = [];
      const code = await main(['migrate', '--store', `${url!}?schema=${schema}`], { out: (l) => out.push(l), err: (l) => out.push(l) });
      expect(out.join('\n')).toContain(`schema "${schema}" migrated from version 0 to ${LATEST_VERSION}`);
      expect(code).toBe(0);
      const again: string[] = [];
      expect(await main(['migrate', '--store', `${url!}?schema=${schema}`], { out: (l) => again.push(l), err: (l) => again.push(l) })).toBe(0);
      expect(again.join('\n')).toContain(`is at version ${LATEST_VERSION}, nothing to do`);
    });
  });

  it('a delayed node that falls due competes with fresh ones by priority then age; rows still waiting are left alone', async () => {
    const clock = new ManualClock();
    const store = await open({ clock: clock.now });
    try {
      const node = (task: string, options: Record<string, unknown>): CanvasData => ({ kind: 'signature', task, args: [], immutable: false, options });
      await store.append([{ runId: 'a', expectedVersion: 0, events: submitted(node('due-high', { countdown: 1000, priority: 5 }), clock.t) }]);
      await store.append([{ runId: 'b', expectedVersion: 0, events: submitted(node('fresh-low', {}), clock.t) }]);
      await store.append([{ runId: 'c', expectedVersion: 0, events: submitted(node('due-low', { countdown: 500 }), clock.t) }]);
      await store.append([{ runId: 'd', expectedVersion: 0, events: submitted(node('much-later', { countdown: 60_000, priority: 9 }), clock.t) }]);
      clock.t += 1000;
      const one = { ...claimReq('W'), limit: 1 };
      expect((await store.claim(one)).map((c) => c.task)).toEqual(['due-high']);
      expect((await store.claim(one)).map((c) => c.task)).toEqual(['fresh-low']); // older than due-low
      expect((await store.claim(claimReq('W'))).map((c) => c.task)).toEqual(['due-low']);
      const { rows } = await admin!.query(`SELECT run_id, available_at::float8 AS t FROM "${store.schema}".ready WHERE available_at IS NOT NULL`);
      expect(rows).toEqual([{ run_id: 'd', t: clock.t - 1000 + 60_000 }]);
    } finally {
      await store.close();
    }
  });

  it('refuses a bad schema name before connecting, saying what is allowed', async () => {
    for (const schema of ['Lovage', '1abc', 'pg_x', 'a-b', '', 'x'.repeat(64), 'x"; DROP TABLE y; --']) {
      const error = await PostgresStore.open({ connectionString: 'postgres://nobody@127.0.0.1:1/none', schema }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LovageError);
      expect(error).toMatchObject({ code: 'VALIDATION' });
      expect((error as Error).message).toContain('allowed are 1-63 of a-z 0-9 _ (lowercase)');
    }
    await expect(openStore(`${url!}?schema=Bad`)).rejects.toMatchObject({ code: 'VALIDATION' });
  });

  it('store URLs: ?schema=, ?migrate= and ?max= are read; a server that does not answer is TIMEOUT, the password hidden', async () => {
    const schema = fresh();
    await expect(openStore(`${url!}?schema=${schema}&migrate=false`)).rejects.toMatchObject({ code: 'VALIDATION' });
    const store = await openStore(`${url!}?schema=${schema}&max=3`);
    expect(store).toBeInstanceOf(PostgresStore);
    expect((store as PostgresStore).schema).toBe(schema);
    expect((store as PostgresStore).pool.options.max).toBe(3);
    await store.close();
    for (const bad of ['0', '1001', '2.5', 'ten']) {
      await expect(openStore(`${url!}?schema=${schema}&max=${bad}`)).rejects.toThrow(new RegExp(`max=${bad.replace('.', '\\.')} is not allowed; allowed is the pool's size in connections, an integer from 1 to 1000`));
    }
    const error = await openStore('postgres://user:s3cret@127.0.0.1:1/app').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TIMEOUT' });
    expect((error as Error).message).toContain('postgres://user:***@127.0.0.1:1/app');
    expect((error as Error).message).not.toContain('s3cret');
  });

  describe("submitting in the caller's transaction", () => {
    it('pg client: commit, the run exists and is worked (others wake on commit); rollback, nothing', async () => {
      const store = await open();
      const watcher = await PostgresStore.open({ connectionString: url!, schema: store.schema, migrate: false, max: 1 });
      const app = createApp({ store });
      const add = app.task('add', (a: number, b: number) => a + b);
      const client = new pg.Client({ connectionString: url! });
      await client.connect();
      try {
        let woken = 0;
        watcher.onReady(() => woken++);
        await watcher.whenListening();
        await client.query('BEGIN');
        const run = await add.s(1, 2).applyAsync({ transaction: client });
        expect(await watcher.getRun(run.id)).toBeUndefined(); // not visible before commit
        await sleep(150);
        expect(woken).toBe(0); // no NOTIFY before commit
        await client.query('COMMIT');
        await vi.waitFor(() => expect(woken).toBe(1), { timeout: 2000, interval: 10 });
        app.worker({ pollMs: 50 });
        expect(await run.get({ timeoutMs: 10_000 })).toBe(3);

        await client.query('BEGIN');
        const gone = await add.s(2, 2).applyAsync({ transaction: client });
        await client.query('ROLLBACK');
        expect(await store.getRun(gone.id)).toBeUndefined();
        expect(await store.readStream(gone.id)).toEqual([]);
        expect(await store.claim(claimReq('x'))).toEqual([]);
      } finally {
        await client.end();
        await app.close();
        await watcher.close();
      }
    });

    it('kysely Transaction: commit keeps the run, a throw rolls it back; a pool is refused', async () => {
      const store = await open();
      const app = createApp({ store });
      const add = app.task('add', (a: number, b: number) => a + b);
      const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url!, max: 1 }) }) });
      try {
        const kept = await db.transaction().execute((trx) => add.s(1, 1).applyAsync({ transaction: trx }));
        expect(await store.getRun(kept.id)).toMatchObject({ status: 'running', version: 2 });
        const viaTask = await db.transaction().execute((trx) => add.applyAsync([2, 2], { transaction: trx }));
        expect(await store.getRun(viaTask.id)).toMatchObject({ status: 'running', version: 2 });
        let runId = '';
        await expect(db.transaction().execute(async (trx) => {
          runId = (await add.s(1, 1).applyAsync({ transaction: trx })).id;
          throw new Error('caller fails');
        })).rejects.toThrow('caller fails');
        expect(runId).not.toBe('');
        expect(await store.getRun(runId)).toBeUndefined();
        await expect(add.s(1, 1).applyAsync({ transaction: store.pool })).rejects.toMatchObject({ code: 'VALIDATION' });
        await expect(add.s(1, 1).applyAsync({ transaction: db })).rejects.toMatchObject({ code: 'VALIDATION' });
      } finally {
        await db.destroy();
        await app.close();
      }
    });
  });

  it("LISTEN/NOTIFY: a second store's onReady fires when the first appends", async () => {
    const a = await open();
    const b = await PostgresStore.open({ connectionString: url!, schema: a.schema, migrate: false, max: 1 });
    const other = await open(); // another schema on the same database: its appends wake nobody here
    try {
      let woken = 0;
      b.onReady(() => woken++);
      await b.whenListening();
      await other.append([{ runId: 'o', expectedVersion: 0, events: submitted(sig('t'), 1) }]);
      await a.append([{ runId: 'r', expectedVersion: 0, events: [{ type: 'WorkflowSubmitted', at: 1, dag: compile(sig('t')) }] }]);
      await sleep(150);
      expect(woken).toBe(0); // neither another schema's NodeReady nor an append without NodeReady
      await a.append([{ runId: 'r2', expectedVersion: 0, events: submitted(sig('t'), 1) }]);
      await vi.waitFor(() => expect(woken).toBe(1), { timeout: 2000, interval: 5 });
    } finally {
      await b.close();
      await other.close();
      await a.close();
    }
  });

  it('close ends the store\'s own pool, even when only the hot path (never kysely) used it; a pool of the caller\'s stays open', async () => {
    const store = await PostgresStore.open({ connectionString: url!, schema: fresh(), max: 3 });
    await store.claim({ queues: ['default'], limit: 1, worker: 'w', leaseMs: 1000 });
    expect(store.pool.totalCount).toBeGreaterThan(0);
    await store.close();
    expect(store.pool.ended).toBe(true);
    expect(store.pool.totalCount).toBe(0);
    const pool = new pg.Pool({ connectionString: url!, max: 2 });
    try {
      const borrowed = await PostgresStore.open({ pool, schema: store.schema });
      await borrowed.close();
      expect(pool.ended).toBe(false);
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
      await admin!.query(`DROP SCHEMA IF EXISTS "${store.schema}" CASCADE`);
    }
  });

  it("leases run on the database's clock, never the worker's", async () => {
    const store = await open();
    try {
      const { rows } = await admin!.query<{ now: number }>(`SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now`);
      expect(Math.abs((await store.now()) - rows[0]!.now)).toBeLessThan(1000);
      await store.append([{ runId: 'r1', expectedVersion: 0, events: submitted(sig('t'), await store.now()) }]);
      const [a] = await store.claim({ ...claimReq('A'), leaseMs: 300 });
      expect(a!.leaseExpiresAt - a!.events[0]!.event.at).toBe(300);
      const skew = vi.spyOn(Date, 'now').mockReturnValue(Date.now() + 3_600_000); // this process's clock is an hour ahead
      try {
        expect(await store.claim({ ...claimReq('B'), leaseMs: 300 })).toEqual([]);
      } finally {
        skew.mockRestore();
      }
      await sleep(350);
      const [b] = await store.claim({ ...claimReq('B'), leaseMs: 300 });
      expect(b!.events.map((s) => s.event.type)).toEqual(['NodeLeaseExpired', 'NodeStarted']);
      expect(b!.attempt).toBe(2);
    } finally {
      await store.close();
    }
  });

  describe('races, forced with a transaction held open on a client of its own', () => {
    const clients: pg.Client[] = [];
    afterAll(async () => {
      for (const c of clients.splice(0)) await c.end().catch(() => undefined);
    });
    /** A client inside BEGIN: what it appends or claims holds its rows until the test commits. */
    async function held(): Promise<pg.Client> {
      const c = new pg.Client({ connectionString: url! });
      clients.push(c);
      await c.connect();
      await c.query('BEGIN');
      return c;
    }
    /** Resolves to 'pending' if `p` has not settled within `ms`. */
    const within = <T>(p: Promise<T>, ms: number) => Promise.race([p.then((v) => ({ v }), (e: unknown) => ({ e })), sleep(ms).then(() => 'pending' as const)]);
    /** Events and ready rows of runs that no longer exist. */
    async function orphans(s: string): Promise<{ events: number; ready: number }> {
      const { rows } = await admin!.query(`SELECT (SELECT count(*)::int FROM "${s}".events e WHERE NOT EXISTS (SELECT 1 FROM "${s}".runs u WHERE u.run_key = e.run_key)) AS events,
        (SELECT count(*)::int FROM "${s}".ready d WHERE NOT EXISTS (SELECT 1 FROM "${s}".runs u WHERE u.run_key = d.run_key)) AS ready`);
      return rows[0] as { events: number; ready: number };
    }
    const readyX = (at: number): WorkflowEvent => ({ type: 'NodeReady', at, nodeId: 'x', task: 't', args: [], queue: 'default', priority: 0 });

    it('deleteRuns waits for an append or a claim of the run, then deletes what they wrote too', async () => {
      const clock = new ManualClock();
      const store = await open({ clock: clock.now });
      try {
        for (const via of ['append', 'claim'] as const) {
          await store.append([{ runId: 'r', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
          const tx = await held();
          if (via === 'append') await store.append([{ runId: 'r', expectedVersion: 2, events: [readyX(clock.t)] }], { transaction: tx });
          else expect((await tx.query(`SELECT * FROM "${store.schema}".claim_nodes($1::text[], 1, 'W', 60000, $2::text[], $3::bigint)`, [['default'], ['tok'], clock.t])).rows).toHaveLength(1);
          const deleted = store.deleteRuns(['r']);
          expect(await within(deleted, 300)).toBe('pending'); // it waits for the run row
          await tx.query('COMMIT');
          expect(await deleted).toBe(1);
          expect(await store.getRun('r')).toBeUndefined();
          expect({ via, ...(await orphans(store.schema)) }).toEqual({ via, events: 0, ready: 0 });
        }
      } finally {
        await store.close();
      }
    });

    it('quarantine waits for an append of the run, then takes its new ready rows out of the queue too', async () => {
      const clock = new ManualClock();
      const store = await open({ clock: clock.now });
      try {
        await store.append([{ runId: 'r', expectedVersion: 0, events: submitted(sig('t'), clock.t) }]);
        await store.claim(claimReq('W')); // node 0 leased: version 3
        const tx = await held();
        await store.append([{ runId: 'r', expectedVersion: 3, events: [readyX(clock.t)] }], { transaction: tx });
        const quarantined = store.quarantine('r', 'log does not fold');
        expect(await within(quarantined, 300)).toBe('pending');
        await tx.query('COMMIT');
        await quarantined;
        expect(await store.getRun('r')).toMatchObject({ status: 'quarantined' });
        expect(await store.claim(claimReq('W2'))).toEqual([]);
      } finally {
        await store.close();
      }
    });

    it('a heartbeat never waits for an append that changes the same leases (no deadlock): a lease an append holds counts as lost; one given twice is held twice', async () => {
      const clock = new ManualClock();
      const store = await open({ clock: clock.now });
      try {
        await store.append([{ runId: 'r', expectedVersion: 0, events: submitted({ kind: 'group', members: Array.from({ length: 3 }, (_, i) => sig('t', [i])) }, clock.t) }]);
        const [a, b, c] = await store.claim({ queues: ['default'], limit: 3, worker: 'W', leaseMs: 1000 });
        expect(await store.extend([a!, a!, b!], 1000)).toEqual([true, true, true]);
        // An append holding b's and c's rows (their outcomes on their way): extend answers at once.
        const tx = await held();
        const version = (await store.getRun('r'))!.version;
        await store.append([{ runId: 'r', expectedVersion: version, events: [b!, c!].map((n) => ({ type: 'NodeReleased' as const, at: clock.t, nodeId: n.nodeId, attempt: n.attempt, reason: 'x' })) }], { transaction: tx });
        expect(await within(store.extend([c!, a!, b!], 1000), 1000)).toEqual({ v: [false, true, false] });
        await tx.query('ROLLBACK');
        expect(await store.extend([c!, a!, b!], 1000)).toEqual([true, true, true]);
      } finally {
        await store.close();
      }
    });
  });
});

// PEER: raw better-sqlite3 claim+complete cycles on a minimal queue table — the floor under any
// SQLite-backed queue on this machine, measured in the same run as W1 so the ratio is fair.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { count, ms, withTempDir, type BenchContext, type Workload } from './harness.ts';

const BATCH = 100;

/** Pre-fills `n` jobs, then claims (select+update) and completes (delete) them in batches of 100. */
export async function rawSqliteRate(n: number): Promise<{ timeMs: number; rate: number }> {
  return withTempDir(async (dir) => {
    const db = new Database(join(dir, 'peer.db'));
    try {
      // The same settings as the Lovage SQLite store.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(`CREATE TABLE jobs (
        id INTEGER PRIMARY KEY, queue TEXT NOT NULL, payload TEXT NOT NULL,
        locked_by TEXT, locked_until INTEGER)`);
      db.exec('CREATE INDEX jobs_fresh ON jobs (queue, id) WHERE locked_by IS NULL');
      const insert = db.prepare('INSERT INTO jobs (queue, payload) VALUES (?, ?)');
      db.transaction(() => {
        for (let i = 0; i < n; i++) insert.run('default', JSON.stringify({ task: 'noop', args: [i] }));
      })();

      const select = db.prepare<[string, number], { id: number; payload: string }>(
        'SELECT id, payload FROM jobs WHERE queue = ? AND locked_by IS NULL ORDER BY id LIMIT ?');
      const lock = db.prepare('UPDATE jobs SET locked_by = ?, locked_until = ? WHERE id = ?');
      const remove = db.prepare('DELETE FROM jobs WHERE id = ?');
      const claim = db.transaction((worker: string) => {
        const rows = select.all('default', BATCH);
        const until = Date.now() + 30_000;
        for (const r of rows) lock.run(worker, until, r.id);
        return rows;
      });
      const complete = db.transaction((ids: number[]) => {
        for (const id of ids) remove.run(id);
      });
      const noop = (_args: unknown): null => null;

      const t0 = performance.now();
      let done = 0;
      for (;;) {
        const rows = claim.immediate('peer');
        if (rows.length === 0) break;
        const ids: number[] = [];
        for (const r of rows) {
          noop((JSON.parse(r.payload) as { args: unknown }).args);
          ids.push(r.id);
        }
        complete.immediate(ids);
        done += rows.length;
      }
      const timeMs = performance.now() - t0;
      if (done !== n) throw new Error(`peer completed ${done} of ${n} jobs`);
      return { timeMs, rate: (n / timeMs) * 1000 };
    } finally {
      db.close();
    }
  });
}

export const peerSqlite: Workload = {
  id: 'PEER',
  title: 'raw better-sqlite3 claim+complete, batches of 100',
  async run(ctx: BenchContext) {
    const n = ctx.scale(100_000);
    await rawSqliteRate(Math.min(n, 5000)); // warm-up: the peer runs first, in a cold process
    const { timeMs, rate } = await rawSqliteRate(n);
    ctx.shared.set('peerRate', rate);
    ctx.report({ workload: 'PEER raw SQLite queue', size: `${count(n)} jobs`, timeMs, rate: `${count(rate)} jobs/s`, budget: '', note: `claim+complete cycles in ${ms(timeMs)}` });
  },
};

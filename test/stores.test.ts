import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/eventstore/memory.ts';
import { SqliteStore } from '../src/eventstore/sqlite.ts';
import { storeConformance } from './support/store-conformance.ts';

const dir = mkdtempSync(join(tmpdir(), 'lovage-stores-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

storeConformance('memory', async (clock) => new MemoryStore({ clock: clock.now }));
storeConformance('sqlite (file)', async (clock) => SqliteStore.open({ path: join(dir, `s${n++}.db`), clock: clock.now }));

describe('SQLite schema versions', () => {
  it('a file at a newer schema version than this Lovage knows is refused, named, and left as it was', async () => {
    const path = join(dir, 'newer.db');
    const store = await SqliteStore.open({ path });
    store.db.prepare('INSERT INTO lovage_migrations (version, applied_at) VALUES (99, 0)').run();
    await store.close();
    await expect(SqliteStore.open({ path })).rejects.toThrow(/schema version 99, newer than this Lovage knows \(\d+\); upgrade Lovage to open it/);
    // Refused without a change: the file still says version 99.
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT max(version) AS v FROM lovage_migrations').get()).toEqual({ v: 99 });
    raw.close();
    rmSync(path);
  });
});

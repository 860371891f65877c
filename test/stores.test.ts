import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { MemoryStore } from '../src/eventstore/memory.ts';
import { SqliteStore } from '../src/eventstore/sqlite.ts';
import { storeConformance } from './support/store-conformance.ts';

const dir = mkdtempSync(join(tmpdir(), 'lovage-stores-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

storeConformance('memory', async (clock) => new MemoryStore({ clock: clock.now }));
storeConformance('sqlite (file)', async (clock) => SqliteStore.open({ path: join(dir, `s${n++}.db`), clock: clock.now }));

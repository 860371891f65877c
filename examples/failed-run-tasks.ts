// The tasks of examples/failed-run.ts, as a module a worker can load:
//   npx lovage worker --app examples/failed-run-tasks.ts --store sqlite:./.lovage/failed-run.db
// `price` fails for the SKUs listed in the flag file .lovage/price.flag (delete it to "fix the price service").
import { existsSync, readFileSync } from 'node:fs';
import { createApp } from '../src/index.ts';

/** The flag file: `price` fails for the SKUs it lists. */
export const FLAG = '.lovage/price.flag';

/** The app (its store comes from LOVAGE_STORE, which `lovage worker --store` sets). */
export const app = createApp();

export const load = app.task('load', (orderId: number, lines: number) => Array.from({ length: lines }, (_, i) => orderId * 10 + i));
export const count = app.task('count', (items: number[]) => items.length);
export const price = app.task('price', (n: number, sku: string) => {
  if (existsSync(FLAG) && readFileSync(FLAG, 'utf8').split(/\s+/).includes(sku)) throw new Error(`price service unavailable for ${sku} (remove ${FLAG} to fix)`);
  return n * (sku.length + 1);
});
export const tax = app.task('tax', (n: number, rate: number) => Math.round(n * rate));
export const total = app.task('total', (parts: number[]) => parts.reduce((a, b) => a + b, 0));
export const archive = app.task('archive', (orderId: number) => `archived ${orderId}`, { queue: 'nightly' });

// The app module of bench/pools.ts's threads pool: one no-op task.
import { createApp, type App } from '../src/index.ts';

export function defineNoop(app: App) {
  return app.task('noop', (i: number) => i);
}

export const app = createApp();
defineNoop(app);

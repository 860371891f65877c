// How a module's app is found: `lovage worker --app` and the threads pool's threads both look here.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { App } from './app.ts';

/** Whether `value` looks like the object createApp() makes. */
export function isApp(value: unknown): value is App {
  const v = value as Partial<App> | null | undefined;
  return typeof v === 'object' && v !== null && typeof v.worker === 'function' && typeof v.close === 'function' && typeof v.store === 'function';
}

/** The app a module exports: `export const app = createApp(...)`, else the default export. */
export function exportedApp(mod: { app?: unknown; default?: unknown }): App | undefined {
  return isApp(mod.app) ? mod.app : isApp(mod.default) ? mod.default : undefined;
}

/** What an app module is called in messages. */
export const noAppExported = 'the module exports no app; export the object made by createApp() as `app` (export const app = createApp(...)) or as the default export';

/**
 * A module named by a path (relative to the working directory) or a `file:` URL, as a file URL and
 * a file path; `undefined` when no such file exists.
 */
export function moduleFile(spec: string): { url: string; file: string } | undefined {
  let file: string;
  try {
    file = spec.startsWith('file:') ? fileURLToPath(spec) : resolve(spec);
  } catch {
    return undefined;
  }
  return existsSync(file) ? { url: pathToFileURL(file).href, file } : undefined;
}

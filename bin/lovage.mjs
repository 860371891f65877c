#!/usr/bin/env node
// The `lovage` command. tsx's loader is registered first so that the CLI and the user's task
// modules (`--app ./tasks.ts`) load as TypeScript without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exit(await main(process.argv.slice(2)));

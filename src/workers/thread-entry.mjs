// The entry of a threads-pool thread (src/workers/threads.ts). Plain JavaScript, so that it loads
// before any TypeScript can: it registers tsx's loader in this thread (a worker thread does not
// inherit a loader registered with `register()` in the main thread), then loads the thread's code
// and, through it, the app module, which may be TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./thread-main.ts');

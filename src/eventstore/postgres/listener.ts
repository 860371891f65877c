import pg from 'pg';
import { Signal, type AppendRequest } from '../store.ts';
import { CHANNEL } from './functions-sql.ts';

/**
 * One dedicated connection that LISTENs for the store's NOTIFY and wakes local `onReady` listeners.
 * Started by the first listener, so processes that only submit hold no extra connection. A lost
 * connection is opened again with backoff; listeners are woken once it is back (notifications sent
 * while it was away are lost: the worker's slow poll covers that gap).
 */
export class ReadyListener {
  readonly #config: pg.ClientConfig;
  readonly #schema: string;
  readonly #origin: string;
  readonly #signal = new Signal();
  readonly #onError: (e: unknown) => void;
  #client: pg.Client | undefined;
  #retry: NodeJS.Timeout | undefined;
  #backoffMs = 100;
  #closed = false;
  #connectedOnce = false;
  #connecting = false;
  #up: { promise: Promise<void>; resolve: () => void } | undefined;

  /** `origin`: this store's id; its own notifications are skipped (it wakes its listeners itself). */
  constructor(config: pg.ClientConfig, schema: string, origin: string, onError: (e: unknown) => void) {
    this.#config = config;
    this.#schema = schema;
    this.#origin = origin;
    this.#onError = onError;
  }

  /** Adds a listener (connecting on the first); returns the unsubscribe. */
  on(listener: () => void): () => void {
    // The connection stays once opened (until close): listeners come and go with workers.
    if (!this.#client && !this.#retry) void this.#connect();
    return this.#signal.on(listener);
  }

  /** Resolves once the LISTEN connection is up (connecting if no listener did yet). */
  whenListening(): Promise<void> {
    if (this.#client) return Promise.resolve();
    if (!this.#up) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#up = { promise, resolve };
    }
    if (!this.#client && !this.#retry) void this.#connect();
    return this.#up.promise;
  }

  /** Wakes local listeners (for this store's own appends). */
  emit(): void {
    this.#signal.emit();
  }

  /** Wakes local listeners when the nodes these appends hold back fall due (see Signal.emitWhenDue). */
  emitWhenDue(requests: readonly AppendRequest[]): void {
    this.#signal.emitWhenDue(requests);
  }

  async #connect(): Promise<void> {
    if (this.#closed || this.#connecting) return;
    this.#connecting = true;
    try {
      await this.#open();
    } finally {
      this.#connecting = false;
    }
  }

  async #open(): Promise<void> {
    this.#retry = undefined;
    const client = new pg.Client({ ...this.#config, application_name: 'lovage-listen' });
    client.on('error', () => undefined); // an 'end' follows; reconnecting happens there
    client.on('notification', (msg) => {
      if (msg.channel !== CHANNEL || msg.payload === undefined) return;
      const slash = msg.payload.indexOf('/');
      if (msg.payload.slice(0, slash) === this.#schema && msg.payload.slice(slash + 1) !== this.#origin) this.#signal.emit();
    });
    client.on('end', () => {
      if (this.#client === client) this.#client = undefined;
      this.#schedule();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (e) {
      this.#onError(e);
      await client.end().catch(() => undefined);
      this.#schedule();
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#backoffMs = 100;
    this.#up?.resolve();
    this.#up = undefined;
    // Back after a lost connection: wake listeners for whatever was notified meanwhile.
    if (this.#connectedOnce) this.#signal.emit();
    this.#connectedOnce = true;
  }

  #schedule(): void {
    if (this.#closed || this.#retry || this.#client) return;
    this.#retry = setTimeout(() => void this.#connect(), this.#backoffMs);
    this.#retry.unref();
    this.#backoffMs = Math.min(5_000, this.#backoffMs * 2);
  }

  /** Whether the LISTEN connection is up (for tests). */
  get listening(): boolean {
    return this.#client !== undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#signal.close();
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }
}

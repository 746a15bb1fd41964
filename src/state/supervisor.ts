/**
 * The store for workers on one machine, with nothing to install: the supervisor process holds
 * the store (memory, or Redis for a fleet of machines) and answers its workers over the IPC
 * channel node:cluster and child_process already give them. `serveStore` runs in the supervisor,
 * once per worker; `SupervisorStore` runs in the worker and speaks the StateStore interface.
 * Messages are plain objects tagged `gangwayStore`, so they share the channel with whatever else
 * the supervisor and its workers say to each other.
 */
import { STORE_OPERATIONS, type StateStore, type StoreOperation } from './store.js';

/** What node:cluster's Worker, a ChildProcess and a child's `process` all offer. */
export interface StoreChannel {
  /** With a callback, a failed send is handed to it instead of emitted as an 'error' event. */
  send(message: unknown, callback?: (error: Error | null) => void): unknown;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

type StoreMessage =
  | { gangwayStore: 'call'; id: number; op: StoreOperation; args: unknown[] }
  | { gangwayStore: 'reply'; id: number; value?: unknown; error?: string }
  | { gangwayStore: 'message'; channel: string; message: string }
  | { gangwayStore: 'connection'; up: boolean; reason?: string };

const OPERATIONS: ReadonlySet<string> = new Set(STORE_OPERATIONS);
/** How long a worker remembers a call its supervisor has not answered. */
const FORGET_AFTER_MS = 10_000;

function isStoreMessage(m: unknown): m is StoreMessage {
  return typeof m === 'object' && m !== null && typeof (m as { gangwayStore?: unknown }).gangwayStore === 'string';
}

/**
 * A channel whose other end went away fails its sends — by throwing, or, without a callback, by
 * an 'error' event that would end the supervisor; the worker's restart is the supervisor's business.
 */
function post(channel: StoreChannel, message: StoreMessage): void {
  try {
    channel.send(message, ignoreSendError);
  } catch {
    // The worker is gone; nothing is waiting for this answer.
  }
}

function ignoreSendError(): void {}

/**
 * Answers one worker's store calls from `store`, and passes on what it subscribed to, until the
 * returned function is called (the worker exited): from then on nothing is sent to it.
 */
export function serveStore(store: StateStore, channel: StoreChannel): () => void {
  let serving = true;
  const subscribed = new Set<string>();
  store.onConnection((up, reason) => {
    if (serving) post(channel, { gangwayStore: 'connection', up, reason });
  });
  channel.on('message', (m) => {
    if (!isStoreMessage(m) || m.gangwayStore !== 'call') return;
    const { id, op, args } = m;
    if (!OPERATIONS.has(op) || !Array.isArray(args)) {
      post(channel, { gangwayStore: 'reply', id, error: `no store operation "${String(op)}"` });
      return;
    }
    let result: Promise<unknown>;
    if (op === 'subscribe') {
      const name = String(args[0]);
      result = subscribed.has(name)
        ? Promise.resolve()
        : store.subscribe(name, (message) => {
            if (serving) post(channel, { gangwayStore: 'message', channel: name, message });
          });
      subscribed.add(name);
    } else {
      // JSON carries no undefined: a removed hash field arrives as null.
      if (op === 'hashSet' && args[2] === null) args[2] = undefined;
      result = (store[op] as (...a: unknown[]) => Promise<unknown>).apply(store, args);
    }
    result.then(
      (value) => post(channel, { gangwayStore: 'reply', id, value }),
      (err: Error) => post(channel, { gangwayStore: 'reply', id, error: err.message || String(err) }),
    );
  });
  return () => {
    serving = false;
  };
}

/** The store as a worker sees it: every call a message to the supervisor, answered by id. */
export class SupervisorStore implements StateStore {
  readonly kind = 'supervisor' as const;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly listeners = new Map<string, Set<(message: string) => void>>();
  private readonly connectionListeners: Array<(up: boolean, reason?: string) => void> = [];

  constructor(private readonly channel: StoreChannel) {
    channel.on('message', (m) => {
      if (!isStoreMessage(m)) return;
      if (m.gangwayStore === 'reply') {
        const w = this.waiting.get(m.id);
        if (w === undefined) return;
        this.waiting.delete(m.id);
        if (m.error !== undefined) w.reject(new Error(m.error));
        else w.resolve(m.value);
      } else if (m.gangwayStore === 'message') {
        for (const l of this.listeners.get(m.channel) ?? []) l(m.message);
      } else if (m.gangwayStore === 'connection') {
        for (const l of this.connectionListeners) l(m.up, m.reason);
      }
    });
  }

  get(key: string): Promise<string | undefined> {
    return this.call('get', [key]) as Promise<string | undefined>;
  }
  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    await this.call('set', ttlMs === undefined ? [key, value] : [key, value, ttlMs]);
  }
  claim(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.call('claim', [key, owner, ttlMs]) as Promise<boolean>;
  }
  release(key: string, owner: string): Promise<boolean> {
    return this.call('release', [key, owner]) as Promise<boolean>;
  }
  hashAll(key: string): Promise<Record<string, string>> {
    return this.call('hashAll', [key]) as Promise<Record<string, string>>;
  }
  async hashSet(key: string, field: string, value: string | undefined): Promise<void> {
    await this.call('hashSet', [key, field, value]);
  }
  async append(key: string, value: string, keep: number): Promise<void> {
    await this.call('append', [key, value, keep]);
  }
  recent(key: string, count: number): Promise<string[]> {
    return this.call('recent', [key, count]) as Promise<string[]>;
  }
  async publish(channel: string, message: string): Promise<void> {
    await this.call('publish', [channel, message]);
  }
  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    let set = this.listeners.get(channel);
    const first = set === undefined;
    if (set === undefined) {
      set = new Set();
      this.listeners.set(channel, set);
    }
    set.add(listener);
    if (first) await this.call('subscribe', [channel]);
  }
  lease(
    buckets: readonly string[],
    owed: readonly number[],
    asked: readonly number[],
    perMs: number,
    burst: number,
  ): Promise<number[]> {
    return this.call('lease', [buckets, owed, asked, perMs, burst]) as Promise<number[]>;
  }
  heartbeat(instance: string, ttlMs: number): Promise<number> {
    return this.call('heartbeat', [instance, ttlMs]) as Promise<number>;
  }
  onConnection(listener: (up: boolean, reason?: string) => void): void {
    this.connectionListeners.push(listener);
  }
  async close(): Promise<void> {
    for (const w of this.waiting.values()) w.reject(new Error('the store was closed'));
    this.waiting.clear();
  }

  private call(op: StoreOperation, args: unknown[]): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // A supervisor that never answers (it restarted) must not keep the call forever; the
      // caller's deadline has long passed by then.
      setTimeout(() => {
        if (!this.waiting.delete(id)) return;
        reject(new Error('the supervisor did not answer'));
      }, FORGET_AFTER_MS).unref();
      // A supervisor gone fails the send (to the callback, not as an 'error' event ending the
      // worker, which drains on its own once it notices).
      const failed = (err: Error | null): void => {
        if (err === null || !this.waiting.delete(id)) return;
        reject(err);
      };
      try {
        this.channel.send({ gangwayStore: 'call', id, op, args } satisfies StoreMessage, failed);
      } catch (err) {
        failed(err as Error);
      }
    });
  }
}

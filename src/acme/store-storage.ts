/**
 * ACME's storage in the shared state store, for a fleet whose instances share a Redis
 * (`store.redis`): one account key, one certificate per name and one issuance lock for every
 * instance, so a name is ordered once for the whole fleet instead of once per machine (Let's
 * Encrypt allows 5 duplicate certificates a week). The directory stays the default: with this
 * storage Redis holds private keys (docs/operations.md says how to guard it).
 *
 * Keys, under the store's prefix, one family per CA (as the directory keeps a folder per CA):
 *
 *   acme:<ca>:account        the account key (PKCS#8 PEM), set once: the first writer wins
 *   acme:<ca>:cert:<name>    {"cert": chain, "key": private key} as JSON, written in one SET
 *   acme:<ca>:lock:<name>    the issuance lock: its owner (host, pid, a random tag) for a time
 *   acme:<ca>:retry:<name>   after a failed order, when to try again (expires then)
 *
 * The lock is a claim with a time to live, extended while its holder works, so a holder killed
 * part way (SIGKILL, a machine lost) blocks the others for one `lockTimeout` at most. Every call
 * has a deadline: ACME works in the background, so it is seconds, not the request path's
 * milliseconds, and a store that is away fails the call (an order then waits and tries again).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { StateStore } from '../state/store.js';
import { type AcmeStorage, caFolder, type StoredCertificate } from './storage.js';

/** Longest wait for one store call made by ACME. */
const STORAGE_DEADLINE_MS = 3000;

export class StoreStorage implements AcmeStorage {
  readonly location: string;
  private readonly prefix: string;
  /** Names whose lock, taken by this process, another process holds now. */
  private readonly lost = new Set<string>();

  constructor(
    private readonly store: StateStore,
    directoryUrl: string,
    /** How long a lock outlives a holder that stopped extending it. */
    private readonly lockTimeoutMs: number,
    private readonly onLockLost: (name: string, reason: string) => void = () => undefined,
  ) {
    this.prefix = `acme:${caFolder(directoryUrl)}:`;
    this.location = `the ${store.kind} store (${this.prefix}*)`;
  }

  readAccountKey(): Promise<string | undefined> {
    return within(this.store.get(`${this.prefix}account`));
  }

  async writeAccountKey(pem: string): Promise<string> {
    // A claim that never expires in practice: set only when no key is there yet.
    const key = `${this.prefix}account`;
    await within(this.store.claim(key, pem, ACCOUNT_KEY_TTL_MS));
    return (await within(this.store.get(key))) ?? pem;
  }

  async readCertificate(name: string): Promise<StoredCertificate | undefined> {
    const text = await within(this.store.get(`${this.prefix}cert:${name.toLowerCase()}`));
    if (text === undefined) return undefined;
    const parsed = JSON.parse(text) as Partial<StoredCertificate>;
    if (typeof parsed.cert !== 'string' || typeof parsed.key !== 'string')
      throw new Error('the stored certificate has no chain or no key');
    return { cert: parsed.cert, key: parsed.key };
  }

  async writeCertificate(name: string, certificate: StoredCertificate): Promise<void> {
    // One value holds chain and key: a reader never sees one without the other.
    const value = JSON.stringify({ cert: certificate.cert, key: certificate.key });
    await within(this.store.set(`${this.prefix}cert:${name.toLowerCase()}`, value));
  }

  async writeRetryAt(name: string, at: number): Promise<void> {
    const ttl = Math.max(1, at - Date.now());
    await within(this.store.set(`${this.prefix}retry:${name.toLowerCase()}`, String(at), ttl));
  }

  async readRetryAt(name: string): Promise<number | undefined> {
    const text = await within(this.store.get(`${this.prefix}retry:${name.toLowerCase()}`));
    const at = Number(text);
    return text === undefined || Number.isNaN(at) ? undefined : at;
  }

  lockLost(name: string): boolean {
    return this.lost.has(name.toLowerCase());
  }

  async lock(name: string): Promise<(() => Promise<void>) | undefined> {
    const key = `${this.prefix}lock:${name.toLowerCase()}`;
    const owner = `${hostname()} ${process.pid} ${randomBytes(4).toString('hex')}`;
    if (!(await within(this.store.claim(key, owner, this.lockTimeoutMs)))) return undefined;
    this.lost.delete(name.toLowerCase());
    // Extended three times per timeout: a missed extension or two (a slow store) does not lose it.
    const keep = setInterval(() => {
      within(this.store.claim(key, owner, this.lockTimeoutMs)).then(
        (kept) => {
          if (kept) return;
          // Another holds it: nothing left to extend.
          clearInterval(keep);
          this.lost.add(name.toLowerCase());
          this.onLockLost(name, 'another gateway holds it now');
        },
        (err: Error) => this.onLockLost(name, err.message),
      );
    }, this.lockTimeoutMs / 3);
    keep.unref();
    return async () => {
      clearInterval(keep);
      await within(this.store.release(key, owner));
    };
  }
}

/** The account key is set once; its claim's time is a formality (about 30 years). */
const ACCOUNT_KEY_TTL_MS = 1e12;

/** A store call that gives up after STORAGE_DEADLINE_MS. */
function within<T>(work: Promise<T>): Promise<T> {
  return storeCall(work, STORAGE_DEADLINE_MS);
}

/** A store call that gives up after `ms` (it may still be carried out). */
export function storeCall<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the state store did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

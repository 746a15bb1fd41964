/**
 * Where ACME keeps what must outlive the process: the account key, and each name's
 * certificate chain and private key. `AcmeStorage` is the seam: a directory on disk today
 * (`acme.storage`), the shared state store later, so that a fleet of gateways shares one
 * account, one certificate per name and an issuance lock instead of each ordering its own.
 *
 * The directory's layout, one folder per CA so that certificates from a staging CA are never
 * served once the directory URL points at production:
 *
 *   <storage>/<ca>/account.key                   the account key (PKCS#8 PEM)
 *   <storage>/<ca>/certificates/<name>/cert.pem   the chain, leaf first
 *   <storage>/<ca>/certificates/<name>/key.pem    its private key
 *   <storage>/<ca>/certificates/<name>/lock       held while a gateway orders for the name
 *   <storage>/<ca>/certificates/<name>/retry-at   after a failed order: when to try again
 *
 * Files are written 0600 in folders 0700, each through a temporary file renamed into place,
 * so a crash part way never leaves a certificate without its key or half a key.
 */
import { link, mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

export interface StoredCertificate {
  /** PEM chain, leaf first. */
  cert: string;
  /** PEM private key. */
  key: string;
}

export interface AcmeStorage {
  /** Where this storage is, for log lines. */
  readonly location: string;
  readAccountKey(): Promise<string | undefined>;
  /**
   * Stores a new account key unless one is there already: the first writer wins, and every
   * caller is answered the key in force, so gateways starting together share one account.
   */
  writeAccountKey(pem: string): Promise<string>;
  readCertificate(name: string): Promise<StoredCertificate | undefined>;
  writeCertificate(name: string, certificate: StoredCertificate): Promise<void>;
  /**
   * Takes the issuance lock for a name, so that gateways sharing this storage do not order
   * the same certificate at once; resolves with its release, or undefined while another holds it.
   */
  lock(name: string): Promise<(() => Promise<void>) | undefined>;
  /**
   * Whether the lock taken last for this name has since passed to another process (a shared store
   * that lost it — say, restarted empty): an order under way stops before it would be a duplicate.
   * A storage whose locks cannot be lost leaves it out.
   */
  lockLost?(name: string): boolean;
  /**
   * Records that an order for a name failed and when to try again (ms since the epoch), so the
   * gateways sharing this storage wait as the one that failed does, instead of each trying in
   * turn (the CA counts failed validations per name).
   */
  writeRetryAt(name: string, at: number): Promise<void>;
  /** When an order for a name may be tried again, if an order failed lately. */
  readRetryAt(name: string): Promise<number | undefined>;
}

/** A lock older than this was left by a gateway that stopped part way: it is taken over. */
const STALE_LOCK_MS = 10 * 60_000;

/** A folder name for the CA: its directory URL's host, port and path, e.g. "acme-v02.api.letsencrypt.org-directory". */
export function caFolder(directoryUrl: string): string {
  const url = new URL(directoryUrl);
  return `${url.host}${url.pathname}`.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/-+$/, '');
}

export class DirectoryStorage implements AcmeStorage {
  readonly location: string;

  constructor(root: string, directoryUrl: string) {
    this.location = join(root, caFolder(directoryUrl));
  }

  readAccountKey(): Promise<string | undefined> {
    return readIfThere(join(this.location, 'account.key'));
  }

  async writeAccountKey(pem: string): Promise<string> {
    await writePrivately(this.location, 'account.key', pem, false);
    return (await this.readAccountKey()) ?? pem;
  }

  async readCertificate(name: string): Promise<StoredCertificate | undefined> {
    const folder = this.folderOf(name);
    const [cert, key] = await Promise.all([
      readIfThere(join(folder, 'cert.pem')),
      readIfThere(join(folder, 'key.pem')),
    ]);
    return cert === undefined || key === undefined ? undefined : { cert, key };
  }

  async writeCertificate(name: string, certificate: StoredCertificate): Promise<void> {
    const folder = this.folderOf(name);
    // The key first: a chain on disk is only ever read together with a key that matches it
    // (a reader finding the new key beside the old chain is refused by the key check).
    await writePrivately(folder, 'key.pem', certificate.key);
    await writePrivately(folder, 'cert.pem', certificate.cert);
  }

  async writeRetryAt(name: string, at: number): Promise<void> {
    await writePrivately(this.folderOf(name), 'retry-at', `${new Date(at).toISOString()}\n`);
  }

  async readRetryAt(name: string): Promise<number | undefined> {
    const text = await readIfThere(join(this.folderOf(name), 'retry-at'));
    const at = text === undefined ? Number.NaN : Date.parse(text.trim());
    return Number.isNaN(at) ? undefined : at;
  }

  async lock(name: string): Promise<(() => Promise<void>) | undefined> {
    const folder = this.folderOf(name);
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const path = join(folder, 'lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(path, 'wx', 0o600);
        const mine = `${hostname()} ${process.pid} ${new Date().toISOString()}\n`;
        await handle.writeFile(mine);
        await handle.close();
        return () => releaseLock(path, mine);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (await lockIsHeld(path)) return undefined;
        await unlink(path).catch(() => undefined);
      }
    }
    return undefined;
  }

  private folderOf(name: string): string {
    // Names are validated DNS names (letters, digits, dots, hyphens): safe as folder names.
    return join(this.location, 'certificates', name.toLowerCase());
  }
}

/**
 * Whether a lock file still means someone is ordering: it is recent, and — when it was taken
 * on this machine — its process is alive (a gateway killed part way leaves its lock behind,
 * and a restart should not wait ten minutes for it).
 */
async function lockIsHeld(path: string): Promise<boolean> {
  const [held, text] = await Promise.all([stat(path).catch(() => undefined), readIfThere(path).catch(() => undefined)]);
  if (held === undefined || Date.now() - held.mtimeMs >= STALE_LOCK_MS) return false;
  const [host, pid] = (text ?? '').split(' ');
  if (host !== hostname() || pid === undefined) return true;
  if (Number(pid) === process.pid) return true;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes a lock only while it is still the one this gateway took: one held past the stale
 * age may have been taken over by another gateway, whose lock is not ours to remove.
 */
async function releaseLock(path: string, mine: string): Promise<void> {
  const now = await readIfThere(path).catch(() => undefined);
  if (now === mine) await unlink(path).catch(() => undefined);
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Numbers the temporary files of first-writer-wins writes made by this process. */
let racers = 0;

/** Writes `file` whole (0600); `replace` false keeps a file already there (the first writer wins). */
async function writePrivately(folder: string, file: string, text: string, replace = true): Promise<void> {
  await mkdir(folder, { recursive: true, mode: 0o700 });
  // Writers racing to be first (gateways in one process too) each have a temporary file of their own.
  const temporary = join(folder, `.${file}.${process.pid}${replace ? '' : `.${++racers}`}.tmp`);
  // A temporary file left by a crash keeps its mode when written over: it is made anew, 0600.
  await unlink(temporary).catch(() => undefined);
  await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
  if (replace) {
    await rename(temporary, join(folder, file));
    return;
  }
  // A hard link fails when the name exists, atomically: of workers starting together, one key stays.
  try {
    await link(temporary, join(folder, file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

/**
 * Reloads the configuration when its file — or a certificate, key or CA file it names —
 * changes (`gangway start --watch`). Directories are watched rather than files, because
 * editors, config-management tools and certificate renewers replace a file by renaming a new
 * one over it, which a watch on the old file never sees. Changes are debounced, and nothing
 * is reloaded unless the bytes of one of those files changed.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import type { GatewayConfig } from '../config/schema.js';
import type { Gateway } from '../gateway.js';
import { refused } from './signals.js';

const SETTLE_MS = 250;

/** What the watch reloads: a gateway, or the supervisor of its workers. */
export type Reloadable = Pick<Gateway, 'config' | 'logger' | 'reload'>;

export function watchConfigFile(gateway: Reloadable, file: string): FSWatcher[] {
  let timer: NodeJS.Timeout | undefined;
  let last = digest(watchedFiles(file, gateway.config));
  const changed = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const now = digest(watchedFiles(file, gateway.config));
      if (now === undefined || now === last) return;
      last = now;
      gateway.logger.info({ file }, 'configuration or certificate changed: reloading');
      gateway.reload().catch(refused);
    }, SETTLE_MS);
  };
  // The directories as configured at start: a file moved elsewhere later needs a restart (or POST /api/reload).
  const watchers = [...new Set(watchedFiles(file, gateway.config).map((f) => dirname(f)))].map((dir) =>
    watch(dir, changed),
  );
  for (const w of watchers) w.unref();
  return watchers;
}

/** The configuration file and the TLS files it names (paths relative to it). */
function watchedFiles(file: string, config: GatewayConfig): string[] {
  const named: string[] = [];
  for (const l of config.listen) {
    if (l.tls === undefined) continue;
    if (l.tls.cert !== undefined && l.tls.key !== undefined) named.push(l.tls.cert, l.tls.key);
    for (const p of l.tls.sni ?? []) named.push(p.cert, p.key);
  }
  for (const u of Object.values(config.upstreams))
    for (const p of [u.tls?.ca, u.tls?.cert, u.tls?.key]) if (p !== undefined) named.push(p);
  return [file, ...named.map((p) => (isAbsolute(p) ? p : join(dirname(file), p)))];
}

function digest(files: readonly string[]): string | undefined {
  const hash = createHash('sha256');
  try {
    for (const f of files) hash.update(readFileSync(f));
  } catch {
    return undefined; // mid-replace: the next event will see the new file
  }
  return hash.digest('hex');
}

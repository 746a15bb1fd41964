/**
 * Reloads the configuration when its file changes (`gangway start --watch`). The directory
 * is watched rather than the file, because editors and config-management tools replace a
 * file by renaming a new one over it, which a watch on the old file never sees. Changes are
 * debounced, and a file whose bytes did not change is not reloaded.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Gateway } from '../gateway.js';
import { refused } from './signals.js';

const SETTLE_MS = 250;

export function watchConfigFile(gateway: Gateway, file: string): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  let last = digest(file);
  const name = basename(file);
  const watcher = watch(dirname(file), (_event, changed) => {
    if (changed !== null && changed !== name) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      const now = digest(file);
      if (now === undefined || now === last) return;
      last = now;
      gateway.logger.info({ file }, 'configuration file changed: reloading');
      gateway.reload().catch(refused);
    }, SETTLE_MS);
  });
  watcher.unref();
  return watcher;
}

function digest(file: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return undefined; // mid-replace: the next event will see the new file
  }
}

/** How many worker processes the `workers` setting asks for on this machine. */
import type { GatewayConfig } from '../config/schema.js';

/** "auto" is one per core this process may use (os.availableParallelism()); a number is itself. */
export function workerCount(setting: GatewayConfig['workers'], cores: number): number {
  return setting === 'auto' ? Math.max(1, cores) : setting;
}

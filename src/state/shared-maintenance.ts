/**
 * The maintenance switch and host drains held by the fleet. An operator's change on one
 * instance applies here at once, is written to the store and announced on a channel; every
 * other instance adopts it when the announcement arrives, and reads the store again each second
 * in case an announcement was lost (a reconnection). So a switch flipped through any admin API
 * holds on every instance within a second. When the store is away each instance keeps the last
 * state it knew, and a change made meanwhile is written when the store answers again — the
 * latest write wins, as it would have had the store been there.
 */
import type { Maintenance, MaintenanceSwitch } from '../admission/maintenance.js';
import type { Logger } from '../observe/logger.js';
import type { StoreLink } from './link.js';

const SWITCH_KEY = 'maintenance';
const DRAINS_KEY = 'drains';
const CHANNEL = 'maintenance';
const REREAD_MS = 1000;

export class SharedMaintenance {
  private timer: NodeJS.Timeout | undefined;
  private lastSwitch: string;

  constructor(
    private readonly link: StoreLink,
    private readonly maintenance: Maintenance,
    private readonly logger: Logger,
    /** Applies the drained set to the hosts of the configuration in force. */
    private readonly drainsChanged: () => void,
  ) {
    this.lastSwitch = JSON.stringify(maintenance.override);
    maintenance.changes = {
      switched: (to) => this.publishSwitch(to),
      drained: (host, drain) => this.publishDrain(host, drain),
    };
    link.onRecovered(() => void this.read());
  }

  async start(): Promise<void> {
    this.link.store
      .subscribe(CHANNEL, () => void this.read())
      .catch((err: Error) => {
        this.logger.warn(
          { err: err.message },
          'store: cannot subscribe to maintenance changes; reading them each second',
        );
      });
    this.timer = setInterval(() => void this.read(), REREAD_MS).unref();
    await this.read();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Adopts the fleet's switch and drains, except where a write of this instance is still on its way. */
  async read(): Promise<void> {
    let stored: string | undefined;
    let drains: Record<string, string>;
    try {
      [stored, drains] = await Promise.all([
        this.link.call('get', (s) => s.get(SWITCH_KEY)),
        this.link.call('hashAll', (s) => s.hashAll(DRAINS_KEY)),
      ]);
    } catch {
      return; // The last known state holds.
    }
    if (stored !== undefined && stored !== this.lastSwitch && !this.link.isPending(SWITCH_KEY)) {
      this.lastSwitch = stored;
      const to = JSON.parse(stored) as MaintenanceSwitch;
      this.maintenance.override = to;
      this.logger.warn(
        { enabled: to.enabled, until: to.until, message: to.message, routes: to.routes, from: 'store' },
        to.enabled ? 'maintenance switched on (by another instance)' : 'maintenance switched off (by another instance)',
      );
    }
    const hosts = new Set(Object.keys(drains));
    // A drain of ours not yet written stays as we have it.
    for (const h of this.maintenance.drained) if (this.link.isPending(`${DRAINS_KEY}:${h}`)) hosts.add(h);
    for (const h of Object.keys(drains))
      if (this.link.isPending(`${DRAINS_KEY}:${h}`) && !this.maintenance.drained.has(h)) hosts.delete(h);
    if (this.maintenance.adoptDrains(hosts)) {
      this.logger.warn({ drained: [...hosts], from: 'store' }, 'drained hosts changed (by another instance)');
      this.drainsChanged();
    }
  }

  private publishSwitch(to: MaintenanceSwitch): void {
    const value = JSON.stringify(to);
    this.lastSwitch = value;
    this.link.write(SWITCH_KEY, 'set', async (s) => {
      await s.set(SWITCH_KEY, value);
      await s.publish(CHANNEL, SWITCH_KEY);
    });
  }

  private publishDrain(host: string, drain: boolean): void {
    const value = drain ? new Date().toISOString() : undefined;
    this.link.write(`${DRAINS_KEY}:${host}`, 'hashSet', async (s) => {
      await s.hashSet(DRAINS_KEY, host, value);
      await s.publish(CHANNEL, DRAINS_KEY);
    });
  }
}

/**
 * What a gateway shares through its store, put together in one place so the composition root
 * only builds it, starts it and stops it: the link (deadlines, reachability, writes kept for
 * later), the maintenance switch and drains, the fleet-wide rate limits, the incidents, and the
 * status timeline.
 *
 * Kept local on purpose, and never written here: latency scores, outlier ejections, health-check
 * results, concurrency limits and connection pools. Each is this process's own experience of
 * its upstreams (a host slow from here may be fast from another machine), changes on every
 * request, and would turn a store outage into a routing outage if it had to be read from it.
 */
import type { Maintenance } from '../admission/maintenance.js';
import type { GatewayConfig } from '../config/schema.js';
import type { RateLimitStores } from '../admission/rate-limit.js';
import type { Incident, IncidentDetector } from '../observe/incidents.js';
import type { Logger } from '../observe/logger.js';
import type { Timeline } from '../observe/timeline.js';
import { FleetRateLimits } from './fleet-rate-limit.js';
import { StoreLink, type StoreHealth } from './link.js';
import { RedisStore } from './redis.js';
import { SharedIncidents } from './shared-incidents.js';
import { SharedMaintenance } from './shared-maintenance.js';
import { FleetTimeline } from './shared-timeline.js';
import type { StateStore, StoreOperation } from './store.js';

export interface FleetStateParts {
  store: StateStore;
  deadlineMs: number;
  maintenance: Maintenance;
  incidents: IncidentDetector;
  /** This process's status timeline, which the fleet's view sums with the others'. */
  timeline: Timeline;
  /** This process's name in the fleet's timeline (a worker's: its machine and slot); the link's instance by default. */
  timelineSource?: string;
  logger: Logger;
  /** Counts a failed store call. */
  failed(op: StoreOperation): void;
  /** Applies the drained set to the hosts of the configuration in force. */
  drainsChanged(): void;
}

export class FleetState {
  readonly link: StoreLink;
  readonly rateLimitStores: RateLimitStores;
  /** The status timeline of every instance sharing the store: what the status page draws. */
  readonly timeline: FleetTimeline;
  private readonly rateLimits: FleetRateLimits;
  private readonly maintenance: SharedMaintenance;
  private readonly incidents: SharedIncidents;

  constructor(private readonly parts: FleetStateParts) {
    const { store, logger } = parts;
    this.link = new StoreLink(store, {
      deadlineMs: parts.deadlineMs,
      failed: parts.failed,
      changed(reachable, reason) {
        if (reachable) logger.info({ store: store.kind }, 'state store reachable: sharing state with the fleet');
        else
          logger.warn(
            { store: store.kind, reason },
            'state store unreachable: rate limits use a local share, the last known maintenance state holds',
          );
      },
    });
    this.rateLimits = new FleetRateLimits(this.link);
    this.rateLimitStores = (config, route) => this.rateLimits.storeFor(config, route);
    this.maintenance = new SharedMaintenance(this.link, parts.maintenance, logger, parts.drainsChanged);
    this.incidents = new SharedIncidents(this.link, parts.incidents);
    this.timeline = new FleetTimeline(this.link, parts.timeline, parts.timelineSource);
  }

  /** Starts sharing; resolves once the store's state was read (or found unreachable: it goes on without). */
  async start(): Promise<void> {
    if (this.parts.store instanceof RedisStore) this.parts.store.connect();
    this.link.start();
    this.rateLimits.start();
    await this.firstAnswer();
    await Promise.all([this.maintenance.start(), this.incidents.start(), this.timeline.start()]);
  }

  /** An incident of this instance opened or closed. */
  incidentChanged(incident: Incident): void {
    this.incidents.changed(incident);
  }

  health(): StoreHealth {
    return this.link.health();
  }

  /** Stops sharing: the writes still kept get a last chance; `closeStore` closes a store this gateway made. */
  async stop(closeStore: boolean): Promise<void> {
    this.rateLimits.stop();
    this.maintenance.stop();
    this.incidents.stop();
    this.timeline.stop();
    await this.link.close();
    if (closeStore) await this.parts.store.close();
  }

  /** Gives a store that is connecting a moment to answer, so a starting instance adopts the fleet's state. */
  private async firstAnswer(): Promise<void> {
    const deadline = Date.now() + START_WAIT_MS;
    while (!this.link.reachable && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }
}

/** How long a starting gateway waits for its store before serving from local state. */
const START_WAIT_MS = 500;

/** The store the configuration names (Redis), or undefined: state stays in this process. */
export function storeFromConfig(config: GatewayConfig): StateStore | undefined {
  const redis = config.store?.redis;
  if (redis === undefined) return undefined;
  const tls = redis.tls;
  return new RedisStore({
    url: redis.url,
    keyPrefix: redis.keyPrefix ?? `gangway:{${config.name}}:`,
    username: redis.username,
    password: redis.password,
    tls:
      tls === undefined && !redis.url.startsWith('rediss:')
        ? undefined
        : {
            ca: tls?.ca === undefined ? undefined : config.files.get(tls.ca),
            cert: tls?.cert === undefined ? undefined : config.files.get(tls.cert),
            key: tls?.key === undefined ? undefined : config.files.get(tls.key),
          },
  });
}

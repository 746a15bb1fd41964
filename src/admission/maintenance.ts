/**
 * Maintenance: whether a route is in a maintenance window right now, until when, and with
 * what message. Windows come from the configuration (scheduled) and from the admin API
 * (switched on by an operator); the operator's switch lives in the gateway, not in a
 * configuration, so it survives reloads. Staff (allowed addresses or header) pass. With a
 * shared store the switch and the drains are the fleet's: an operator's change here is told to
 * `changed` (which publishes it), and the store's changes come back through `adopt…`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { GatewayConfig } from '../config/schema.js';
import type { ReplyFacts } from '../explain/reply.js';

export interface MaintenanceSwitch {
  enabled: boolean;
  /** When it ends (ms since epoch); undefined: until switched off. */
  until?: number;
  message?: string;
  /** Route names; every route when absent. */
  routes?: string[];
}

export interface ActiveMaintenance {
  /** Seconds until the window ends (a guess when its end is not known). */
  retryAfter: number;
  until: number | undefined;
  message: string | undefined;
}

/** How long to tell clients to wait when a window has no end. */
const OPEN_ENDED_RETRY_AFTER = 300;

/** Where an operator's change goes besides this process: the shared store, when there is one. */
export interface MaintenanceChanges {
  switched(to: MaintenanceSwitch): void;
  drained(host: string, drain: boolean): void;
}

export class Maintenance {
  /** The operator's switch, set through the admin API (or adopted from the fleet's store). */
  override: MaintenanceSwitch = { enabled: false };
  /** Hosts an operator is draining, as "upstream/host"; kept across reloads. */
  readonly drained = new Set<string>();
  /** Told of each change an operator makes on this instance (../admin/changes.ts). */
  changes: MaintenanceChanges | undefined = undefined;

  /** The fleet's drains, as the store has them: answers whether anything changed. */
  adoptDrains(hosts: ReadonlySet<string>): boolean {
    let changed = hosts.size !== this.drained.size;
    for (const h of hosts) if (!this.drained.has(h)) changed = true;
    if (!changed) return false;
    this.drained.clear();
    for (const h of hosts) this.drained.add(h);
    return true;
  }

  /** The maintenance in force for this route now, or undefined. */
  activeFor(config: GatewayConfig, route: string, now = Date.now()): ActiveMaintenance | undefined {
    const o = this.override;
    if (o.enabled && (o.until === undefined || now < o.until) && (o.routes === undefined || o.routes.includes(route))) {
      return {
        retryAfter: o.until === undefined ? OPEN_ENDED_RETRY_AFTER : Math.max(1, Math.ceil((o.until - now) / 1000)),
        until: o.until,
        message: o.message,
      };
    }
    for (const w of config.maintenance.windows) {
      if (now >= w.start && now < w.end && (w.routes === undefined || w.routes.includes(route))) {
        return { retryAfter: Math.max(1, Math.ceil((w.end - now) / 1000)), until: w.end, message: w.message };
      }
    }
    return undefined;
  }

  /**
   * When this request must be held back by maintenance (a window applies to its route and
   * the client is not staff): the reply's Retry-After, operator message and details.
   */
  holds(
    config: GatewayConfig,
    route: { name: string; upstream: { name: string } },
    req: { readonly headers: IncomingHttpHeaders },
    clientAddress: string,
  ): Pick<ReplyFacts, 'retryAfter' | 'message' | 'details' | 'endKnown'> | undefined {
    const active = this.activeFor(config, route.name);
    if (active === undefined || this.allows(config, req, clientAddress)) return undefined;
    return {
      retryAfter: active.retryAfter,
      endKnown: active.until !== undefined,
      message: active.message,
      details: `maintenance: upstream ${route.upstream.name}`,
    };
  }

  /** Staff pass during maintenance: an allowed address, or the configured header and value. */
  allows(config: GatewayConfig, req: { readonly headers: IncomingHttpHeaders }, clientAddress: string): boolean {
    const allow = config.maintenance.allow;
    if (allow.addresses.includes(clientAddress)) return true;
    if (allow.header !== undefined && allow.headerValue !== undefined)
      return req.headers[allow.header.toLowerCase()] === allow.headerValue;
    return false;
  }

  /** What GET /api/maintenance shows. */
  describe(config: GatewayConfig, now = Date.now()): Record<string, unknown> {
    const o = this.override;
    return {
      switch: {
        enabled: o.enabled && (o.until === undefined || now < o.until),
        until: o.until === undefined ? undefined : new Date(o.until).toISOString(),
        message: o.message,
        routes: o.routes,
      },
      windows: config.maintenance.windows.map((w) => ({
        start: new Date(w.start).toISOString(),
        end: new Date(w.end).toISOString(),
        message: w.message,
        routes: w.routes,
        active: now >= w.start && now < w.end,
      })),
    };
  }
}

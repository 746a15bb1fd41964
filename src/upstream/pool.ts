/**
 * An upstream: a named pool of interchangeable hosts, its balancer and its settings.
 */
import type { UpstreamConfig } from '../config/schema.js';
import { createBalancer, type Balancer } from './balancer.js';
import { UpstreamHost } from './host.js';

export class UpstreamPool {
  readonly hosts: UpstreamHost[];
  private readonly balancer: Balancer;

  constructor(readonly name: string, readonly config: UpstreamConfig) {
    this.hosts = config.hosts.map((h) => new UpstreamHost(h, config));
    this.balancer = createBalancer(config.balance);
  }

  /** The host for the next attempt, or undefined when the pool has none to offer. */
  pick(): UpstreamHost | undefined {
    return this.balancer.pick(this.hosts);
  }

  async close(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.close()));
  }
}

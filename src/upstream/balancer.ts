/**
 * Picks the host for an attempt. The default, power of two choices on outstanding
 * requests, samples two hosts at random and takes the less busy one: nearly as good as
 * "least outstanding" over the whole pool, without herding every request onto the host
 * that happens to look idlest.
 */
import type { UpstreamHost } from './host.js';

export type BalanceStrategy = 'p2c' | 'round-robin' | 'random';

export interface Balancer {
  pick(hosts: readonly UpstreamHost[]): UpstreamHost | undefined;
}

class PowerOfTwoChoices implements Balancer {
  pick(hosts: readonly UpstreamHost[]): UpstreamHost | undefined {
    const n = hosts.length;
    if (n <= 1) return hosts[0];
    const i = (Math.random() * n) | 0;
    let j = (Math.random() * (n - 1)) | 0;
    if (j >= i) j++;
    const a = hosts[i]!;
    const b = hosts[j]!;
    return b.outstanding < a.outstanding ? b : a;
  }
}

class RoundRobin implements Balancer {
  private next = 0;
  pick(hosts: readonly UpstreamHost[]): UpstreamHost | undefined {
    if (hosts.length === 0) return undefined;
    const host = hosts[this.next % hosts.length];
    this.next = (this.next + 1) % 1_000_000_007;
    return host;
  }
}

class RandomChoice implements Balancer {
  pick(hosts: readonly UpstreamHost[]): UpstreamHost | undefined {
    return hosts[(Math.random() * hosts.length) | 0];
  }
}

export function createBalancer(strategy: BalanceStrategy): Balancer {
  switch (strategy) {
    case 'p2c': return new PowerOfTwoChoices();
    case 'round-robin': return new RoundRobin();
    case 'random': return new RandomChoice();
  }
}

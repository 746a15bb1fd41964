/**
 * Picks the host for an attempt among the candidates the pool offers. The default, power
 * of two choices, samples two hosts at random and takes the one with the lower cost, cost
 * being latency average × (outstanding + 1), as Finagle and Linkerd do: a slow replica or a
 * busy one gets little traffic, without herding every request onto the one that looks best.
 * A host ramping up after a return (slow start) is compared only in proportion to its warmth.
 */
import type { UpstreamHost } from './host.js';

export type BalanceStrategy = 'p2c' | 'round-robin' | 'random';

export interface Balancer {
  pick(hosts: readonly UpstreamHost[]): UpstreamHost | undefined;
}

function cost(h: UpstreamHost, unmeasured: number, now: number): number {
  return (h.latency(now) || unmeasured) * (h.outstanding + 1);
}

class PowerOfTwoChoices implements Balancer {
  pick(hosts: readonly UpstreamHost[]): UpstreamHost | undefined {
    const n = hosts.length;
    if (n <= 1) return hosts[0];
    // A host not measured yet is assumed as slow as the slowest measured one: cheap enough to
    // be tried, not so cheap that it draws every request while its first answers are pending.
    const now = performance.now();
    const wall = Date.now();
    let unmeasured = 1;
    for (let k = 0; k < n; k++) if (hosts[k]!.latencyMs > unmeasured) unmeasured = hosts[k]!.latencyMs;
    const i = (Math.random() * n) | 0;
    let j = (Math.random() * (n - 1)) | 0;
    if (j >= i) j++;
    const a = hosts[i]!;
    const b = hosts[j]!;
    // A warming host takes part in the comparison only in proportion to its warmth, so it
    // draws about that share of the traffic it would otherwise win.
    const wa = a.warmth(wall);
    if (wa < 1 && Math.random() > wa) return b;
    const wb = b.warmth(wall);
    if (wb < 1 && Math.random() > wb) return a;
    return cost(b, unmeasured, now) < cost(a, unmeasured, now) ? b : a;
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
    case 'p2c':
      return new PowerOfTwoChoices();
    case 'round-robin':
      return new RoundRobin();
    case 'random':
      return new RandomChoice();
  }
}

/**
 * Picks the host for an attempt among the candidates the pool offers. The default, power
 * of two choices, samples two hosts at random and takes the one with the lower cost, cost
 * being latency average × (outstanding + 1), as Finagle and Linkerd do: a slow replica or a
 * busy one gets little traffic, without herding every request onto the one that looks best.
 * A host ramping up after a return (slow start) is compared only in proportion to its warmth.
 * Hosts with weights (SRV records) are sampled in proportion to them; round-robin becomes
 * nginx's smooth weighted round-robin, random a weighted draw.
 */
import type { UpstreamHost } from './host.js';

export type BalanceStrategy = 'p2c' | 'round-robin' | 'random';

export interface Balancer {
  pick(hosts: readonly UpstreamHost[]): UpstreamHost | undefined;
}

function cost(h: UpstreamHost, unmeasured: number, now: number): number {
  return (h.latency(now) || unmeasured) * (h.outstanding + 1);
}

/** The sum of the hosts' weights, or 0 when every one is 1 (the common case takes the plain path). */
function weightsOf(hosts: readonly UpstreamHost[]): number {
  let total = 0;
  let uniform = true;
  for (let k = 0; k < hosts.length; k++) {
    const w = hosts[k]!.weight;
    if (w !== 1) uniform = false;
    total += w;
  }
  return uniform ? 0 : total;
}

/** The index of a host drawn in proportion to its weight. */
function drawWeighted(hosts: readonly UpstreamHost[], total: number): number {
  let r = Math.random() * total;
  for (let k = 0; k < hosts.length; k++) {
    r -= hosts[k]!.weight;
    if (r < 0) return k;
  }
  return hosts.length - 1;
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
    let total = 0;
    let uniform = true;
    for (let k = 0; k < n; k++) {
      const h = hosts[k]!;
      if (h.latencyMs > unmeasured) unmeasured = h.latencyMs;
      if (h.weight !== 1) uniform = false;
      total += h.weight;
    }
    let i: number;
    let j: number;
    if (uniform) {
      i = (Math.random() * n) | 0;
      j = (Math.random() * (n - 1)) | 0;
      if (j >= i) j++;
    } else {
      // Drawn by weight and with replacement: when both draws name one host it is the pick, so
      // at equal cost each host's share is its weight's; the comparison then steers away from
      // a slow or busy one.
      i = drawWeighted(hosts, total);
      j = drawWeighted(hosts, total);
      if (i === j) return hosts[i];
    }
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
  /** Smooth weighted round-robin's running scores (nginx), for pools with weights. */
  private readonly scores = new WeakMap<UpstreamHost, number>();
  pick(hosts: readonly UpstreamHost[]): UpstreamHost | undefined {
    if (hosts.length === 0) return undefined;
    const total = weightsOf(hosts);
    if (total > 0) return this.pickWeighted(hosts, total);
    const host = hosts[this.next % hosts.length];
    this.next = (this.next + 1) % 1_000_000_007;
    return host;
  }

  /**
   * Each host's score grows by its weight every pick and the highest wins, paying back the
   * total: weights 3 and 1 give a a b a, a a b a — spread out, not a a a b.
   */
  private pickWeighted(hosts: readonly UpstreamHost[], total: number): UpstreamHost {
    let best = hosts[0]!;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (const h of hosts) {
      const score = (this.scores.get(h) ?? 0) + h.weight;
      this.scores.set(h, score);
      if (score > bestScore) {
        best = h;
        bestScore = score;
      }
    }
    this.scores.set(best, bestScore - total);
    return best;
  }
}

class RandomChoice implements Balancer {
  pick(hosts: readonly UpstreamHost[]): UpstreamHost | undefined {
    if (hosts.length === 0) return undefined;
    const total = weightsOf(hosts);
    return hosts[total === 0 ? (Math.random() * hosts.length) | 0 : drawWeighted(hosts, total)];
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

/**
 * Finds an upstream's hosts in DNS: every A/AAAA address of a name (with the configured port),
 * or every SRV record of the most preferred priority (its target's addresses, with the record's
 * port and weight). The name is resolved again when the records' TTL runs out, bounded by the
 * refresh settings, and the pool is told the new set whenever it changes. A failed resolution
 * never shrinks the set: each query (A, AAAA, SRV, a target's addresses) keeps its last good
 * answer, an answer with no records at all keeps the whole last good set, and failures are
 * retried with a growing backoff. The state (when it last resolved, the last error) is what the
 * status page and the logs report, and a reload hands it to the next pool so an unchanged name
 * is not resolved again all at once.
 */
import { isIP } from 'node:net';
import { Resolver } from 'node:dns/promises';
import type { DnsDiscoveryConfig } from '../config/schema.js';

/** One discovered host: where undici connects, how it is named, and its share of traffic. */
export interface DiscoveredHost {
  origin: string;
  /** "address:port", IPv6 bracketed: what logs, metrics and an operator's drain name it by. */
  label: string;
  /** Relative share of traffic (SRV weight; 1 for A/AAAA). */
  weight: number;
  /** Over https: the name the host's certificate must carry (the DNS name, or the SRV target). */
  servername?: string;
}

export type ResolutionResult = 'ok' | 'empty' | 'failed';

/** What the discovery tells its pool. */
export interface DiscoverySink {
  /** The set of hosts changed (sorted by label, so lists and pages stay in one order). */
  discovered(hosts: readonly DiscoveredHost[]): void;
  /**
   * A resolution ended. `failures`: the consecutive resolutions without a clean answer, this
   * one included when it failed — or, for a clean answer, the streak it has just ended.
   */
  resolved(result: ResolutionResult, error: string | undefined, failures: number): void;
}

/** The discovery's state as /api/status shows it. */
export interface DiscoveryStatus {
  name: string;
  records: 'A/AAAA' | 'SRV';
  resolver: string;
  hosts: number;
  last_resolved: string | null;
  last_result: ResolutionResult | null;
  last_error: string | null;
  last_error_at: string | null;
  failures: number;
  next_resolution: string | null;
}

/** Per try; c-ares tries twice, so a resolver that never answers costs about 3 s. */
const QUERY_TIMEOUT_MS = 1000;
const QUERY_TRIES = 2;
/** Scheduled resolutions come up to this share early, so a fleet of gateways does not query in step. */
const JITTER = 0.1;
/** Answers that mean "no records of this type" rather than "could not find out". */
const NO_RECORDS = new Set(['ENODATA']);

interface AddressRecord {
  address: string;
  /** Seconds. */
  ttl: number;
}

interface SrvRecord {
  name: string;
  port: number;
  weight: number;
  priority: number;
}

interface Answer {
  /** The hosts the records name. */
  hosts: DiscoveredHost[];
  /** The lowest TTL among the records, in seconds; undefined when the answer carried none. */
  ttl: number | undefined;
}

const numeric = new Intl.Collator('en', { numeric: true }).compare;

/** IPv4 hosts first, then IPv6, each in numeric order ("127.0.0.2" before "127.0.0.10"). */
function byLabel(a: string, b: string): number {
  const a6 = a.startsWith('[');
  return a6 === b.startsWith('[') ? numeric(a, b) : a6 ? 1 : -1;
}

export class HostDiscovery {
  /** The hosts in force: the last good set. */
  hosts: readonly DiscoveredHost[] = [];
  private readonly resolver: Resolver;
  /** The last good answer of each address query ("A music…", "AAAA music…", a target's). */
  private readonly lastGoodAddresses = new Map<string, AddressRecord[]>();
  /** The last good SRV records. */
  private lastGoodSrv: SrvRecord[] | undefined = undefined;
  private timer: NodeJS.Timeout | undefined = undefined;
  private stopped = false;
  private running: Promise<void> | undefined = undefined;
  private lastResolvedAt = 0;
  private lastResult: ResolutionResult | undefined = undefined;
  private lastError: string | undefined = undefined;
  private lastErrorAt = 0;
  private failures = 0;
  private nextAt = 0;
  /** Settles when the first resolution of this discovery (or of the one it took over from) has ended. */
  readonly firstAnswer: Promise<void>;
  private answered!: () => void;
  /** Whether the first resolution (here or in the discovery taken over) has ended. */
  answeredYet = false;

  constructor(
    readonly config: DnsDiscoveryConfig,
    private readonly sink: DiscoverySink,
    /** The discovery of the pool a reload replaces, when its dns settings are the same. */
    previous?: HostDiscovery,
  ) {
    this.resolver = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: QUERY_TRIES });
    if (config.resolver !== undefined) this.resolver.setServers([config.resolver]);
    this.firstAnswer = new Promise((resolve) => {
      this.answered = () => {
        this.answeredYet = true;
        resolve();
      };
    });
    if (previous !== undefined && previous.lastResult !== undefined) {
      for (const [k, v] of previous.lastGoodAddresses) this.lastGoodAddresses.set(k, v);
      this.lastGoodSrv = previous.lastGoodSrv;
      this.hosts = previous.hosts;
      this.lastResolvedAt = previous.lastResolvedAt;
      this.lastResult = previous.lastResult;
      this.lastError = previous.lastError;
      this.lastErrorAt = previous.lastErrorAt;
      this.failures = previous.failures;
      this.nextAt = previous.nextAt;
      this.answered();
    }
  }

  /**
   * Same name, records, port, family, resolver and scheme: the same hosts, so a reload may carry them
   * over. New refresh bounds need no new answer (a shorter max brings the next one forward).
   */
  static sameSettings(a: DnsDiscoveryConfig | undefined, b: DnsDiscoveryConfig | undefined): boolean {
    if (a === undefined || b === undefined) return false;
    return (
      a.name === b.name &&
      a.port === b.port &&
      a.srv === b.srv &&
      a.family === b.family &&
      a.resolver === b.resolver &&
      a.scheme === b.scheme
    );
  }

  /** Resolves now, or when the inherited schedule says (a reload is no reason to ask again). */
  start(now = Date.now()): void {
    if (this.stopped || this.timer !== undefined || this.running !== undefined) return;
    this.schedule(clamp(this.nextAt - now, 0, this.config.refresh.max));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.resolver.cancel();
    this.answered();
  }

  /** Resolves the name now (and again when its TTL says); resolves when this resolution is over. */
  resolveNow(): Promise<void> {
    this.running ??= this.resolve().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  status(now = Date.now()): DiscoveryStatus {
    const iso = (t: number): string | null => (t === 0 ? null : new Date(t).toISOString());
    return {
      name: this.config.name,
      records: this.config.srv ? 'SRV' : 'A/AAAA',
      resolver: this.config.resolver ?? 'system',
      hosts: this.hosts.length,
      last_resolved: iso(this.lastResolvedAt),
      last_result: this.lastResult ?? null,
      last_error: this.lastError ?? null,
      last_error_at: iso(this.lastErrorAt),
      failures: this.failures,
      next_resolution: this.stopped || this.nextAt < now - 1000 ? null : iso(this.nextAt),
    };
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.nextAt = Date.now() + ms;
    this.timer = setTimeout(resolveOnTimer, ms, this).unref();
  }

  /** The timer fired. */
  tick(): void {
    this.timer = undefined;
    void this.resolveNow();
  }

  private async resolve(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const errors: string[] = [];
    let ttl: number | undefined;
    let hosts: DiscoveredHost[];
    try {
      const found = this.config.srv ? await this.resolveSrv(errors) : await this.resolveAddresses(errors);
      hosts = normalise(found.hosts);
      ttl = found.ttl;
    } catch (err) {
      // Nothing above throws by design; a bug must not end discovery for the life of the pool.
      errors.push(String(err));
      hosts = [];
    }
    if (this.stopped) return;
    const now = Date.now();
    let result: ResolutionResult;
    if (hosts.length === 0) {
      // No address at all: a registry between two states, a service scaled to zero for a moment,
      // a typo in a change of records. The hosts that served a moment ago are the better bet;
      // health checks and outlier detection take out any that are truly gone.
      result = errors.length > 0 ? 'failed' : 'empty';
      if (result === 'empty') errors.push(`no ${this.config.srv ? 'SRV' : 'address'} records`);
    } else {
      result = errors.length > 0 ? 'failed' : 'ok';
      if (!sameHosts(hosts, this.hosts)) {
        this.hosts = hosts;
        this.sink.discovered(hosts);
      }
    }
    this.lastResult = result;
    const streak = result === 'ok' ? this.failures : this.failures + 1;
    if (result === 'ok') {
      this.failures = 0;
      this.lastResolvedAt = now;
    } else {
      this.failures = streak;
      this.lastError = errors.join('; ');
      this.lastErrorAt = now;
      // A partial answer (one family or one target failed) still counts as resolved: the rest is fresh.
      if (hosts.length > 0) this.lastResolvedAt = now;
    }
    this.sink.resolved(result, result === 'ok' ? undefined : this.lastError, streak);
    this.answered();
    const { min, max } = this.config.refresh;
    const wait =
      result === 'ok'
        ? clamp((ttl ?? max / 1000) * 1000 * (1 - JITTER * Math.random()), min, max)
        : clamp(min * 2 ** (this.failures - 1), min, max);
    this.schedule(wait);
  }

  /** A host at `label` ("address:port"); over https its certificate must name `servername`. */
  private host(label: string, weight: number, servername: string | undefined): DiscoveredHost {
    const https = this.config.scheme === 'https';
    return {
      origin: `${https ? 'https' : 'http'}://${label}`,
      label,
      weight,
      servername: https ? servername : undefined,
    };
  }

  /** Every A/AAAA address of the name, with the configured port. */
  private async resolveAddresses(errors: string[]): Promise<Answer> {
    const { name, port } = this.config;
    return this.addressesOf(name, port!, 1, errors);
  }

  /** The addresses of one name, per family asked for; a family that fails keeps its last good answer. */
  private async addressesOf(name: string, port: number, weight: number, errors: string[]): Promise<Answer> {
    const family = this.config.family;
    const [v4, v6] = await Promise.all([
      family === 'ipv6' ? undefined : this.query('A', name, errors, () => this.resolver.resolve4(name, { ttl: true })),
      family === 'ipv4'
        ? undefined
        : this.query('AAAA', name, errors, () => this.resolver.resolve6(name, { ttl: true })),
    ]);
    const hosts: DiscoveredHost[] = [];
    let ttl: number | undefined;
    // A record listed twice is one host, not twice the weight (SRV records naming one address do add up).
    const seen = new Set<string>();
    for (const answer of [v4, v6]) {
      if (answer === undefined) continue;
      for (const h of answer) {
        if (seen.has(h.address)) continue;
        seen.add(h.address);
        const label = h.address.includes(':') ? `[${h.address}]:${port}` : `${h.address}:${port}`;
        hosts.push(this.host(label, weight, name));
        ttl = ttl === undefined ? h.ttl : Math.min(ttl, h.ttl);
      }
    }
    return { hosts, ttl };
  }

  /**
   * One query, remembered: its records, or — when it failed — the last good ones (and the
   * error noted). "No records of this type" is an answer, not a failure: a name with only
   * IPv4 addresses answers AAAA with none.
   */
  private async query(
    type: string,
    name: string,
    errors: string[],
    ask: () => Promise<AddressRecord[]>,
  ): Promise<AddressRecord[]> {
    const key = `${type} ${name}`;
    try {
      const records = await ask();
      const answer = records.map((r) => ({ address: r.address, ttl: r.ttl }));
      this.lastGoodAddresses.set(key, answer);
      return answer;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (NO_RECORDS.has(code)) {
        this.lastGoodAddresses.set(key, []);
        return [];
      }
      errors.push(`${type} ${name}: ${describeDnsError(code)}`);
      return this.lastGoodAddresses.get(key) ?? [];
    }
  }

  /**
   * The SRV records of the most preferred priority, each target resolved to its addresses
   * (a target may be an address itself). node:dns gives no TTL for SRV records, so the
   * targets' address TTLs set the next resolution (bounded as always).
   */
  private async resolveSrv(errors: string[]): Promise<Answer> {
    const name = this.config.name;
    let records: SrvRecord[];
    try {
      records = await this.resolver.resolveSrv(name);
      this.lastGoodSrv = records;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (NO_RECORDS.has(code)) records = [];
      else {
        errors.push(`SRV ${name}: ${describeDnsError(code)}`);
        records = this.lastGoodSrv ?? [];
      }
    }
    if (records.length === 0) return { hosts: [], ttl: undefined };
    let best = Number.POSITIVE_INFINITY;
    for (const r of records) if (r.priority < best) best = r.priority;
    const chosen = records.filter((r) => r.priority === best);
    // RFC 2782: weight 0 is "a very small chance"; when every weight is 0 they share equally.
    const allZero = chosen.every((r) => r.weight === 0);
    const answers = await Promise.all(
      chosen.map((r) => {
        const weight = allZero ? 1 : r.weight === 0 ? 0.01 : r.weight;
        const target = r.name.replace(/\.$/, '');
        if (isIP(target) !== 0) {
          const label = isIP(target) === 6 ? `[${target}]:${r.port}` : `${target}:${r.port}`;
          return { hosts: [this.host(label, weight, undefined)], ttl: undefined };
        }
        return this.addressesOf(target, r.port, weight, errors);
      }),
    );
    const hosts: DiscoveredHost[] = [];
    let ttl: number | undefined;
    for (const a of answers) {
      hosts.push(...a.hosts);
      if (a.ttl !== undefined) ttl = ttl === undefined ? a.ttl : Math.min(ttl, a.ttl);
    }
    return { hosts, ttl };
  }
}

/** The timer's callback, hoisted: no closure per scheduled resolution. */
function resolveOnTimer(d: HostDiscovery): void {
  d.tick();
}

function clamp(v: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, v));
}

/**
 * Sorted by label and deduplicated: two records naming one address (two SRV records, an A
 * listed twice) are one host, with their weights added.
 */
function normalise(hosts: DiscoveredHost[]): DiscoveredHost[] {
  const byKey = new Map<string, DiscoveredHost>();
  for (const h of hosts) {
    const seen = byKey.get(h.label);
    if (seen === undefined) byKey.set(h.label, { ...h });
    else seen.weight += h.weight;
  }
  return [...byKey.values()].sort((a, b) => byLabel(a.label, b.label));
}

function sameHosts(a: readonly DiscoveredHost[], b: readonly DiscoveredHost[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.label !== b[i]!.label || a[i]!.weight !== b[i]!.weight) return false;
  return true;
}

/** c-ares codes in the words an operator searches for. */
function describeDnsError(code: string): string {
  switch (code) {
    case 'ENOTFOUND':
      return 'NXDOMAIN (no such name)';
    case 'ESERVFAIL':
      return 'SERVFAIL (the DNS server failed)';
    case 'ETIMEOUT':
      return 'timeout (no answer from the DNS server)';
    case 'ECONNREFUSED':
      return 'connection refused by the DNS server';
    case 'EREFUSED':
      return 'REFUSED (the DNS server refused the query)';
    case 'ECANCELLED':
      return 'cancelled';
    default:
      return code;
  }
}

/**
 * The configuration's single source of truth. Types, defaults, validation messages, the
 * JSON Schema for editors (`gangway schema`) and docs/configuration.md all derive from
 * this zod schema; nothing else in the gateway restates a default. Validation here is pure:
 * it reads no file and no environment (the loader, ./load.ts, does both).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { TEXT_KEYS } from '../explain/catalogue.js';
import { parseAddress, parseDuration, parseSize, type Address } from './units.js';

const duration = (what: string) =>
  z
    .union([z.string(), z.number()])
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === null) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (write it like "250ms", "2s" or "1m")` });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ description: `${what}; a duration such as "250ms", "2s", "1m", or milliseconds as a number` });

const size = (what: string) =>
  z
    .union([z.string(), z.number()])
    .transform((v, ctx) => {
      const bytes = parseSize(v);
      if (bytes === null) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (write it like "16KiB" or "10MiB")` });
        return z.NEVER;
      }
      return bytes;
    })
    .meta({ description: `${what}; a size such as "16KiB", "10MiB", or bytes as a number` });

const address = (what: string) =>
  z
    .union([z.string(), z.number()])
    .transform((v, ctx): Address => {
      const a = parseAddress(v);
      if (a === null) {
        ctx.addIssue({
          code: 'custom',
          message: `"${v}" is not an address (write it like "127.0.0.1:8080" or ":8080")`,
        });
        return z.NEVER;
      }
      return a;
    })
    .meta({ description: `${what}; "host:port", "[ipv6]:port", ":port" for every interface, or a port number` });

/**
 * A name an ACME CA can issue for by HTTP-01 or TLS-ALPN-01: a DNS name with at least two
 * labels, lower-cased; wildcards need DNS-01, which Gangway does not answer.
 */
const acmeName = z
  .string()
  .transform((v) => v.toLowerCase())
  .superRefine((v, ctx) => {
    if (v.startsWith('*.'))
      ctx.addIssue({
        code: 'custom',
        message:
          `"${v}": a wildcard certificate needs the DNS-01 challenge, which Gangway ` +
          'does not answer; list the names',
      });
    else if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/.test(v))
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a DNS name a CA issues for (like "music.example.com")` });
  });

const acme = z
  .strictObject({
    directory: z
      .url({ protocol: /^https?$/, error: "an http(s) URL of the CA's ACME directory" })
      .default('https://acme-v02.api.letsencrypt.org/directory')
      .meta({
        description:
          "The CA's ACME directory URL; Let's Encrypt by default (its staging CA is " +
          'https://acme-staging-v02.api.letsencrypt.org/directory). Certificates are kept per CA',
      }),
    email: z
      .email('an email address, like "ops@example.com"')
      .optional()
      .meta({ description: 'Contact address for the ACME account (the CA may write about problems with it)' }),
    storage: z
      .string()
      .min(1)
      .default('acme')
      .meta({
        description:
          'Directory for the account key and the certificates (relative to the configuration ' +
          'file; created 0700, files 0600); certificates there are reused across restarts',
      }),
    ca: z
      .string()
      .min(1)
      .optional()
      .meta({
        description:
          "PEM file of the CA certificates to trust for the directory's HTTPS, when not the " +
          "system's (a private CA, or a test CA like Pebble)",
      }),
    challenges: z
      .array(z.enum(['http-01', 'tls-alpn-01']))
      .min(1)
      .default(['http-01', 'tls-alpn-01'])
      .meta({
        description:
          'Challenge types to answer, in order of preference: http-01 is answered on every ' +
          'listener at /.well-known/acme-challenge/ (the CA asks on port 80), tls-alpn-01 on ' +
          'HTTPS listeners with acme names (the CA asks on port 443)',
      }),
    retryDelay: duration('First wait after a failed order; doubled per failure, with jitter').prefault('1m'),
    maxRetryDelay: duration('Longest wait between attempts while the CA fails').prefault('6h'),
    lockTimeout: duration(
      'With store.redis, how long the fleet-wide issuance lock of a name outlives a gateway that ' +
        'stopped while ordering (the holder extends it while it works; the others wait, then one orders)',
    )
      .refine((ms) => ms >= 1000, 'at least 1s (the holder extends it three times per timeout)')
      .prefault('30s'),
  })
  .meta({
    description:
      'Automatic certificates (ACME, RFC 8555) for the names HTTPS listeners list under tls.acme: ' +
      'obtained at start, renewed when a third of their lifetime remains or as the CA suggests (ARI). ' +
      'With several workers, every worker answers the challenges and one orders for all, keeping the ' +
      'certificates in the storage directory; with store.redis, the instances of the fleet share the ' +
      'account, the certificates (then kept in Redis, private keys included: see docs/operations.md), ' +
      'the challenges and one issuance lock per name',
  });

/** One place the gateway accepts client traffic: an address, and a certificate when it speaks HTTPS. */
export interface ListenerConfig {
  address: Address;
  /** PEM files (paths as written, relative to the configuration file); the loader reads them into `files`. */
  tls:
    | {
        /** Absent when the listener's certificates all come from ACME. */
        cert?: string | undefined;
        key?: string | undefined;
        /** Names whose certificates Gangway obtains and renews itself (the `acme` section says how). */
        acme?: string[] | undefined;
        hsts?: number | undefined;
        sni?: Array<{ cert: string; key: string }> | undefined;
      }
    | undefined;
  /** Speak HTTP/2 with prior knowledge in cleartext (behind a load balancer). */
  h2c: boolean;
  /** Answer every request with a redirect to HTTPS (a cleartext listener beside an HTTPS one). */
  redirectToHttps: boolean;
}

const listener = z
  .union([
    address('An address to accept client traffic on (HTTP/1.1 in cleartext)'),
    z.strictObject({
      address: address('The address to accept client traffic on'),
      tls: z
        .strictObject({
          cert: z
            .string()
            .min(1)
            .optional()
            .meta({ description: 'PEM certificate chain file (relative to the configuration file)' }),
          key: z.string().min(1).optional().meta({ description: "The certificate's PEM private key file" }),
          acme: z
            .array(acmeName)
            .min(1, 'list at least one name, or leave acme out')
            .optional()
            .meta({
              description:
                'Names whose certificates Gangway obtains and renews itself from an ACME CA ' +
                "(Let's Encrypt unless the acme section says otherwise), each presented to " +
                'clients asking for it; until a name has one, handshakes for it fail',
            }),
          hsts: z
            .union([z.string(), z.number()])
            .transform((v, ctx) => {
              const ms = parseDuration(v);
              if (ms === null || ms < 0) {
                ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (write it like "365d")` });
                return z.NEVER;
              }
              return Math.floor(ms / 1000);
            })
            .optional()
            .meta({
              description:
                'Send Strict-Transport-Security with this max-age on every answer of this ' +
                'listener, so browsers come back over HTTPS only (e.g. "365d")',
            }),
          sni: z
            .array(
              z.strictObject({
                cert: z.string().min(1).meta({ description: 'PEM certificate chain file' }),
                key: z.string().min(1).meta({ description: "The certificate's PEM private key file" }),
              }),
            )
            .optional()
            .meta({
              description:
                'More certificates on this listener, each presented to clients asking (SNI) ' +
                'for a name it covers — exactly, or by a *.wildcard one label deep; cert/key ' +
                'is the default for every other name',
            }),
        })
        .refine((t) => (t.cert === undefined) === (t.key === undefined), {
          message: 'cert and key go together: give both, or neither when acme names the certificates',
        })
        .refine((t) => t.cert !== undefined || t.acme !== undefined, {
          message: 'a certificate is needed: cert and key files, or acme: [names] for automatic ones',
        })
        .optional()
        .meta({
          description:
            'Serve HTTPS (TLS 1.2 and 1.3) with this certificate, or with ones obtained by ACME; after the files are ' +
            'replaced, a reload (POST /api/reload, SIGHUP, --watch) makes new handshakes ' +
            'present the new one',
        }),
      h2c: z
        .boolean()
        .default(false)
        .meta({
          description:
            'A cleartext listener that speaks HTTP/2 with prior knowledge (h2c) instead ' +
            'of HTTP/1.1, for a load balancer in front that sends HTTP/2 without TLS',
        }),
      redirectToHttps: z
        .boolean()
        .default(false)
        .meta({
          description:
            'A cleartext listener that answers every request with 308 to the same URL ' +
            "over HTTPS (on the first HTTPS listener's port), except /.well-known/acme-challenge/",
        }),
    }),
  ])
  .transform(
    (e): ListenerConfig =>
      'host' in e
        ? { address: e, tls: undefined, h2c: false, redirectToHttps: false }
        : { address: e.address, tls: e.tls, h2c: e.h2c, redirectToHttps: e.redirectToHttps },
  );

export interface UpstreamHostAddress {
  /** The origin undici connects to, e.g. "http://127.0.0.1:7001". */
  origin: string;
  /** How the host is named in logs, metrics and (when allowed) Proxy-Status next-hop. */
  label: string;
  /** The name its certificate must carry when the origin is an address found by DNS (tls.servername wins). */
  servername?: string;
}

const upstreamHost = z
  .string()
  .transform((v, ctx): UpstreamHostAddress => {
    const raw = v.includes('://') ? v : `http://${v}`;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: `"${v}" is not a host (write it like "127.0.0.1:7001" or "http://music-1.internal:8080")`,
      });
      return z.NEVER;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `"${v}": only http:// and https:// upstreams are supported` });
      return z.NEVER;
    }
    if (url.pathname !== '/' || url.search || url.username) {
      ctx.addIssue({
        code: 'custom',
        message: `"${v}": a host is scheme, name and port only, without a path, query or credentials`,
      });
      return z.NEVER;
    }
    return { origin: url.origin, label: url.host };
  })
  .meta({ description: 'An upstream host: "address:port" or "http(s)://name:port"' });

/** How an upstream finds its hosts in DNS (instead of a fixed list). */
export interface DnsDiscoveryConfig {
  /** The name to resolve: A/AAAA records, or SRV records when `srv`. */
  name: string;
  /** The port every A/AAAA address serves on; undefined with SRV (the records carry theirs). */
  port: number | undefined;
  srv: boolean;
  /** Which address families to ask for. */
  family: 'any' | 'ipv4' | 'ipv6';
  /** The DNS server to ask ("addr:port", IPv6 bracketed); the system's resolvers when undefined. */
  resolver: string | undefined;
  /** How the discovered hosts are reached. */
  scheme: 'http' | 'https';
  /** The record's TTL is honoured within these bounds (ms). */
  refresh: { min: number; max: number };
}

/** One label of a DNS name: up to 63 letters, digits, "_" or "-", not starting or ending with "-". */
const DNS_LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const DNS_NAME = new RegExp(`^(?=.{1,253}\\.?$)(?:${DNS_LABEL}\\.)*${DNS_LABEL}\\.?$`);

const dnsRefresh = z
  .union([
    duration('Re-resolve at this fixed interval, whatever the TTL'),
    z.strictObject({
      min: duration(
        'Never re-resolve more often than this, even when the TTL is shorter (a TTL of 0 would ' +
          'otherwise mean a query per request); also the first wait after a failed resolution',
      ).prefault('1s'),
      max: duration(
        'Re-resolve at least this often, even when the TTL is longer, so a host gone from the ' +
          'records leaves rotation within this time; also the longest wait between retries after failures',
      ).prefault('30s'),
    }),
  ])
  .transform((r) => (typeof r === 'number' ? { min: r, max: r } : r))
  .refine((r) => r.min <= r.max, { message: 'min is above max' })
  .refine((r) => r.min >= 100, { message: 're-resolving more often than every 100ms would flood the resolver' })
  .meta({
    description:
      "How often the name is resolved again: the records' TTL, bounded by { min, max } " +
      '(default 1s and 30s), or one duration for a fixed interval; after a failed ' +
      'resolution it is retried after min, then twice as long each time up to max',
  });

const dnsResolver = z
  .string()
  .transform((v, ctx) => {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+))(?::(\d{1,5}))?$/.exec(v.trim());
    const port = m?.[3] === undefined ? 53 : Number(m[3]);
    const host = m?.[1] ?? m?.[2];
    if (host === undefined || isIP(host) !== (m?.[1] === undefined ? 4 : 6) || port < 1 || port > 65535) {
      ctx.addIssue({
        code: 'custom',
        message: `"${v}" is not a DNS server address (write it like "10.96.0.10", "127.0.0.1:5353" or "[::1]:53")`,
      });
      return z.NEVER;
    }
    return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  })
  .meta({
    description:
      'The DNS server to ask, as "address" or "address:port" (IPv6 in brackets); the ' +
      "system's resolvers (/etc/resolv.conf) when absent",
  });

const dnsDiscovery = z
  .strictObject({
    name: z
      .string()
      .regex(DNS_NAME, 'not a DNS name (write it like "music.default.svc.cluster.local")')
      .refine((n) => isIP(n.replace(/\.$/, '')) === 0, 'an address, not a name: list it under hosts instead')
      .meta({
        description:
          'The name whose records are the hosts: every A/AAAA address (with `port`), or every SRV ' +
          'record (with `srv: true`, e.g. "_http._tcp.music.default.svc.cluster.local")',
      }),
    port: z
      .number()
      .int()
      .min(1, 'a port is 1 to 65535')
      .max(65535, 'a port is 1 to 65535')
      .optional()
      .meta({ description: 'The port every discovered address serves on (A/AAAA; SRV records carry their own)' }),
    srv: z
      .boolean()
      .default(false)
      .meta({
        description:
          'Read SRV records: each target (resolved to its addresses) with its own port and weight; ' +
          'only the records of the most preferred (lowest) priority are used',
      }),
    family: z.enum(['any', 'ipv4', 'ipv6']).default('any').meta({
      description: 'Which addresses to ask for: A and AAAA (any), A only (ipv4) or AAAA only (ipv6)',
    }),
    resolver: dnsResolver.optional(),
    refresh: dnsRefresh.prefault({}),
    scheme: z
      .enum(['http', 'https'])
      .default('http')
      .meta({
        description:
          'Reach the discovered hosts over http or https; with https the name checked in their ' +
          "certificates (and sent in SNI) is tls.servername, else the DNS name (an SRV record's target)",
      }),
  })
  .superRefine((d, ctx) => {
    if (d.srv && d.port !== undefined)
      ctx.addIssue({ code: 'custom', path: ['port'], message: 'SRV records carry their ports: leave port out' });
    if (!d.srv && d.port === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['port'],
        message: 'the port the discovered addresses serve on is needed (or srv: true to read it from SRV records)',
      });
  })
  .transform(
    (d): DnsDiscoveryConfig => ({
      name: d.name.replace(/\.$/, '').toLowerCase(),
      port: d.port,
      srv: d.srv,
      family: d.family,
      resolver: d.resolver,
      refresh: d.refresh,
      scheme: d.scheme,
    }),
  )
  .meta({
    description:
      'Discover the hosts in DNS instead of listing them (a Kubernetes headless service, a ' +
      "service registry): re-resolved on the records' TTL within refresh's bounds; hosts that " +
      'appear join the rotation, hosts that disappear are drained (requests under way finish); ' +
      'when resolution fails or answers nothing, the last good set is kept',
  });

const timeouts = z
  .strictObject({
    connect: duration('Time allowed to open a TCP (and TLS) connection to a host').prefault('1s'),
    response: duration('Time allowed from sending the request to receiving the response headers').prefault('10s'),
    idle: duration('Longest pause allowed between two chunks of the response body').prefault('30s'),
    total: duration(
      'Longest a whole exchange may take, body included; 0 means no limit (streams may run for hours)',
    ).prefault('0s'),
  })
  .meta({ description: 'Timeouts for talking to the hosts of this upstream' });

const keepAlive = z
  .strictObject({
    idle: duration(
      "How long an idle pooled connection is kept. Keep it below the upstream servers' own keep-alive timeout so the gateway never reuses a connection the server is closing; a shorter Keep-Alive: timeout= hint from the server wins",
    ).prefault('4s'),
    connections: z.number().int().min(1).default(128).meta({ description: 'Most connections opened to one host' }),
  })
  .meta({ description: 'Connection reuse towards the hosts' });

const retries = z
  .strictObject({
    attempts: z
      .number()
      .int()
      .min(1)
      .max(10)
      .default(3)
      .meta({ description: 'Most attempts per request, the first included; each retry goes to a different host' }),
    budget: z.number().min(0).max(1).default(0.2).meta({
      description:
        'Retries allowed as a share of the requests of the last 10 seconds, so a sick fleet is not hammered into a dead one',
    }),
    minPerSecond: z.number().min(0).default(1).meta({
      description: 'Retries always allowed per second on top of the budget, so a quiet upstream can still retry',
    }),
    backoff: duration(
      'Base of the jittered exponential backoff between attempts (the first retry waits up to this long)',
    ).prefault('10ms'),
    replayBody: size(
      'Request bodies up to this size are kept in memory so they can be sent again, when that is more than server.requestBuffer (which every body up to its size gets already); larger bodies stream and are retried only when nothing was sent',
    ).prefault('64KiB'),
  })
  .meta({ description: "Retries of failed attempts on another host, following the failure taxonomy's rules" });

const hedging = z
  .strictObject({
    enabled: z.boolean().default(true),
    percentile: z.number().min(50).max(99.9).default(95).meta({
      description:
        "An idempotent request still unanswered after this percentile of the pool's recent latency gets a second attempt on another host; the first answer wins",
    }),
    minDelay: duration('Never hedge sooner than this').prefault('10ms'),
    maxDelay: duration('Hedge by this time at the latest, whatever the percentile says').prefault('1s'),
  })
  .meta({ description: 'Hedged requests: a second attempt for a slow idempotent request, within the retry budget' });

const healthCheck = z
  .strictObject({
    enabled: z.boolean().default(true),
    path: z
      .string()
      .startsWith('/')
      .default('/')
      .meta({ description: 'Path requested with GET; any answer below 500 counts as healthy' }),
    interval: duration('Time between two checks of a host (with ±20% jitter)').prefault('2s'),
    timeout: duration('Time a check may take').prefault('1s'),
    healthyThreshold: z
      .number()
      .int()
      .min(1)
      .default(2)
      .meta({ description: 'Consecutive passing checks that bring a host back' }),
    unhealthyThreshold: z
      .number()
      .int()
      .min(1)
      .default(2)
      .meta({ description: 'Consecutive failing checks that take a host out' }),
  })
  .meta({ description: 'Active health checks of every host' });

const outlierDetection = z
  .strictObject({
    consecutiveFailures: z
      .number()
      .int()
      .min(1)
      .default(5)
      .meta({ description: 'Consecutive failed attempts (gateway-side failures or 5xx answers) that eject a host' }),
    baseEjection: duration(
      'How long a first ejection lasts; each further ejection of the same host lasts one more base',
    ).prefault('10s'),
    maxEjection: duration('The longest an ejection lasts').prefault('5m'),
    maxEjectedPercent: z
      .number()
      .min(0)
      .max(100)
      .default(50)
      .meta({ description: 'Most of a pool that may be ejected at once' }),
  })
  .meta({ description: 'Passive outlier detection: hosts that keep failing are taken out of rotation for a while' });

const concurrency = z
  .strictObject({
    enabled: z.boolean().default(true),
    min: z.number().int().min(1).default(4).meta({ description: 'The limit never goes below this' }),
    max: z
      .number()
      .int()
      .min(1)
      .default(2000)
      .meta({ description: 'The limit never goes above this. With min equal to max the limit is static' }),
    initial: z.number().int().min(1).default(100).meta({ description: 'The limit before anything was learned' }),
    tolerance: z.number().min(1).max(10).default(1.25).meta({
      description: 'How much slower than unloaded the answers may get (1.25: 25% slower) before the limit shrinks',
    }),
    probeInterval: duration(
      'How often the unloaded latency is measured again, by lowering the limit for a moment',
    ).prefault('30s'),
    queueSize: z
      .number()
      .int()
      .min(0)
      .default(1000)
      .meta({ description: 'Most requests waiting for a slot; beyond it they are shed at once (503)' }),
    maxWait: duration(
      'Longest a request may wait for a slot; one predicted to wait longer is shed at once (503 with Retry-After) rather than after the wait',
    ).prefault('100ms'),
  })
  .refine((c) => c.min <= c.max, { message: 'min is above max', path: ['min'] })
  .meta({
    description:
      "Adaptive concurrency limit: how many requests may wait for this upstream's answers at once, learned from its latency (a gradient controller); requests above it queue briefly or are shed with 503 connection_limit_reached",
  });

const upstream = z
  .strictObject({
    hosts: z.array(upstreamHost).min(1, 'an upstream needs at least one host').optional().meta({
      description: 'The hosts, each "address:port" or "http(s)://name:port" (or dns, to discover them)',
    }),
    dns: dnsDiscovery.optional(),
    protocol: z
      .enum(['http1', 'h2', 'h2c'])
      .default('http1')
      .meta({
        description:
          'The protocol spoken to the hosts: http1 (HTTP/1.1, over TLS for https:// hosts), h2 ' +
          '(HTTP/2 over TLS, offered by ALPN: every host https://) or h2c (HTTP/2 in cleartext with ' +
          'prior knowledge: every host http://). gRPC services need h2 or h2c',
      }),
    balance: z.enum(['p2c', 'round-robin', 'random']).default('p2c').meta({
      description:
        "How a host is picked: p2c (power of two choices weighing each host's latency EWMA by its outstanding requests), round-robin, or random",
    }),
    timeouts: timeouts.prefault({}),
    keepAlive: keepAlive.prefault({}),
    retries: retries.prefault({}),
    hedging: hedging.prefault({}),
    healthCheck: healthCheck.prefault({}),
    outlierDetection: outlierDetection.prefault({}),
    concurrency: concurrency.prefault({}),
    slowStart: duration(
      'A host returning to rotation (healthy again, or back from ejection) ramps from 10% to its full share of traffic over this time; 0 turns it off',
    ).prefault('10s'),
    panicThreshold: z.number().min(0).max(100).default(25).meta({
      description:
        'When fewer than this percentage of hosts are in rotation, traffic is spread over all of them (panic mode), in case the health checks themselves are wrong. Envoy uses 50%; with 3 hosts that sends traffic back to dead ones as soon as two fail, so the default here is 25%',
    }),
    hostHeader: z
      .enum(['preserve', 'upstream'])
      .default('preserve')
      .meta({ description: "Send the client's Host header upstream (preserve), or the host's own name (upstream)" }),
    tls: z
      .strictObject({
        ca: z
          .string()
          .min(1)
          .optional()
          .meta({
            description:
              'A PEM file of the CA certificates that verify the https:// hosts, in place ' +
              "of the system's (relative to the configuration file)",
          }),
        servername: z.string().min(1).optional().meta({
          description: 'The name sent in SNI and checked in the certificate; by default the host name of each host',
        }),
        cert: z.string().min(1).optional().meta({ description: 'A PEM client certificate for mutual TLS (with key)' }),
        key: z.string().min(1).optional().meta({ description: "The client certificate's PEM private key (with cert)" }),
        verify: z.boolean().default(true).meta({
          description: "Verify the hosts' certificates; false only for a test bench, never in production",
        }),
      })
      .refine((t) => (t.cert === undefined) === (t.key === undefined), {
        message: 'a client certificate needs both cert and key',
        path: ['key'],
      })
      .optional()
      .meta({
        description: 'How https:// hosts are reached: which CAs verify them, the SNI name, a client certificate',
      }),
  })
  .superRefine((u, ctx) => {
    if (u.hosts !== undefined && u.dns !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['dns'],
        message: 'hosts and dns both say where the hosts are: keep one of them',
      });
    else if (u.hosts === undefined && u.dns === undefined)
      ctx.addIssue({
        code: 'custom',
        message: 'an upstream needs hosts (a list of addresses) or dns (a name to discover them by)',
      });
    if (u.dns !== undefined && u.tls !== undefined && u.dns.scheme === 'http')
      ctx.addIssue({
        code: 'custom',
        path: ['tls'],
        message: 'tls settings are for hosts reached over HTTPS: set dns.scheme to https',
      });
    // A protocol that cannot be spoken to a host is refused at the host, so the message points at it.
    u.hosts?.forEach((h, i) => {
      const https = h.origin.startsWith('https:');
      if (u.protocol === 'h2' && !https)
        ctx.addIssue({
          code: 'custom',
          path: ['hosts', i],
          message:
            `"${h.label}": protocol h2 is HTTP/2 over TLS and needs an https:// host ` +
            '(for HTTP/2 in cleartext write protocol: h2c)',
        });
      if (u.protocol === 'h2c' && https)
        ctx.addIssue({
          code: 'custom',
          path: ['hosts', i],
          message:
            `"${h.label}": protocol h2c is HTTP/2 in cleartext and needs an http:// host ` +
            '(for HTTP/2 over TLS write protocol: h2)',
        });
    });
    if (u.dns !== undefined && (u.protocol === 'h2') !== (u.dns.scheme === 'https') && u.protocol !== 'http1')
      ctx.addIssue({
        code: 'custom',
        path: ['dns', 'scheme'],
        message:
          u.protocol === 'h2'
            ? 'protocol h2 is HTTP/2 over TLS: discovered hosts need dns.scheme https (or write protocol: h2c)'
            : 'protocol h2c is HTTP/2 in cleartext: discovered hosts need dns.scheme http (or write protocol: h2)',
      });
  })
  .transform(({ hosts, ...u }) => ({ ...u, hosts: hosts ?? [] }))
  .meta({ description: 'A pool of interchangeable hosts serving the same application' });

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A gRPC method's path, "/package.Service/Method", or a whole service "/package.Service/*". */
const GRPC_METHOD = /^\/[A-Za-z_][A-Za-z0-9_.]*\/([A-Za-z_][A-Za-z0-9_]*|\*)$/;

const route = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Name used in logs and metrics; defaults to the match path' }),
    title: z
      .string()
      .trim()
      .min(1)
      .max(60)
      .optional()
      .meta({
        description:
          'What listeners call this service, such as "Music" or "Podcasts": the name ' +
          "the status page shows; the route's name when absent",
      }),
    match: z
      .strictObject({
        path: z.string().startsWith('/', 'a path prefix starts with "/"').default('/').meta({
          description: 'Path prefix, matched on segment boundaries: "/api" matches "/api" and "/api/x", not "/apiary"',
        }),
        host: z
          .string()
          .min(1)
          .optional()
          .meta({ description: 'Host name to match (without port); "*.example.com" matches any subdomain' }),
        methods: z
          .array(
            z
              .string()
              .regex(METHOD, 'not an HTTP method token')
              .transform((m) => m.toUpperCase()),
          )
          .min(1)
          .optional()
          .meta({ description: 'Methods this route accepts; all when absent' }),
      })
      .prefault({}),
    upstream: z.string().meta({ description: 'Name of the upstream that serves this route' }),
    limits: z
      .strictObject({
        body: size('Largest request body accepted on this route (413 beyond it)').prefault('10MiB'),
      })
      .prefault({}),
    priority: z.enum(['high', 'normal', 'low']).default('normal').meta({
      description:
        'When the upstream is at its concurrency limit, waiting requests of higher priority go first and are shed last (say, continuing an audio stream over loading a cover image)',
    }),
    upgrades: z
      .array(
        z
          .string()
          .regex(
            /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(\/[!#$%&'*+.^_`|~0-9A-Za-z-]+)?$/,
            'a protocol token such as "websocket"',
          )
          .transform((p) => p.toLowerCase())
          .refine(
            (p) => p !== 'h2c',
            'h2c cannot be tunnelled: every request after the switch would bypass the routes',
          ),
      )
      .default(['websocket'])
      .meta({
        description:
          'Protocols a client may switch to (Upgrade) on this route, tunnelled to the upstream; a request asking for another one is answered as a plain request (RFC 9110 §7.8), so `Upgrade: h2c` never opens a tunnel',
      }),
    cache: z
      .strictObject({
        maxSize: size('Most bytes of responses this route keeps in memory; the least recently used go first').prefault(
          '64MiB',
        ),
        maxObjectSize: size(
          'Largest response body stored; a larger one streams through uncached and is never buffered',
        ).prefault('8MiB'),
        staleIfError: duration(
          'How stale a stored copy may be and still stand in for a 502, 503 or 504 ' +
            '(an upstream failing, or the gateway shedding), even when the origin did ' +
            'not allow it with stale-if-error; 0: only as the origin allows',
        ).prefault('0s'),
        collapseWait: duration(
          'How long requests for an object already being fetched wait for that one ' +
            'fetch (a thundering herd becomes one upstream request); past it they go ' +
            'upstream themselves',
        ).prefault('5s'),
      })
      .optional()
      .meta({
        description:
          'A shared HTTP cache (RFC 9111) for this route: `cache: {}` turns it on ' +
          'with its defaults. Fresh copies are answered without going upstream, stale ' +
          'ones revalidated, and a stale copy stands in for an error (stale-if-error, ' +
          'RFC 5861). Every answer on the route carries Cache-Status (RFC 9211). See ' +
          'docs/caching.md',
      }),
    explainUpstreamErrors: z
      .boolean()
      .default(true)
      .meta({
        description:
          "When every attempt ends in an upstream's own 502, 503 or 504, answer a " +
          "browser (or a program asking for JSON) with Gangway's explanation — keeping " +
          "the upstream's status and Retry-After, and naming its answer in Proxy-Status " +
          "— unless the upstream's body is already in the form the client asked for " +
          "(its own HTML page, its own JSON error). Off: relay the upstream's answer " +
          'as it is',
      }),
    grpc: z
      .strictObject({
        idempotentMethods: z
          .array(
            z
              .string()
              .regex(
                GRPC_METHOD,
                'write a gRPC method as "/package.Service/Method", or "/package.Service/*" for all of a service',
              ),
          )
          .default([])
          .meta({
            description:
              'gRPC methods that may be sent again after they reached a host (retried on another ' +
              'host, hedged when slow): only those that change nothing, or change it the same way ' +
              'twice. Any other gRPC call is retried only when it never left the gateway',
          }),
      })
      .prefault({})
      .meta({ description: 'What this route knows about the gRPC services behind it' }),
    rateLimit: z
      .strictObject({
        requests: z.number().int().min(1).meta({ description: 'Requests each client may make per window' }),
        window: duration('The window the request count refills over').prefault('1s'),
        burst: z
          .number()
          .int()
          .min(1)
          .optional()
          .meta({ description: 'Most requests a client may make at once after being idle; defaults to `requests`' }),
        key: z
          .string()
          .regex(/^(address|header:[A-Za-z0-9-]+)$/, 'write "address" or "header:NAME"')
          .default('address')
          .meta({
            description: 'What identifies a client: its address, or a request header such as "header:x-api-key"',
          }),
      })
      .optional()
      .meta({
        description: 'Per-client rate limit (token bucket): over it, 429 with Retry-After and RateLimit headers',
      }),
  })
  .meta({ description: 'Which requests go to which upstream; the first route that matches wins' });

const server = z
  .strictObject({
    headerTimeout: duration(
      'Time a client has to send the complete request headers (protects against slowloris)',
    ).prefault('10s'),
    requestTimeout: duration(
      'Time a client has to send the complete request, body included; 0 means no limit',
    ).prefault('5m'),
    keepAliveTimeout: duration('How long an idle client connection is kept open').prefault('5s'),
    maxHeaderSize: size('Largest request header section accepted (431 beyond it)').prefault('16KiB'),
    maxUriLength: z
      .number()
      .int()
      .min(64)
      .default(8192)
      .meta({ description: 'Longest request target accepted, in bytes (414 beyond it)' }),
    drainTimeout: duration(
      'On shutdown, how long in-flight requests may take to finish before connections are cut',
    ).prefault('30s'),
    maxEventLoopDelay: duration(
      'When the event loop was held up longer than this in the last 100 ms, new requests are shed at once (503) until it recovers, so the process does not stall; 0 turns it off',
    ).prefault('250ms'),
    bodyTimeout: duration(
      "Longest pause between two pieces of a request body; a body that stalls longer is answered 408 (the client's fault, never a host's)",
    ).prefault('30s'),
    requestBuffer: size(
      'Request bodies up to this size are read whole before the request goes upstream, so a slow sender holds no concurrency slot or upstream connection, and a retry can send the body again; larger bodies stream as they arrive',
    ).prefault('1MiB'),
    requestBufferTotal: size(
      'Most request-body bytes held in memory at once across all requests; beyond it, bodies stream instead of being buffered',
    ).prefault('256MiB'),
    http2: z
      .strictObject({
        maxConcurrentStreams: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(100)
          .meta({
            description:
              'Streams (requests) one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); ' +
              'more are refused (REFUSED_STREAM), and a client that keeps opening them is sent away',
          }),
        idleTimeout: duration(
          'An HTTP/2 connection with nothing moving on it this long is told to go away (GOAWAY); streams ' +
            'still open on it finish first',
        ).prefault('2m'),
        sendTimeout: duration(
          'Longest an HTTP/2 response may wait for the client to take more of it (a client that stops ' +
            'reading, or never opens its flow-control window); beyond it the stream is reset, so it holds ' +
            'no upstream connection or memory',
        ).prefault('60s'),
      })
      .prefault({})
      .meta({
        description:
          'HTTP/2 to clients (TLS listeners by ALPN, h2c listeners); header lists are bounded by maxHeaderSize, ' +
          'and floods of resets, pings, settings, empty or CONTINUATION frames end the connection (docs/security.md)',
      }),
    paths: z
      .strictObject({
        rejectDotSegments: z.boolean().default(false).meta({
          description:
            'Refuse (400) any path with a "." or ".." segment, even one that normalises harmlessly; by default they are removed (RFC 3986 §5.2.4) before routing',
        }),
        rejectEncodedSlash: z.boolean().default(false).meta({
          description:
            'Refuse (400) any path with an encoded slash ("%2F"); by default one is kept as data unless it hides a dot segment',
        }),
      })
      .prefault({})
      .meta({
        description:
          'The path policy (docs/security.md): paths are normalised before routing and forwarded normalised; these switches only make it stricter',
      }),
  })
  .meta({ description: 'The client-facing listener' });

const LANGUAGE = /^[a-z]{2,3}(-[a-z0-9]{2,8})?$/;

const page = z
  .strictObject({
    brand: z
      .strictObject({
        name: z.string().min(1).optional().meta({ description: "Your service's name, shown at the top of the page" }),
        accent: z
          .string()
          .regex(/^#[0-9a-fA-F]{6}$/, 'write a colour like "#0b57d0"')
          .optional()
          .meta({ description: 'Accent colour for links and buttons in light mode (keep 4.5:1 contrast on white)' }),
        logo: z
          .string()
          .regex(
            /^data:image\/(png|svg\+xml|jpeg|webp|gif);base64,[A-Za-z0-9+/=]+$/,
            'a logo is a base64 data: URL (the page makes no outside requests)',
          )
          .optional()
          .meta({ description: 'A small logo as a data: URL (data:image/svg+xml;base64,…), shown 32×32' }),
      })
      .prefault({}),
    texts: z
      .record(
        z.string().regex(LANGUAGE, 'a language tag such as "en", "de" or "pt-br"'),
        z.record(z.string(), z.string()),
      )
      .default({})
      .meta({
        description:
          'Your own words, per language, for any key of the catalogue (src/explain/catalogue.ts), e.g. `{ en: { "headline.service": "Our music service is taking a break" } }`; a language not built in is offered once it has texts',
      }),
    template: z.string().min(1).optional().meta({
      description:
        'Path of an HTML file replacing the whole page; placeholders {{lang}} {{status}} {{headline}} {{title}} {{side}} {{explanation}} {{message}} {{steps}} {{when}} {{reference}} {{statusLink}} {{requestId}} {{time}} {{retryAfter}} {{brand}} {{head}} {{script}} are filled in (all but steps, when, reference, side, message, statusLink, brand, head and script escaped)',
    }),
    autoRetry: z.boolean().default(true).meta({
      description:
        'Pages answering a GET with Retry-After try again by themselves (a countdown; a meta refresh without JavaScript)',
    }),
  })
  .superRefine((p, ctx) => {
    for (const [lang, texts] of Object.entries(p.texts)) {
      for (const key of Object.keys(texts)) {
        if (!TEXT_KEYS.has(key))
          ctx.addIssue({
            code: 'custom',
            path: ['texts', lang, key],
            message: `"${key}" is not a text of the catalogue (see src/explain/catalogue.ts)`,
          });
      }
    }
  })
  .meta({ description: 'The HTML error page people see in a browser' });

const errors = z
  .strictObject({
    exposeDetails: z.boolean().default(false).meta({
      description:
        'Show every client the failing host (Proxy-Status next-hop) and the low-level error. Off by default: addresses and raw errors map your network for an attacker; the access log always has them',
    }),
    trustedClients: z.array(z.string().min(1)).default([]).meta({
      description:
        'Client addresses (exact, e.g. "127.0.0.1" or "::1") that see the details even when exposeDetails is off',
    }),
    statusPage: z
      .string()
      .optional()
      .meta({ description: 'URL of the public status page, linked from every error page and problem document' }),
    page: page.prefault({}),
  })
  .meta({ description: "What the gateway's own error responses reveal" });

const isoTime = (what: string) =>
  z
    .string()
    .refine((v) => !Number.isNaN(Date.parse(v)), {
      message: 'not a date and time (write it like "2026-12-01T02:00:00Z")',
    })
    .transform((v) => Date.parse(v))
    .meta({ description: `${what}; an ISO 8601 date and time` });

const maintenance = z
  .strictObject({
    windows: z
      .array(
        z
          .strictObject({
            start: isoTime('When the window opens'),
            end: isoTime('When the window closes'),
            message: z
              .string()
              .optional()
              .meta({ description: 'Shown to people on the error page and in problem details' }),
            routes: z
              .array(z.string().min(1))
              .min(1)
              .optional()
              .meta({ description: 'Route names in maintenance; every route when absent' }),
          })
          .refine((w) => w.end > w.start, { message: 'a window ends after it starts', path: ['end'] }),
      )
      .default([])
      .meta({
        description: 'Scheduled maintenance windows: matching requests get 503 with Retry-After until the window ends',
      }),
    allow: z
      .strictObject({
        addresses: z
          .array(z.string().min(1))
          .default([])
          .meta({ description: 'Client addresses that pass during maintenance (staff)' }),
        header: z
          .string()
          .min(1)
          .optional()
          .meta({ description: 'A request header name; requests carrying it with the value of `headerValue` pass' }),
        headerValue: z.string().min(1).optional(),
      })
      .prefault({}),
  })
  .meta({ description: 'Planned maintenance: scheduled windows here, or switched on and off through the admin API' });

const log = z
  .strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    access: z.boolean().default(true).meta({ description: 'Write one access-log line per request' }),
    pretty: z
      .union([z.boolean(), z.literal('auto')])
      .default('auto')
      .meta({ description: 'Human-readable log lines; "auto" means when standard output is a terminal' }),
  })
  .meta({ description: 'Logging' });

const store = z
  .strictObject({
    redis: z
      .strictObject({
        url: z
          .string()
          .regex(/^rediss?:\/\/[^/]/, 'a Redis URL such as "redis://127.0.0.1:6379" (rediss:// for TLS)')
          .meta({
            description:
              'The Redis 7 (or Valkey) every instance of this gateway shares, e.g. "redis://redis:6379/0"; ' +
              '"rediss://" speaks TLS',
          }),
        keyPrefix: z
          .string()
          .min(1)
          .optional()
          .meta({
            description:
              'Prepended to every key and channel; by default "gangway:{NAME}:" with this gateway\'s name, so ' +
              'instances that share a name share state (the braces keep the keys on one Redis Cluster slot)',
          }),
        username: z.string().min(1).optional().meta({ description: 'The Redis ACL user (AUTH username password)' }),
        password: z.string().min(1).optional().meta({
          description: 'The Redis password; GANGWAY_REDIS_PASSWORD overrides it (keep it out of the file)',
        }),
        tls: z
          .strictObject({
            ca: z.string().min(1).optional().meta({
              description: "A PEM file of the CA that signed Redis's certificate (relative to the configuration file)",
            }),
            cert: z
              .string()
              .min(1)
              .optional()
              .meta({ description: 'A PEM client certificate, when Redis asks for one' }),
            key: z.string().min(1).optional().meta({ description: "The client certificate's PEM private key" }),
          })
          .refine((t) => (t.cert === undefined) === (t.key === undefined), {
            message: 'a client certificate needs both cert and key',
            path: ['key'],
          })
          .optional()
          .meta({ description: 'TLS to Redis (implied by a rediss:// URL): the CA to trust, a client certificate' }),
        deadline: duration(
          'Longest wait for any one store call; past it the gateway goes on from its local view (requests ' +
            'never wait for the store)',
        ).prefault('5ms'),
      })
      .optional()
      .meta({
        description:
          'Share state through Redis with every instance that has the same name: the maintenance switch, ' +
          'host drains, rate limits (then fleet-wide) and incidents. See docs/operations.md',
      }),
  })
  .meta({
    description:
      'Where state shared by instances lives. Without it, state stays in this process (or, with workers, ' +
      'on this machine)',
  });

const NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;

export const configSchema = z
  .strictObject({
    name: z
      .string()
      .regex(NAME, 'a name is a letter followed by letters, digits, ".", "_" or "-"')
      .default('gangway')
      .meta({
        description:
          "This gateway's name in Via and Proxy-Status; give chained gateways distinct names, since a gateway that sees its own name in Via answers 502 proxy_loop_detected",
      }),
    listen: z
      .union([listener, z.array(listener).min(1, 'at least one listener is needed')])
      .transform((l) => (Array.isArray(l) ? l : [l]))
      .refine((l) => !l.some((e) => e.redirectToHttps) || l.some((e) => e.tls !== undefined), {
        message: 'redirectToHttps needs an HTTPS listener (one with tls) to send clients to',
      })
      .refine((l) => !l.some((e) => e.redirectToHttps && e.tls !== undefined), {
        message: 'a listener with tls already speaks HTTPS: redirectToHttps is for a cleartext one',
      })
      .refine((l) => !l.some((e) => e.h2c && (e.tls !== undefined || e.redirectToHttps)), {
        message: 'h2c is HTTP/2 in cleartext: not with tls (which offers h2 by ALPN) nor with redirectToHttps',
      })
      .prefault('127.0.0.1:8080')
      .meta({
        description:
          'Where the gateway accepts client traffic: an address ("127.0.0.1:8080"), ' +
          'or { address, tls: { cert, key } } for HTTPS, or a list of them',
      }),
    admin: z
      .union([address('Where the admin API (health, metrics, status) listens'), z.literal(false)])
      .prefault('127.0.0.1:9901')
      .meta({ description: 'Where the admin API (health, metrics, status) listens, or false for none' }),
    upstreams: z
      .record(
        z.string().regex(NAME, 'an upstream name is a letter followed by letters, digits, ".", "_" or "-"'),
        upstream,
      )
      .refine((u) => Object.keys(u).length > 0, 'at least one upstream is needed'),
    routes: z.array(route).min(1, 'at least one route is needed'),
    adminHosts: z
      .array(
        z
          .string()
          .min(1)
          .transform((h) => h.toLowerCase()),
      )
      .default([])
      .meta({
        description:
          'Names (without port) the admin API answers to besides IP addresses and localhost, e.g. its Kubernetes service name; a request naming any other host is refused, so a web page cannot reach the admin API by DNS rebinding',
      }),
    adminToken: z.string().min(16, 'an admin token is at least 16 characters').optional().meta({
      description:
        'Bearer token that admin API changes (PUT/POST) require; GANGWAY_ADMIN_TOKEN overrides it. Without one, changes are accepted only when the admin listener is on loopback',
    }),
    workers: z
      .union([z.literal('auto'), z.int().min(1, 'at least one worker').max(256, 'at most 256 workers')])
      .default(1)
      .meta({
        description:
          'Worker processes serving the listeners: a number, or "auto" for one per available core. ' +
          'Above 1, the `gangway` process supervises them: it restarts a crashed worker with backoff, ' +
          'reloads and drains them all, and the admin API speaks for the whole machine. ' +
          'Changes on restart only',
      }),
    maintenance: maintenance.prefault({}),
    server: server.prefault({}),
    errors: errors.prefault({}),
    status: z
      .strictObject({
        path: z
          .string()
          .regex(/^\/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$/, 'a path such as "/status" (no trailing slash)')
          .optional()
          .meta({
            description:
              'Also serve the public status page on the main listener at this path (it is always on the admin listener at /status); error pages link to it unless errors.statusPage says otherwise. Host addresses are left out there',
          }),
      })
      .prefault({})
      .meta({ description: 'The status page' }),
    log: log.prefault({}),
    store: store.optional(),
    acme: acme.prefault({}),
  })
  .superRefine((config, ctx) => {
    if (config.workers !== 1) {
      // Each worker binds every address itself (SO_REUSEPORT): "any free port" would be a different one each.
      config.listen.forEach((l, i) => {
        if (l.address.port === 0)
          ctx.addIssue({
            code: 'custom',
            path: ['listen', ...(config.listen.length > 1 ? [i] : [])],
            message: 'with several workers every listener needs a fixed port (each worker binds it), not 0',
          });
      });
      if (config.admin !== false && config.admin.port === 0)
        ctx.addIssue({
          code: 'custom',
          path: ['admin'],
          message: 'with several workers the admin listener needs a fixed port (each worker binds it), not 0',
        });
    }
    config.routes.forEach((r, i) => {
      if (!Object.hasOwn(config.upstreams, r.upstream)) {
        const known = Object.keys(config.upstreams)
          .map((n) => `"${n}"`)
          .join(', ');
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'upstream'],
          message: `no upstream named "${r.upstream}" (known: ${known})`,
        });
      }
    });
  })
  .meta({ title: 'Gangway configuration' });

/** A configuration document as the schema yields it: every default filled in, every unit resolved. */
export type ConfigDocument = z.output<typeof configSchema>;

/**
 * A configuration ready to run: the document, with what the loader added to it — the admin
 * token in force (GANGWAY_ADMIN_TOKEN over adminToken) and the contents of the files it names.
 */
export type GatewayConfig = ConfigDocument & {
  /** Files the configuration names (the error page template), read by the loader: path → text. */
  readonly files: ReadonlyMap<string, string>;
};
/** What a person writes: the YAML file's shape, before defaults. */
export type GatewayConfigInput = z.input<typeof configSchema>;
export type UpstreamConfig = GatewayConfig['upstreams'][string];
export type RouteConfig = GatewayConfig['routes'][number];

/** The JSON Schema of the configuration file, for editors and `gangway schema`. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

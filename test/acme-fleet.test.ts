/**
 * ACME shared by the processes of one service, end to end: real Gangway processes (`gangway
 * start`), a real Pebble whose validations go through the tests' DNS server to loopback, and a
 * real redis-server. Pebble is reached through a proxy of the tests' own that counts the orders
 * placed per name at the CA's door (and can hold one back). Covered:
 *
 * - workers on one machine (the supervisor's store, the directory storage): the CA's looks land
 *   on either worker, and a worker that did not order answers them — by HTTP-01 and TLS-ALPN-01;
 *   one order per name; every worker presents every certificate;
 * - two instances sharing a Redis behind a round-robin balancer: one order per name, the same
 *   certificate presented by both, a renewal by one presented by the other without a restart;
 * - Redis stopped: the certificates held are still presented, an order for a new name waits and
 *   is placed once, by one instance, when Redis returns;
 * - an instance killed (SIGKILL) while it holds the issuance lock: the other orders once the
 *   lock's time runs out;
 * - an order that fails: the other instance waits for the failed one's retry time, so the CA
 *   sees one failed validation per wait for the fleet, not one per instance;
 * - in one process, on the store itself: a process that missed an announcement answers from the
 *   store (and only for what looks like a token, at a bounded rate); the account key's first
 *   writer wins in both storages; the store's lock is extended while held and lost when not.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { ChallengeAnswers } from '../src/acme/challenges.js';
import { AcmeFleet } from '../src/acme/fleet.js';
import { caFolder, DirectoryStorage } from '../src/acme/storage.js';
import { StoreStorage } from '../src/acme/store-storage.js';
import { validateConfig } from '../src/config/load.js';
import { createListener } from '../src/listen/listener.js';
import type { Runtime } from '../src/runtime.js';
import { StoreLink } from '../src/state/link.js';
import { MemoryStore } from '../src/state/memory.js';
import { dnsServer } from './support/dns-server.js';
import { closedPort, httpUpstream, minimalConfig } from './support/harness.js';
import {
  eventually,
  handshake,
  needPebble,
  PEBBLE_KEY,
  PEBBLE_TRUST,
  type Pebble,
  pebbleTrust,
  servedCertificate,
  sleep,
  startPebble,
} from './support/pebble.js';
import { redisMissing, type RedisServer, startRedis } from './support/redis.js';
import { type CliProcess, spawnCli } from './support/spawn-cli.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await pebbleTrust.close();
});

const noRedis = redisMissing();

const NAMES = {
  http: Array.from({ length: 5 }, (_, i) => `h${i + 1}.workers.test`),
  tls: Array.from({ length: 5 }, (_, i) => `t${i + 1}.workers.test`),
  fleet: ['f1.fleet.test', 'f2.fleet.test'],
  outage: ['c1.fleet.test', 'c2.fleet.test'],
  killed: ['d1.fleet.test'],
};
/** Not in the tests' DNS: the CA cannot validate it, and every order for it fails. */
const UNRESOLVABLE = 'nowhere.fleet.test';
const dns = await dnsServer(
  Object.fromEntries(Object.values(NAMES).flatMap((n) => n.map((name) => [name, '127.0.0.1']))),
);
cleanups.push(() => dns.close());

/**
 * Pebble behind a proxy of ours: every request passes (with its Host, so Pebble's URLs name the
 * proxy and everything comes back through it), and each new order is counted by the names it
 * asks for. `hold(name)` keeps that name's next order waiting until `drop()` cuts it.
 */
async function countingCa(pebble: Pebble) {
  const orders = new Map<string, number>();
  /** When each name's orders reached the CA. */
  const orderTimes = new Map<string, number[]>();
  let holding: string | undefined;
  const held: Array<() => void> = [];
  const server = createHttpsServer({ cert: PEBBLE_TRUST, key: PEBBLE_KEY_TEXT }, (req, res) => {
    void pass(req, res);
  });
  const pass = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    if (req.method === 'POST' && req.url === '/order-plz') {
      const jws = JSON.parse(body.toString()) as { payload: string };
      const payload = JSON.parse(Buffer.from(jws.payload, 'base64url').toString()) as {
        identifiers: Array<{ value: string }>;
      };
      const names = payload.identifiers.map((i) => i.value);
      if (holding !== undefined && names.includes(holding)) {
        holding = undefined;
        // Held until the test drops it: the CA never sees it.
        held.push(() => res.socket?.destroy());
        return;
      }
      for (const n of names) {
        orders.set(n, (orders.get(n) ?? 0) + 1);
        orderTimes.set(n, [...(orderTimes.get(n) ?? []), Date.now()]);
      }
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    try {
      const answer = await request(`https://127.0.0.1:${pebble.port}${req.url}`, {
        method: req.method as 'GET',
        headers,
        body: body.length > 0 ? body : undefined,
        dispatcher: pebbleTrust,
      });
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(answer.headers))
        if (v !== undefined && k !== 'transfer-encoding' && k !== 'connection') out[k] = v;
      res.writeHead(answer.statusCode, out);
      res.end(Buffer.from(await answer.body.arrayBuffer()));
    } catch {
      res.socket?.destroy();
    }
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  cleanups.push(() => server.closeAllConnections());
  return {
    directory: `https://127.0.0.1:${(server.address() as AddressInfo).port}/dir`,
    orders,
    orderTimes,
    hold(name: string) {
      holding = name;
    },
    /** True once an order is held back. */
    holds: () => held.length > 0,
    drop() {
      for (const h of held.splice(0)) h();
    },
  };
}
const PEBBLE_KEY_TEXT = readFileSync(PEBBLE_KEY, 'utf8');

/**
 * A TCP balancer on `port` handing each new connection to the next of `targets` in turn, and to
 * the one after when a target refuses (a load balancer taking a dead instance out of rotation).
 */
async function roundRobin(port: number, targets: readonly number[]): Promise<Server> {
  let next = 0;
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const server = createServer((client) => {
    track(client);
    client.pause();
    client.on('error', () => undefined);
    const first = next++;
    // The targets after this connection's own turn, one by one (not the next connection's turn).
    const attempt = (tries: number): void => {
      const upstream = connect(targets[(first + targets.length - tries) % targets.length]!, '127.0.0.1');
      track(upstream);
      let connected = false;
      upstream.once('error', () => {
        if (!connected && tries > 1) attempt(tries - 1);
        else client.destroy();
      });
      upstream.once('connect', () => {
        connected = true;
        upstream.on('error', () => client.destroy());
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
      });
    };
    attempt(targets.length);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(r);
      }),
  );
  return server;
}

/** Ports handed out by this file, never twice (the OS may offer a port just closed again). */
const handedOut = new Set<number>();
async function freePort(): Promise<number> {
  for (;;) {
    const port = await closedPort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

interface Instance {
  cli: CliProcess;
  file: string;
  httpPort: number;
  tlsPort: number;
  /** The JSON log lines written so far (every worker's, in a machine of workers). */
  lines(): Array<Record<string, unknown>>;
  count(msg: string, name?: string): number;
}

interface InstanceSettings {
  name: string;
  directory: string;
  names: string[];
  upstream: string;
  workers?: number;
  redis?: string;
  challenges?: string;
  retryDelay?: string;
  maxRetryDelay?: string;
  httpPort?: number;
  tlsPort?: number;
}

function configText(s: InstanceSettings & { httpPort: number; tlsPort: number }): string {
  return `name: ${s.name}
workers: ${s.workers ?? 1}
listen:
  - { address: "127.0.0.1:${s.httpPort}", redirectToHttps: true }
  - { address: "127.0.0.1:${s.tlsPort}", tls: { acme: [${s.names.join(', ')}] } }
admin: false
${s.redis === undefined ? '' : `store: { redis: { url: "${s.redis}" } }\n`}acme:
  directory: "${s.directory}"
  storage: acme
  ca: pebble-ca.pem
  retryDelay: ${s.retryDelay ?? '300ms'}
  maxRetryDelay: ${s.maxRetryDelay ?? '2s'}
  lockTimeout: 3s
  challenges: [${s.challenges ?? 'http-01'}]
upstreams:
  music: { hosts: ["${s.upstream}"], healthCheck: { enabled: false } }
routes:
  - { match: { path: "/" }, upstream: music }
`;
}

/** A `gangway start` process (with its own storage directory), once it listens. */
async function startInstance(s: InstanceSettings): Promise<Instance> {
  const dir = mkdtempSync(join(tmpdir(), 'gangway-acme-fleet-'));
  writeFileSync(join(dir, 'pebble-ca.pem'), PEBBLE_TRUST);
  const file = join(dir, 'gangway.yaml');
  const settings = {
    ...s,
    httpPort: s.httpPort ?? (await freePort()),
    tlsPort: s.tlsPort ?? (await freePort()),
  };
  writeFileSync(file, configText(settings));
  const cli = spawnCli(['start', '-c', file]);
  cleanups.push(async () => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.exited;
    }
  });
  if (!(await cli.until('gangway listening', 30_000))) throw new Error(`gangway did not start:\n${cli.output()}`);
  const lines = (): Array<Record<string, unknown>> =>
    cli
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  return {
    cli,
    file,
    httpPort: settings.httpPort,
    tlsPort: settings.tlsPort,
    lines,
    count: (msg, name) => lines().filter((l) => l.msg === msg && (name === undefined || l.name === name)).length,
  };
}

async function helloUpstream(): Promise<string> {
  const up = await httpUpstream((req, res) => {
    req.resume();
    res.end('hello');
  });
  cleanups.push(() => up.close());
  return up.address;
}

/** The SHA-256 fingerprint a fresh handshake with `port` for `name` shows, once Pebble's root vouches for it. */
async function fingerprint(port: number, name: string, root: string): Promise<string> {
  return (await servedCertificate(port, name, root, 40_000)).fingerprint256;
}

/** Which workers (by their log's `worker`) hold a certificate for `name`: the orderer and those that took it. */
function workersHolding(instance: Instance, name: string): Set<unknown> {
  const held = [
    'acme: certificate obtained',
    'acme: certificate stored by another gateway presented',
    'acme: stored certificate reused',
  ];
  return new Set(
    instance
      .lines()
      .filter((l) => l.name === name && held.includes(String(l.msg)))
      .map((l) => l.worker),
  );
}

/** An instance's log lines about `name`, for a failure's message. */
function linesAbout(instance: Instance, name: string): string {
  return instance
    .lines()
    .filter((l) => l.name === name)
    .map((l) => `worker ${String(l.worker)}: ${String(l.msg)} ${String(l.detail ?? l.err ?? '')}`)
    .join('\n');
}

for (const challenge of ['http-01', 'tls-alpn-01'] as const) {
  const names = challenge === 'http-01' ? NAMES.http : NAMES.tls;
  test(`workers: 2 get certificates by ${challenge} though the CA's looks land on both workers: a worker ` +
    'that did not order answers, one order per name, every worker presents every certificate', {
    timeout: 120_000,
  }, async (t) => {
    if (!needPebble(t)) return;
    const httpPort = await freePort();
    const tlsPort = await freePort();
    const pebble = await startPebble(cleanups, {
      httpPort,
      tlsPort,
      dns: dns.address,
      env: { PEBBLE_AUTHZREUSE: '0' },
    });
    const ca = await countingCa(pebble);
    const machine = await startInstance({
      name: `workers-${challenge}`,
      directory: ca.directory,
      names,
      upstream: await helloUpstream(),
      workers: 2,
      challenges: challenge,
      httpPort,
      tlsPort,
    });
    const root = await pebble.root();
    for (const name of names) await fingerprint(tlsPort, name, root);
    // Each worker holds each name: one ordered it, the other took it from the storage directory.
    for (const name of names)
      await eventually(`both workers holding ${name}`, 20_000, () =>
        workersHolding(machine, name).size === 2 ? true : undefined,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; its log:\n${linesAbout(machine, name)}`);
      });
    const ordered = names.map((n) => ca.orders.get(n) ?? 0);
    assert.deepEqual(
      ordered,
      names.map(() => 1),
      `one order per name at the CA; ${names
        .filter((n) => ca.orders.get(n) !== 1)
        .map((n) => `${n}:\n${linesAbout(machine, n)}`)
        .join('\n')}`,
    );
    const served = machine.lines().filter((l) => l.msg === 'acme: challenge answer served to the CA');
    const fromOther = served.filter((l) => l.offeredHere === false);
    t.diagnostic(
      `${served.length} looks of the CA answered: ${fromOther.length} by a worker that did not order ` +
        `(workers ${[...new Set(fromOther.map((l) => l.worker))].join(', ')})`,
    );
    assert.ok(served.length >= names.length, 'every look answered');
    assert.ok(fromOther.length >= 1, 'a worker that did not order answered the CA at least once');
    assert.ok(
      served.every((l) => l.type === challenge),
      `only ${challenge} was answered`,
    );
    assert.equal(machine.count('acme: could not obtain a certificate; retrying later'), 0, 'no order failed');
    assert.equal(machine.count('acme: new account key stored'), 1, 'one account for the machine');
    const waited = machine.count('acme: another gateway is ordering this name; waiting for its certificate');
    t.diagnostic(`${waited} waits for the other worker's order`);
    const acknowledged = machine.lines().filter((l) => l.msg === 'acme: every process holds the challenge answer');
    assert.equal(acknowledged.length, names.length, 'every answer acknowledged by both workers before the CA looked');
    t.diagnostic(
      `acknowledged by every worker within ${Math.max(...acknowledged.map((l) => Number(l.ms)))} ms at most`,
    );
  });
}

/** Two instances started together behind round-robin balancers on the ports the CA validates on. */
async function twoInstances(httpPort: number, tlsPort: number, settings: InstanceSettings): Promise<Instance[]> {
  const a = { httpPort: await freePort(), tlsPort: await freePort() };
  const b = { httpPort: await freePort(), tlsPort: await freePort() };
  await roundRobin(httpPort, [a.httpPort, b.httpPort]);
  await roundRobin(tlsPort, [a.tlsPort, b.tlsPort]);
  return Promise.all([startInstance({ ...settings, ...a }), startInstance({ ...settings, ...b })]);
}

/** Two instances (one process each) sharing `redis`, behind round-robin balancers on the CA's ports. */
async function fleetOf(
  t: { diagnostic(s: string): void },
  name: string,
  names: string[],
  redis: RedisServer,
  pebbleOptions: { validitySeconds?: number } = {},
  more: Partial<InstanceSettings> = {},
) {
  const httpPort = await freePort();
  const tlsPort = await freePort();
  const pebble = await startPebble(cleanups, { httpPort, tlsPort, dns: dns.address, ...pebbleOptions });
  const ca = await countingCa(pebble);
  const upstream = await helloUpstream();
  const settings = { name, directory: ca.directory, names, upstream, redis: redis.url, ...more };
  const [one, other] = (await twoInstances(httpPort, tlsPort, settings)) as [Instance, Instance];
  t.diagnostic(`instances: pid ${one.cli.child.pid} and pid ${other.cli.child.pid}`);
  return { pebble, ca, one, other, root: await pebble.root(), settings };
}

test('two instances sharing a Redis: one order per name for the fleet, the same certificate presented by ' +
  'both, and a renewal by one presented by the other without a restart', {
  timeout: 120_000,
  skip: noRedis,
}, async (t) => {
  if (!needPebble(t)) return;
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  // 12-second certificates: renewed 8 s after they begin.
  const { ca, one, other, root } = await fleetOf(t, 'fleet-b', NAMES.fleet, redis, { validitySeconds: 12 });
  const first = new Map<string, string>();
  for (const name of NAMES.fleet) {
    const a = await fingerprint(one.tlsPort, name, root);
    const b = await eventually(`the other instance presenting ${name}'s certificate`, 10_000, async () => {
      const seen = await fingerprint(other.tlsPort, name, root);
      return seen === a ? seen : undefined;
    });
    assert.equal(b, a, `both instances present the same certificate for ${name}`);
    first.set(name, a);
    assert.equal(ca.orders.get(name), 1, `one order for ${name} across the fleet`);
  }
  // Told by the logs (written in batches, so waited for): which instance ordered, which took it.
  const obtainedBy = (msg: string, name: string): Instance[] => [one, other].filter((i) => i.count(msg, name) > 0);
  for (const name of NAMES.fleet)
    await eventually(`the log of ${name}'s order`, 5000, () =>
      obtainedBy('acme: certificate obtained', name).length > 0 ? true : undefined,
    );
  assert.deepEqual(
    NAMES.fleet.map((n) => obtainedBy('acme: certificate obtained', n).length),
    [1, 1],
    'each name obtained by one instance only',
  );

  // The renewal: placed by one instance, presented by both.
  const name = NAMES.fleet[0]!;
  const renewed = await eventually('the renewed certificate on both instances', 30_000, async () => {
    const [a, b] = [await fingerprint(one.tlsPort, name, root), await fingerprint(other.tlsPort, name, root)];
    return a !== first.get(name) && a === b ? a : undefined;
  });
  assert.notEqual(renewed, first.get(name));
  assert.equal(ca.orders.get(name), 2, 'one order for the first certificate and one for its renewal');
  const renewer = await eventually('the log of the renewal', 5000, () => {
    const by = obtainedBy('acme: certificate renewed', name);
    return by.length > 0 ? by : undefined;
  });
  assert.equal(renewer.length, 1, 'one instance renewed');
  const follower = renewer[0] === one ? other : one;
  await eventually('the other instance saying it took the renewed certificate from the store', 5000, () =>
    follower.count('acme: certificate stored by another gateway presented', name) >= 1 ? true : undefined,
  );
  assert.equal(follower.cli.child.exitCode, null, 'never restarted');
  assert.equal(
    one.count('acme: new account key stored') + other.count('acme: new account key stored'),
    1,
    'one account for the fleet',
  );
});

test('Redis stopped: the certificates held are still presented; an order for a newly listed name waits, ' +
  'and is placed once, by one instance, when Redis returns', { timeout: 120_000, skip: noRedis }, async (t) => {
  if (!needPebble(t)) return;
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const [held, added] = NAMES.outage as [string, string];
  const { ca, one, other, root, settings } = await fleetOf(t, 'fleet-c', [held], redis);
  const before = await fingerprint(one.tlsPort, held, root);
  await eventually('the other instance presenting it', 10_000, async () =>
    (await fingerprint(other.tlsPort, held, root)) === before ? true : undefined,
  );

  await redis.stop();
  for (const i of [one, other])
    assert.equal(await fingerprint(i.tlsPort, held, root), before, 'still presented with Redis away');
  // Both list a second name (a reload, as an operator would: SIGHUP).
  for (const i of [one, other]) {
    writeFileSync(
      i.file,
      configText({
        ...settings,
        names: [held, added],
        httpPort: i.httpPort,
        tlsPort: i.tlsPort,
      }),
    );
    i.cli.child.kill('SIGHUP');
  }
  await eventually('the order waiting for the store', 15_000, () =>
    [one, other].every((i) => i.count('acme: could not obtain a certificate; retrying later', added) >= 2)
      ? true
      : undefined,
  );
  assert.equal(ca.orders.get(added) ?? 0, 0, 'no order while the lock cannot be taken');
  const none = await handshake(one.tlsPort, added);
  assert.ok('error' in none, 'no certificate for the new name yet');

  await redis.start();
  const after = await fingerprint(one.tlsPort, added, root);
  await eventually('the other instance presenting the new name', 15_000, async () =>
    (await fingerprint(other.tlsPort, added, root)) === after ? true : undefined,
  );
  await sleep(1500); // Time enough for a second order, were one to be placed.
  const said = (i: Instance): string =>
    i
      .lines()
      .filter((l) => /challenge answer|obtain|waiting|presented/.test(String(l.msg)))
      .map((l) => `${String(l.msg)}${l.offeredHere === undefined ? '' : ` (offered here: ${String(l.offeredHere)})`}`)
      .join('; ');
  t.diagnostic(`after Redis returned — one: ${said(one)}`);
  t.diagnostic(`after Redis returned — other: ${said(other)}`);
  assert.equal(
    ca.orders.get(added),
    1,
    `one order for the new name, once Redis returned; one: ${said(one)}; other: ${said(other)}`,
  );
  assert.equal(ca.orders.get(held), 1);
  assert.equal(await fingerprint(other.tlsPort, held, root), before, 'the held certificate stays');
});

test("an instance killed while it holds a name's issuance lock does not block the other: the lock runs " +
  'out (lockTimeout) and the other orders', { timeout: 120_000, skip: noRedis }, async (t) => {
  if (!needPebble(t)) return;
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const name = NAMES.killed[0]!;
  const httpPort = await freePort();
  const tlsPort = await freePort();
  const pebble = await startPebble(cleanups, { httpPort, tlsPort, dns: dns.address });
  const ca = await countingCa(pebble);
  // The first order for the name is held at the CA's door: its orderer holds the lock meanwhile.
  ca.hold(name);
  const settings = {
    name: 'fleet-d',
    directory: ca.directory,
    names: [name],
    upstream: await helloUpstream(),
    redis: redis.url,
  };
  const instances = await twoInstances(httpPort, tlsPort, settings);
  await eventually('an order held at the CA', 20_000, () => (ca.holds() ? true : undefined));
  const lockKey = `gangway:{fleet-d}:acme:${caFolder(ca.directory)}:lock:${name}`;
  const owner = execFileSync('redis-cli', ['-p', String(redis.port), 'GET', lockKey])
    .toString()
    .trim();
  const holder = instances.find((i) => owner.split(' ')[1] === String(i.cli.child.pid));
  assert.ok(holder, `the lock is held by one of the instances (${owner})`);
  const survivor = instances.find((i) => i !== holder)!;
  await eventually('the other instance waiting for the lock', 10_000, () =>
    survivor.count('acme: another gateway is ordering this name; waiting for its certificate', name) > 0
      ? true
      : undefined,
  );
  holder.cli.child.kill('SIGKILL');
  await holder.cli.exited;
  const killedAt = Date.now();
  ca.drop();
  const root = await pebble.root();
  await fingerprint(survivor.tlsPort, name, root).catch((err: Error) => {
    throw new Error(`${err.message}; the survivor's log:\n${linesAbout(survivor, name)}`);
  });
  const took = Date.now() - killedAt;
  t.diagnostic(`certificate presented by the survivor ${took} ms after the holder was killed (lockTimeout 3 s)`);
  assert.ok(took < 20_000, 'the lock ran out; the survivor did not wait forever');
  assert.equal(
    ca.orders.get(name),
    1,
    `one order reached the CA: the survivor’s; its log:\n${linesAbout(survivor, name)}`,
  );
  // The log is written in batches: its line may follow the handshake by a moment.
  await eventually('the survivor saying it obtained the certificate', 5000, () =>
    survivor.count('acme: certificate obtained', name) === 1 ? true : undefined,
  );
});

/** A store that counts the reads made of it. */
class CountingStore extends MemoryStore {
  reads = 0;
  override async get(key: string): Promise<string | undefined> {
    this.reads++;
    return super.get(key);
  }
}

test(
  'a process that missed the announcement finds the answer in the store when the CA asks it: HTTP-01 ' +
    'by token, TLS-ALPN-01 by name; a made-up token is not looked for, look-ups are bounded per second, ' +
    'and a withdrawn answer is found nowhere',
  async () => {
    const store = new CountingStore();
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
    /** One process's challenge answers, sharing `store` (its announcements never heard: not subscribed). */
    const aProcess = (): ChallengeAnswers => {
      const answers = new ChallengeAnswers();
      new AcmeFleet(new StoreLink(store, { deadlineMs: 1000 }), answers, logger);
      return answers;
    };
    const orderer = aProcess();
    const orderingFleet = new AcmeFleet(new StoreLink(store, { deadlineMs: 1000 }), orderer, logger);
    const token = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
    const withdrawHttp = await orderingFleet.offer('http-01', token, `${token}.thumbprint`);
    const withdrawTls = await orderingFleet.offer('tls-alpn-01', 'music.test', 'tls-token.thumbprint');

    // Another process, which never heard of either answer, behind its own listeners.
    const other = aProcess();
    const config = validateConfig(minimalConfig(['127.0.0.1:1']));
    // Nothing is routed here: the listeners read only their limits.
    const noRuntime = (): Runtime => ({ limits: { maxUriLength: 8192 } }) as unknown as Runtime;
    const noStatus = () => assert.fail('no status page here');
    const plain = createListener(config, noRuntime, noStatus, { challenges: other, redirectToHttpsPort: () => 443 });
    const secure = createListener(config, noRuntime, noStatus, {
      tls: { cert: undefined, key: undefined },
      challenges: other,
      acme: { contextFor: () => null },
    });
    for (const l of [plain, secure]) {
      await new Promise<void>((r) => l.server.listen(0, '127.0.0.1', r));
      cleanups.push(() => new Promise((r) => l.server.close(() => r(undefined))));
    }
    const plainPort = (plain.server.address() as AddressInfo).port;
    const ask = async (path: string): Promise<[number, string]> => {
      const answer = await request(`http://127.0.0.1:${plainPort}/.well-known/acme-challenge/${path}`);
      return [answer.statusCode, await answer.body.text()];
    };

    assert.deepEqual(await ask(token), [200, `${token}.thumbprint`], 'HTTP-01 answered from the store');
    const reads = store.reads;
    assert.deepEqual(await ask(token), [200, `${token}.thumbprint`], 'and again, from what it learnt');
    assert.equal(store.reads, reads, 'the second look did not read the store');
    const proof = await handshake((secure.server.address() as AddressInfo).port, 'music.test', {
      alpn: ['acme-tls/1'],
    });
    assert.ok(!('error' in proof), 'TLS-ALPN-01 answered from the store');
    proof.socket.destroy();
    assert.equal(proof.cert.subjectAltName, 'DNS:music.test');
    const digest = createHash('sha256').update('tls-token.thumbprint').digest();
    assert.ok(proof.cert.raw.includes(digest), 'the certificate carries the digest of the key authorization');
    const served = lines.filter((l) => l.msg === 'acme: challenge answer served to the CA');
    assert.deepEqual(
      served.map((l) => [l.type, l.offeredHere]),
      [
        ['http-01', false],
        ['http-01', false],
        ['tls-alpn-01', false],
      ],
      'said in the log, as answers another process offered',
    );

    // Made-up tokens: not a token's shape, not looked for; well-formed ones, at most ten a second.
    const before = store.reads;
    assert.equal((await ask('not-a-token'))[0], 404);
    assert.equal((await ask('..%2F..%2Fetc%2Fpasswd'))[0], 404);
    assert.equal(store.reads, before, 'nothing that is not a token is looked for');
    const flood = await Promise.all(
      Array.from({ length: 40 }, () => ask(randomBytes(32).toString('base64url')).then(([status]) => status)),
    );
    assert.ok(
      flood.every((s) => s === 404),
      'unknown tokens get 404',
    );
    assert.ok(store.reads - before <= 20, `${store.reads - before} store reads for 40 made-up tokens (10 a second)`);

    // Withdrawn: a third process, which learnt nothing, finds neither answer.
    withdrawHttp();
    withdrawTls();
    await eventually('the answers gone from the store', 2000, async () =>
      (await store.get(`acme:challenge:http:${token}`)) === undefined ? true : undefined,
    );
    const third = aProcess();
    assert.equal(await third.findTlsAlpn('music.test'), undefined);
    assert.equal(third.httpAnswer(token), undefined);
    assert.equal(await store.get('acme:challenge:tls:music.test'), undefined);
  },
);

test(
  'the account key: of processes storing one at once, the first wins and all are answered it, in the ' +
    'directory and in the store; a stored certificate is read back whole',
  async () => {
    const directory = 'https://ca.example/dir';
    const root = mkdtempSync(join(tmpdir(), 'gangway-acme-account-'));
    const store = new MemoryStore();
    for (const make of [() => new DirectoryStorage(root, directory), () => new StoreStorage(store, directory, 3000)]) {
      const keys = await Promise.all(Array.from({ length: 6 }, (_, i) => make().writeAccountKey(`key ${i}`)));
      assert.equal(new Set(keys).size, 1, `one key in force: ${keys.join(', ')}`);
      assert.equal(await make().readAccountKey(), keys[0]);
      assert.equal(await make().writeAccountKey('a later key'), keys[0], 'a later writer is answered the first key');
      assert.equal(await make().readRetryAt('music.test'), undefined);
      const at = Date.now() + 60_000;
      await make().writeRetryAt('music.test', at);
      assert.equal(await make().readRetryAt('music.test'), at, 'a failed order’s time to try again is shared');
      await make().writeCertificate('Music.Test', { cert: 'chain', key: 'its key' });
      assert.deepEqual(await make().readCertificate('music.test'), { cert: 'chain', key: 'its key' });
      assert.equal(await make().readCertificate('podcasts.test'), undefined);
    }
  },
);

test(
  'the issuance lock in the store: one holder, extended while it works past the timeout, let go on ' +
    'release; a holder that stops extending loses it after the timeout',
  async () => {
    const store = new MemoryStore();
    const lost: string[] = [];
    const one = new StoreStorage(store, 'https://ca.example/dir', 1000, (name) => lost.push(name));
    const other = new StoreStorage(store, 'https://ca.example/dir', 1000);
    const release = await one.lock('music.test');
    assert.ok(release, 'the first taker holds it');
    assert.equal(await other.lock('music.test'), undefined, 'a second taker waits');
    assert.ok(await other.lock('podcasts.test'), 'other names are not held up');
    await sleep(2500);
    assert.equal(await other.lock('music.test'), undefined, 'still held at 2.5 timeouts: its holder extends it');
    await release();
    const again = await other.lock('music.test');
    assert.ok(again, 'released, the other takes it');
    assert.deepEqual(lost, [], 'the holder never lost it');
    // A holder that stops extending (its process killed) is simulated by a claim of its own, never extended.
    await again();
    assert.equal(await store.claim('acme:ca.example-dir:lock:video.test', 'killed 1 x', 1000), true);
    assert.equal(await one.lock('video.test'), undefined);
    await sleep(1100);
    assert.ok(await one.lock('video.test'), 'taken once the dead holder’s time ran out');
  },
);

test(
  'a lock the store lost (Redis back empty) and another process took is known lost to its first ' + 'holder',
  async () => {
    const store = new MemoryStore();
    const lost: string[] = [];
    const one = new StoreStorage(store, 'https://ca.example/dir', 600, (name) => lost.push(name));
    const other = new StoreStorage(store, 'https://ca.example/dir', 600);
    assert.ok(await one.lock('music.test'));
    assert.equal(one.lockLost('music.test'), false);
    // Redis restarted empty: the key is gone, and the other process, looking each second, takes it first.
    (store as unknown as { values: Map<string, string> }).values.delete('acme:ca.example-dir:lock:music.test');
    assert.ok(await other.lock('music.test'), 'the other takes the free lock');
    await sleep(450);
    assert.equal(one.lockLost('music.test'), true, 'its next extension found another holder');
    assert.deepEqual(lost, ['music.test']);
    assert.equal(other.lockLost('music.test'), false, 'the new holder holds it');
  },
);

test('an order that fails makes the whole fleet wait as the instance that failed does: the other instance ' +
  'does not try in between (the CA counts failed validations per name)', {
  timeout: 60_000,
  skip: noRedis,
}, async (t) => {
  if (!needPebble(t)) return;
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  // Waits after a failure (1–4 s) longer than the other's look at the lock (each second): it takes the
  // lock while the one that failed waits, and must wait as well.
  const { ca, one, other } = await fleetOf(
    t,
    'fleet-e',
    [UNRESOLVABLE],
    redis,
    {},
    { retryDelay: '2s', maxRetryDelay: '4s' },
  );
  await eventually('four orders for the name the CA cannot validate', 30_000, () =>
    (ca.orders.get(UNRESOLVABLE) ?? 0) >= 4 ? true : undefined,
  );
  const times = ca.orderTimes.get(UNRESOLVABLE)!.slice(0, 4);
  const failures = await eventually('the failures logged', 5000, () => {
    const all = [one, other]
      .flatMap((i) => i.lines())
      .filter((l) => l.msg === 'acme: could not obtain a certificate; retrying later')
      .sort((a, b) => Number(a.time) - Number(b.time));
    return all.length >= 3 ? all : undefined;
  });
  t.diagnostic(
    `orders ${times.map((o) => o - times[0]!).join(', ')} ms; retries due at ` +
      `${failures
        .slice(0, 3)
        .map((f) => Date.parse(String(f.retryAt)) - times[0]!)
        .join(', ')} ms`,
  );
  // Orders are taken one at a time (the lock): failure k follows order k, and order k + 1 waits for its time.
  for (let k = 0; k + 1 < times.length; k++) {
    const due = Date.parse(String(failures[k]!.retryAt));
    assert.ok(times[k + 1]! >= due - 100, `order ${k + 2} came ${due - times[k + 1]!} ms before the retry was due`);
  }
  const waited = [one, other].map((i) =>
    i.count('acme: an order by another gateway failed lately; waiting as it does'),
  );
  t.diagnostic(`waits for another instance's failed order: ${waited.join(' and ')}`);
  assert.ok(waited[0]! + waited[1]! >= 1, 'an instance that took the lock while the other waited waited too');
});

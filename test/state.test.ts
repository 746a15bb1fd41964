/**
 * The shared state store: one contract that every implementation keeps — memory, Redis (a real
 * redis-server) and the supervisor (a real forked worker asking its parent over IPC) — then the
 * link that makes the store never a new way to fail (deadlines on a frozen Redis, writes kept
 * and made on its return), the fleet-wide rate limit's accuracy across instances, and the
 * configuration's `store` section refused with file, line and field when it is wrong.
 */
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ConfigError, parseConfigText } from '../src/index.js';
import { FleetRateLimits } from '../src/state/fleet-rate-limit.js';
import { StoreLink } from '../src/state/link.js';
import { MemoryStore } from '../src/state/memory.js';
import { RedisStore } from '../src/state/redis.js';
import type { StateStore } from '../src/state/store.js';
import { serveStore } from '../src/state/supervisor.js';
import { redisMissing, startRedis, type RedisServer } from './support/redis.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const noRedis = redisMissing();
let sharedRedis: RedisServer | undefined;
async function redisServer(): Promise<RedisServer> {
  if (sharedRedis === undefined) {
    sharedRedis = await startRedis();
    const r = sharedRedis;
    cleanups.push(() => r.stop());
  }
  return sharedRedis;
}
let prefixes = 0;
async function redisPair(): Promise<[RedisStore, RedisStore]> {
  const r = await redisServer();
  const keyPrefix = `gangway:{test${process.pid}-${++prefixes}}:`;
  const pair = [new RedisStore({ url: r.url, keyPrefix }), new RedisStore({ url: r.url, keyPrefix })] as [
    RedisStore,
    RedisStore,
  ];
  for (const s of pair) {
    s.connect();
    cleanups.push(() => s.close());
  }
  const deadline = Date.now() + 5000;
  while (
    (await pair[1].get('ping').then(
      () => true,
      () => false,
    )) === false &&
    Date.now() < deadline
  )
    await sleep(10);
  while (
    (await pair[0].get('ping').then(
      () => true,
      () => false,
    )) === false &&
    Date.now() < deadline
  )
    await sleep(10);
  return pair;
}

/** A store driven through a forked worker's SupervisorStore, answered by this process's serveStore. */
class ForkedWorkerStore implements StateStore {
  readonly kind = 'supervisor' as const;
  private nextId = 1;
  private readonly waiting = new Map<number, (m: { value?: unknown; error?: string }) => void>();
  private readonly listeners = new Map<string, (message: string) => void>();
  constructor(readonly child: ChildProcess) {
    child.on(
      'message',
      (m: { test?: string; id?: number; channel?: string; message?: string; value?: unknown; error?: string }) => {
        if (m.test === 'result') {
          this.waiting.get(m.id!)?.(m);
          this.waiting.delete(m.id!);
        } else if (m.test === 'message') this.listeners.get(m.channel!)?.(m.message!);
      },
    );
  }
  private call(op: string, args: unknown[]): Promise<never> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (m) => (m.error === undefined ? resolve(m.value as never) : reject(new Error(m.error))));
      this.child.send({ test: 'call', id, op, args });
    });
  }
  get = (key: string) => this.call('get', [key]);
  set = (key: string, value: string, ttlMs?: number) =>
    this.call('set', ttlMs === undefined ? [key, value] : [key, value, ttlMs]);
  claim = (key: string, owner: string, ttlMs: number) => this.call('claim', [key, owner, ttlMs]);
  release = (key: string, owner: string) => this.call('release', [key, owner]);
  hashAll = (key: string) => this.call('hashAll', [key]);
  hashSet = (key: string, field: string, value: string | undefined) => this.call('hashSet', [key, field, value]);
  append = (key: string, value: string, keep: number) => this.call('append', [key, value, keep]);
  recent = (key: string, count: number) => this.call('recent', [key, count]);
  publish = (channel: string, message: string) => this.call('publish', [channel, message]);
  subscribe = (channel: string, listener: (message: string) => void) => {
    this.listeners.set(channel, listener);
    return this.call('subscribe', [channel]);
  };
  lease = (
    buckets: readonly string[],
    owed: readonly number[],
    asked: readonly number[],
    perMs: number,
    burst: number,
  ) => this.call('lease', [buckets, owed, asked, perMs, burst]);
  heartbeat = (instance: string, ttlMs: number) => this.call('heartbeat', [instance, ttlMs]);
  onConnection(): void {}
  async close(): Promise<void> {}
}

const WORKER = join(import.meta.dirname, 'support', 'store-worker.ts');

/** Forks a worker whose store is `store`, served by this process as its supervisor. */
export async function forkWorker(store: StateStore): Promise<ChildProcess> {
  const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  serveStore(store, child);
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the worker did not start')), 60_000);
    child.on('message', (m: { test?: string }) => {
      if (m.test === 'ready') {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return child;
}

const implementations: Array<[string, () => Promise<[StateStore, StateStore]>, string | undefined]> = [
  [
    'memory',
    async () => {
      const m = new MemoryStore();
      return [m, m];
    },
    undefined,
  ],
  ['redis', redisPair, noRedis],
  [
    'supervisor (two forked workers, one parent)',
    async () => {
      const behind = new MemoryStore();
      const [a, b] = await Promise.all([forkWorker(behind), forkWorker(behind)]);
      return [new ForkedWorkerStore(a), new ForkedWorkerStore(b)];
    },
    undefined,
  ],
];

for (const [name, makeOnce, skip] of implementations) {
  // One pair per implementation (forking workers is slow on a busy machine); each test uses keys of its own.
  let pair: Promise<[StateStore, StateStore]> | undefined;
  const make = (): Promise<[StateStore, StateStore]> => {
    pair ??= makeOnce();
    return pair;
  };
  describe(`the ${name} store keeps the contract`, { skip }, () => {
    test('values, hashes and bounded lists read back what was written, by any instance', async () => {
      const [one, other] = await make();
      assert.equal(await one.get('nothing'), undefined);
      await one.set('maintenance', '{"enabled":true}');
      assert.equal(await other.get('maintenance'), '{"enabled":true}');
      await one.hashSet('drains', 'music/a', 'x');
      await other.hashSet('drains', 'music/b', 'y');
      await one.hashSet('drains', 'music/a', undefined);
      assert.deepEqual(await other.hashAll('drains'), { 'music/b': 'y' });
      assert.deepEqual(await one.hashAll('none'), {});
      for (const v of ['1', '2', '3', '4', '5']) await (Number(v) % 2 ? one : other).append('log', v, 3);
      assert.deepEqual(await other.recent('log', 10), ['3', '4', '5'], 'only the newest 3 kept, oldest first');
      assert.deepEqual(await one.recent('log', 2), ['4', '5']);
      assert.deepEqual(await one.recent('empty', 2), []);
    });

    test('a message published by one instance reaches the subscribers of another', async () => {
      const [one, other] = await make();
      const got: string[] = [];
      await other.subscribe('changes', (m) => got.push(m));
      await one.publish('changes', 'maintenance');
      await one.publish('elsewhere', 'not for them');
      const deadline = Date.now() + 2000;
      while (got.length === 0 && Date.now() < deadline) await sleep(5);
      await sleep(30);
      assert.deepEqual(got, ['maintenance']);
    });

    test(
      'token buckets lease whole tokens atomically, take ' + 'payments into debt down to -burst, and refill',
      async () => {
        const [one, other] = await make();
        // A rate too slow to refill anything while the test runs, then a fast one.
        const slow = 1e-9;
        assert.deepEqual(await one.lease(['a', 'b'], [0, 0], [3, 0], slow, 10), [3, 0], 'a new bucket starts full');
        assert.deepEqual(await other.lease(['a'], [0], [20], slow, 10), [7], 'another instance gets what is left');
        assert.deepEqual(await one.lease(['a'], [5], [1], slow, 10), [0], 'a payment puts the bucket in debt');
        assert.deepEqual(await other.lease(['a'], [-8], [2], slow, 10), [2], 'tokens given back can be leased again');
        assert.deepEqual(await one.lease(['a'], [50], [0], slow, 10), [0]);
        assert.deepEqual(await one.lease(['a'], [-15], [20], slow, 10), [5], 'the debt stopped at -burst');
        assert.deepEqual(await one.lease(['c'], [10], [0], slow, 10), [0]);
        await sleep(200);
        const [refilled] = await other.lease(['c'], [0], [10], 0.01, 10);
        // 0.01 per ms over 200 ms (and whatever the machine added) refills 2 tokens or a few more.
        assert.ok(refilled! >= 2 && refilled! <= 5, `refilled ${refilled}`);
      },
    );

    test('a claim is one owner’s until released or expired; a value set with a time to live expires', async () => {
      const [one, other] = await make();
      assert.equal(await one.claim('lock:music', 'a', 1000), true, 'a free key is taken');
      assert.equal(await other.claim('lock:music', 'b', 1000), false, 'held by another owner');
      assert.equal(await other.release('lock:music', 'b'), false, 'not released by another owner');
      assert.equal(await other.get('lock:music'), 'a', 'the owner is readable');
      await sleep(600);
      assert.equal(await one.claim('lock:music', 'a', 1000), true, 'its owner extends it');
      await sleep(600);
      assert.equal(await other.claim('lock:music', 'b', 1000), false, 'still held: the extension counted');
      assert.equal(await one.release('lock:music', 'a'), true);
      assert.equal(await other.claim('lock:music', 'b', 1000), true, 'released, another owner takes it');
      await sleep(1100);
      assert.equal(await one.claim('lock:music', 'a', 1000), true, 'an owner that stopped extending loses it');
      assert.equal(await other.release('lock:music', 'b'), false, 'the owner it expired from cannot drop it');
      // Claims race: exactly one of many simultaneous takers wins.
      const racers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? one : other).claim('lock:race', `r${i}`, 5000)),
      );
      assert.equal(racers.filter(Boolean).length, 1, 'one winner');
      await other.set('challenge', 'answer', 1000);
      await one.set('kept', 'forever');
      assert.equal(await one.get('challenge'), 'answer');
      await sleep(1100);
      assert.equal(await one.get('challenge'), undefined, 'gone after its time to live');
      assert.equal(await other.get('kept'), 'forever');
      await one.set('challenge', 'again');
      await sleep(50);
      assert.equal(await other.get('challenge'), 'again', 'set without a time to live, it stays');
    });

    test('instances are counted while their heartbeats last', async () => {
      const [one, other] = await make();
      assert.equal(await one.heartbeat('short', 400), 1);
      assert.equal(await other.heartbeat('long', 5000), 2);
      await sleep(500);
      assert.equal(await one.heartbeat('long', 5000), 1, 'the instance that stopped beating is no longer counted');
    });
  });
}

describe('the link to the store', { skip: noRedis }, () => {
  test(
    'a frozen Redis costs each call its deadline, then is ' + 'unreachable; a write made meanwhile lands on its return',
    async () => {
      const r = await startRedis();
      cleanups.push(() => r.stop());
      const store = new RedisStore({ url: r.url, keyPrefix: 'gangway:{link}:' });
      cleanups.push(() => store.close());
      const failures: string[] = [];
      const changes: boolean[] = [];
      const link = new StoreLink(store, {
        deadlineMs: 5,
        failed: (op) => failures.push(op),
        changed: (up) => changes.push(up),
      });
      store.connect();
      link.start();
      cleanups.push(() => link.close());
      const deadline = Date.now() + 5000;
      while (!link.reachable && Date.now() < deadline) await sleep(10);
      assert.equal(link.reachable, true, 'reachable once Redis answered');

      r.pause();
      cleanups.push(() => r.resume());
      const times: number[] = [];
      const frozen = Date.now();
      while (link.reachable && Date.now() - frozen < 3000) {
        const started = performance.now();
        await assert.rejects(
          link.call('get', (s) => s.get('x')),
          /no answer within 5 ms/,
        );
        times.push(performance.now() - started);
      }
      const noticed = Date.now() - frozen;
      assert.equal(link.reachable, false, 'timeouts in a row with no answer: unreachable');
      assert.ok(noticed < 1000, `unreachable after ${noticed} ms of silence`);
      const sorted = times.sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)]!;
      assert.ok(median < 30, `each call gave up at its deadline (median ${median.toFixed(1)} ms)`);
      assert.match(link.health().lastError ?? '', /get: no answer within 5 ms/);
      assert.ok(failures.filter((f) => f === 'get').length >= 3, 'each failure counted by operation');

      link.write('maintenance', 'set', (s) => s.set('maintenance', 'on'));
      assert.equal(link.health().pendingWrites, 1, 'the write waits for the store');
      r.resume();
      const back = Date.now() + 5000;
      while (link.health().pendingWrites > 0 && Date.now() < back) await sleep(20);
      assert.equal(link.reachable, true);
      assert.equal(await r.command('GET', 'gangway:{link}:maintenance'), '$2', 'the kept write reached Redis');
      assert.deepEqual(changes, [true, false, true]);
    },
  );
});

test('a fleet-wide rate limit admits its limit across instances within 5%, however the load is spread', async () => {
  // Three instances deciding locally on one store, offered about five times the limit.
  const store = new MemoryStore();
  const links = [0, 1, 2].map(() => new StoreLink(store, { deadlineMs: 50 }));
  for (const l of links) l.start();
  await sleep(50);
  for (const l of links) await l.call('heartbeat', (s) => s.heartbeat(l.instance, 3000)).then((n) => (l.instances = n));
  const limits = links.map((l) => new FleetRateLimits(l));
  for (const l of limits) l.start();
  cleanups.push(() => {
    for (const l of limits) l.stop();
    for (const l of links) void l.close();
  });
  const config = { requests: 200, window: 1000, key: 'address' };
  const buckets = limits.map((l) => l.storeFor(config, 'api'));
  assert.ok(
    links.every((l) => l.instances === 3),
    'each instance counts three',
  );
  const started = Date.now();
  let admitted = 0;
  let offered = 0;
  // 1,000 requests a second for 3 s, most to the first instance: 5 times the limit.
  for (let now = started; now - started < 3000; now = Date.now()) {
    while (offered < now - started) {
      offered++;
      const which = offered % 10 < 6 ? 0 : offered % 10 < 9 ? 1 : 2;
      if (buckets[which]!.take('a:127.0.0.1', Date.now()).allowed) admitted++;
    }
    await sleep(5);
  }
  const elapsed = Date.now() - started;
  const expected = 200 + (200 * elapsed) / 1000; // the burst, then the refill
  assert.ok(offered > 3.5 * expected, `offered ${offered}, over 3.5× the ${Math.round(expected)} allowed`);
  const error = Math.abs(admitted - expected) / expected;
  assert.ok(error <= 0.05, `admitted ${admitted}, expected ${Math.round(expected)} (${(error * 100).toFixed(1)}% off)`);
});

describe('the store section of the configuration', () => {
  const base = `upstreams:
  music: { hosts: ["127.0.0.1:7001"] }
routes:
  - { match: { path: "/" }, upstream: music }
`;
  const problemsOf = (text: string, env: NodeJS.ProcessEnv = {}): string[] => {
    try {
      parseConfigText(text, 'gangway.yaml', env);
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.message.split('\n');
    }
    assert.fail('accepted');
  };

  test('a Redis store is accepted with its defaults; the password may come from the environment', () => {
    const config = parseConfigText(`${base}store: { redis: { url: "redis://127.0.0.1:6379" } }\n`, 'g.yaml', {
      GANGWAY_REDIS_PASSWORD: 'from-env',
    });
    assert.equal(config.store?.redis?.deadline, 5);
    assert.equal(config.store?.redis?.password, 'from-env');
    assert.equal(parseConfigText(base, 'g.yaml', {}).store, undefined, 'without store, state stays local');
  });

  test('a wrong URL, an unknown key or an unreadable CA file is refused with file, line and field', () => {
    assert.deepEqual(problemsOf(`${base}store:\n  redis:\n    url: "http://redis:6379"\n`), [
      'gangway.yaml:7:10 store.redis.url: a Redis URL such as "redis://127.0.0.1:6379" (rediss:// for TLS)',
    ]);
    assert.match(
      problemsOf(`${base}store:\n  redis: { url: "redis://r:6379", timeout: 5 }\n`)[0]!,
      /^gangway\.yaml:6:\d+ store\.redis: .*timeout/,
    );
    assert.match(
      problemsOf(`${base}store:\n  redis:\n    url: "rediss://r:6380"\n    tls: { ca: "/nonexistent/ca.pem" }\n`)[0]!,
      /^gangway\.yaml:8:\d+ store\.redis\.tls\.ca: cannot read "\/nonexistent\/ca\.pem"/,
    );
  });
});

test('the memory store forgets values that expired without being read again', async (t) => {
  t.mock.timers.enable({ apis: ['Date'] });
  const store = new MemoryStore();
  await store.set('challenge:a', 'proof', 5 * 60_000);
  await store.set('kept', 'for good');
  const held = (): number => (store as unknown as { values: Map<string, string> }).values.size;
  await store.heartbeat('one', 3000);
  assert.equal(held(), 2);
  t.mock.timers.tick(5 * 60_000 + 11_000);
  await store.heartbeat('one', 3000);
  assert.equal(held(), 1, 'the challenge went, unread');
  assert.equal(await store.get('kept'), 'for good');
});

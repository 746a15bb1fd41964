/**
 * The store on Redis 7 or Valkey, for a fleet: every instance that shares a `name` and a Redis
 * shares the maintenance switch, drains, rate-limit buckets, incidents and ACME's state. Keys and
 * channels carry the prefix `gangway:{name}:` — the braces make it a Redis Cluster hash tag, so
 * the multi-key scripts below stay on one slot. Rate-limit buckets, the instance count and
 * claims (locks) are Lua scripts, atomic on the server and timed by the server's clock
 * (instances' clocks may differ).
 *
 * The client never queues commands while disconnected (`disableOfflineQueue`): a command to a
 * Redis that is away fails at once, and ./link.ts falls back. Reconnection is retried forever
 * with a delay bounded to a second, so a Redis that comes back is found again within one.
 */
import { createHash } from 'node:crypto';
import { createClient, type RedisClientType } from 'redis';
import type { StateStore } from './store.js';

export interface RedisStoreOptions {
  url: string;
  /** Prepended to every key and channel. */
  keyPrefix: string;
  username?: string;
  password?: string;
  /** PEM texts: the CA that signed Redis's certificate, and this client's certificate and key. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Longest wait for a connection to open. */
  connectTimeoutMs?: number;
}

/**
 * Leases tokens of each bucket (KEYS): refilled at ARGV[1] tokens per ms up to ARGV[2], paying back
 * ARGV[2 + 2i - 1] owed tokens, then granting up to ARGV[2 + 2i] whole ones (../store.ts leaseBucket).
 */
const LEASE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local perMs = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local ttl = math.ceil(2 * burst / perMs) + 1000
local out = {}
for i, key in ipairs(KEYS) do
  local b = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(b[1]) or burst
  local at = tonumber(b[2]) or now
  local refilled = math.min(burst, tokens + math.max(0, now - at) * perMs)
  local after = math.max(-burst, math.min(burst, refilled - tonumber(ARGV[2 * i + 1])))
  local asked = tonumber(ARGV[2 * i + 2])
  local granted = 0
  if asked > 0 and after >= 1 then granted = math.min(asked, math.floor(after)) end
  redis.call('HSET', key, 'tokens', tostring(after - granted), 'at', tostring(now))
  redis.call('PEXPIRE', key, ttl)
  out[i] = granted
end
return out`;

/** Records ARGV[1] as alive for ARGV[2] ms in the sorted set KEYS[1]; answers how many are alive. */
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])`;

/** Takes KEYS[1] for ARGV[1] for ARGV[2] ms when free or already its own (then extended): 1 taken, 0 held. */
const CLAIM = `
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** Deletes KEYS[1] only while it holds ARGV[1]: 1 deleted, 0 not (someone else's, or gone). */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** The longest pause between two reconnection attempts. */
const MAX_RECONNECT_DELAY_MS = 1000;

class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}
const leaseScript = new Script(LEASE);
const heartbeatScript = new Script(HEARTBEAT);
const claimScript = new Script(CLAIM);
const releaseScript = new Script(RELEASE);

export class RedisStore implements StateStore {
  readonly kind = 'redis' as const;
  private readonly client: RedisClientType;
  private readonly subscriber: RedisClientType;
  private readonly prefix: string;
  private readonly connectionListeners: Array<(up: boolean, reason?: string) => void> = [];
  private up = false;
  private closed = false;

  constructor(options: RedisStoreOptions) {
    this.prefix = options.keyPrefix;
    const tls = options.tls;
    this.client = createClient({
      url: options.url,
      username: options.username,
      password: options.password,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: options.connectTimeoutMs ?? 1000,
        reconnectStrategy: (retries: number) => Math.min(MAX_RECONNECT_DELAY_MS, 25 * 2 ** retries),
        ...(tls === undefined ? {} : { tls: true as const, ca: tls.ca, cert: tls.cert, key: tls.key }),
      },
    }) as RedisClientType;
    this.subscriber = this.client.duplicate();
    this.client.on('ready', () => this.changed(true));
    this.client.on('error', (err: Error) => this.changed(false, err.message || err.name));
    this.client.on('reconnecting', () => this.changed(false, 'reconnecting'));
    // The subscriber's own errors are the same outage seen twice; the main client reports it.
    this.subscriber.on('error', () => undefined);
  }

  /**
   * Starts connecting and returns at once: a gateway starts whether Redis is there or not, and
   * the client keeps trying in the background.
   */
  connect(): void {
    this.client.connect().catch((err: Error) => this.changed(false, err.message));
    this.subscriber.connect().catch(() => undefined);
  }

  onConnection(listener: (up: boolean, reason?: string) => void): void {
    this.connectionListeners.push(listener);
  }

  async get(key: string): Promise<string | undefined> {
    const v = await this.client.sendCommand<string | null>(['GET', this.prefix + key]);
    return v ?? undefined;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    const command = ['SET', this.prefix + key, value];
    if (ttlMs !== undefined) command.push('PX', String(Math.max(1, Math.ceil(ttlMs))));
    await this.client.sendCommand(command);
  }

  async claim(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const ms = String(Math.max(1, Math.ceil(ttlMs)));
    return (await this.run<number>(claimScript, [this.prefix + key], [owner, ms])) === 1;
  }

  async release(key: string, owner: string): Promise<boolean> {
    return (await this.run<number>(releaseScript, [this.prefix + key], [owner])) === 1;
  }

  async hashAll(key: string): Promise<Record<string, string>> {
    // The client maps the reply to an object itself (RESP2's flat list included).
    const reply = await this.client.sendCommand<Record<string, string> | string[]>(['HGETALL', this.prefix + key]);
    if (!Array.isArray(reply)) return { ...reply };
    const out: Record<string, string> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) out[reply[i]!] = reply[i + 1]!;
    return out;
  }

  async hashSet(key: string, field: string, value: string | undefined): Promise<void> {
    if (value === undefined) await this.client.sendCommand(['HDEL', this.prefix + key, field]);
    else await this.client.sendCommand(['HSET', this.prefix + key, field, value]);
  }

  async append(key: string, value: string, keep: number): Promise<void> {
    const k = this.prefix + key;
    await this.client
      .multi()
      .addCommand(['RPUSH', k, value])
      .addCommand(['LTRIM', k, String(-keep), '-1'])
      .exec();
  }

  async recent(key: string, count: number): Promise<string[]> {
    return this.client.sendCommand<string[]>(['LRANGE', this.prefix + key, String(-count), '-1']);
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.client.sendCommand(['PUBLISH', this.prefix + channel, message]);
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    // The client subscribes again by itself after a reconnection.
    await this.subscriber.subscribe(this.prefix + channel, listener);
  }

  async lease(
    buckets: readonly string[],
    owed: readonly number[],
    asked: readonly number[],
    perMs: number,
    burst: number,
  ): Promise<number[]> {
    const args = [String(perMs), String(burst)];
    for (let i = 0; i < buckets.length; i++) args.push(String(owed[i] ?? 0), String(asked[i] ?? 0));
    const out = await this.run<number[]>(
      leaseScript,
      buckets.map((b) => this.prefix + b),
      args,
    );
    return out.map(Number);
  }

  async heartbeat(instance: string, ttlMs: number): Promise<number> {
    return this.run<number>(heartbeatScript, [`${this.prefix}instances`], [instance, String(ttlMs)]);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of [this.client, this.subscriber]) {
      if (c.isOpen) await c.close().catch(() => c.destroy());
      else c.destroy();
    }
  }

  /** Runs a script by its digest, loading it the first time this Redis (or a restarted one) sees it. */
  private async run<T>(script: Script, keys: string[], args: string[]): Promise<T> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.client.sendCommand<T>(['EVALSHA', script.sha, ...tail]);
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return this.client.sendCommand<T>(['EVAL', script.source, ...tail]);
    }
  }

  private changed(up: boolean, reason?: string): void {
    if (this.closed || (up === this.up && up)) return;
    const was = this.up;
    this.up = up;
    if (was === up && !up) return;
    for (const l of this.connectionListeners) l(up, reason);
  }
}

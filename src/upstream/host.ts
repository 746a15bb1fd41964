/**
 * One upstream host: its address, its undici connection pool, and the live numbers the
 * balancer reads (requests outstanding on it right now).
 */
import { Pool } from 'undici';
import type { UpstreamConfig, UpstreamHostAddress } from '../config/schema.js';

export class UpstreamHost {
  readonly origin: string;
  readonly label: string;
  readonly dispatcher: Pool;
  /** Requests sent to this host and not yet finished. */
  outstanding = 0;

  constructor(address: UpstreamHostAddress, config: UpstreamConfig) {
    this.origin = address.origin;
    this.label = address.label;
    this.dispatcher = new Pool(address.origin, {
      connections: config.keepAlive.connections,
      pipelining: 1,
      // A server's `Keep-Alive: timeout=N` hint may shorten our idle time but never lengthen it,
      // and we give up on an idle socket a second before the server would, so a request is
      // never written on a connection the server is in the middle of closing.
      keepAliveTimeout: config.keepAlive.idle,
      keepAliveMaxTimeout: config.keepAlive.idle,
      keepAliveTimeoutThreshold: 1000,
      connect: { timeout: config.timeouts.connect },
      headersTimeout: config.timeouts.response,
      bodyTimeout: config.timeouts.idle,
      // The gateway's own limits apply downstream; upstream answers may be as large as needed.
      maxResponseSize: -1,
    });
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

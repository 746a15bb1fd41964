/**
 * Request ids: a client's X-Request-Id is kept when it is a sane token (so a support
 * ticket and every hop's logs share one id); otherwise the gateway makes one.
 */
import { randomUUID } from 'node:crypto';

const SANE_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export function requestIdFrom(header: string | string[] | undefined): string {
  if (typeof header === 'string' && SANE_ID.test(header)) return header;
  return randomUUID();
}

/**
 * What the HTTP/1.1 and HTTP/2 responses do alike for the proxy's client side, whatever node
 * class they extend: tell their owner of drains and the close (handlers shared by every
 * response, so none is made per request), and send a head alone when no body byte followed it
 * in the same turn of the event loop.
 */
import type { ResponseEvents } from './client.js';

/** The state a response keeps for these helpers. */
export interface WatchedResponse {
  owner: unknown;
  events: ResponseEvents<unknown> | undefined;
  /** Headers were given and no body byte has followed them yet. */
  headPending: boolean;
  readonly destroyed: boolean;
}

export function onResponseClose(this: WatchedResponse): void {
  this.events!.closed(this.owner);
}

export function onResponseDrain(this: WatchedResponse): void {
  this.events!.drained(this.owner);
}

/** Sends a head that is still waiting for its first body byte (scheduled with process.nextTick). */
export function flushLoneHead(res: WatchedResponse & { flushHeaders(): void }): void {
  if (!res.headPending || res.destroyed) return;
  res.headPending = false;
  res.flushHeaders();
}

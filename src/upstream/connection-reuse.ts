/**
 * Tells an attempt whether undici sent it on a connection that had already carried a
 * request. A reused keep-alive connection that the server closes as we write on it is the
 * classic keep-alive race: the server never saw the request, so even a POST may be sent
 * again. undici has no public flag for it; it does publish, synchronously and right after
 * calling the handler's onConnect, the socket each request is written on
 * (`undici:client:sendHeaders`), which is all this needs.
 */
import { subscribe } from 'node:diagnostics_channel';

export interface ConnectionAware {
  reusedConnection: boolean;
}

const carried = new WeakSet<object>();
let waiting: ConnectionAware | undefined;

subscribe('undici:client:sendHeaders', (message) => {
  const socket = (message as { socket: object }).socket;
  if (waiting !== undefined) {
    waiting.reusedConnection = carried.has(socket);
    waiting = undefined;
  }
  carried.add(socket);
});

/** Called from onConnect: the next request written is this attempt's. */
export function awaitConnection(attempt: ConnectionAware): void {
  waiting = attempt;
}

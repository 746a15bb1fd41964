/**
 * Binding a listener to its address, with a failure that says which listener, which address
 * and what the system answered in words — "address already in use" alone does not tell an
 * operator whether the main port or the admin port is taken, nor by what.
 */
import type { Server as NetServer, AddressInfo } from 'node:net';
import { formatAddress, type Address } from '../config/units.js';

/** Which of the gateway's listeners, by the configuration key that sets its address. */
export type ListenerRole = 'listen' | 'admin';

const REASONS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (another program, perhaps another Gangway, is listening there)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'this machine has no such address',
};

export class ListenError extends Error {
  constructor(
    readonly role: ListenerRole,
    readonly address: Address,
    readonly code: string | undefined,
    cause: Error,
  ) {
    const which = role === 'listen' ? 'the main listener (`listen`)' : 'the admin listener (`admin`)';
    super(`cannot listen on ${formatAddress(address)} for ${which}: ${REASONS[code ?? ''] ?? cause.message}`, {
      cause,
    });
    this.name = 'ListenError';
  }
}

/**
 * `reusePort`: bind a socket of this process's own with SO_REUSEPORT, beside the other
 * workers' sockets on the same address (the kernel spreads new connections over them);
 * `exclusive` keeps node:cluster from routing the bind through the supervisor.
 */
export function listenOn(
  server: NetServer,
  address: Address,
  role: ListenerRole,
  options: { reusePort?: boolean } = {},
): Promise<Address> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new ListenError(role, address, err.code, err));
    server.once('error', onError);
    const { port, host } = address;
    const listening = options.reusePort ? { port, host, reusePort: true, exclusive: true } : { port, host };
    server.listen(listening, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      resolve({ host: a.address, port: a.port });
    });
  });
}

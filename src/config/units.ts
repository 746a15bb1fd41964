/**
 * Human units in the configuration: durations ("250ms", "2s", "1m") and byte sizes
 * ("16KiB", "10MiB"). Both parse to plain numbers (milliseconds, bytes) so the rest of
 * the gateway never sees a unit.
 */

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds for "250ms", "2s", "1.5m", "1h", "365d" or a bare number of milliseconds; null when unreadable. */
export function parseDuration(value: string | number): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : null;
  const m = DURATION.exec(value.trim());
  if (!m) return null;
  return Math.round(Number(m[1]) * DURATION_MS[m[2]!]!);
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|k|K|M|G)?$/;
const SIZE_BYTES: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  k: 1024,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
};

/** Bytes for "16KiB", "10MiB", "1GB" or a bare number of bytes; null when unreadable. */
export function parseSize(value: string | number): number | null {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : null;
  const m = SIZE.exec(value.trim());
  if (!m) return null;
  return Math.floor(Number(m[1]) * SIZE_BYTES[m[2] ?? 'B']!);
}

export interface Address {
  host: string;
  port: number;
}

/** "127.0.0.1:8080", "[::1]:8080", ":8080" (all interfaces) or a bare port. */
export function parseAddress(value: string | number): Address | null {
  if (typeof value === 'number') return validPort(value) ? { host: '127.0.0.1', port: value } : null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(value.trim());
  if (!m) return /^\d{1,5}$/.test(value.trim()) ? parseAddress(Number(value)) : null;
  const port = Number(m[3]);
  if (!validPort(port)) return null;
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]!);
  return { host, port };
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

/** "host:port" with IPv6 literals bracketed, the form used in URLs and logs. */
export function formatAddress(a: Address): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

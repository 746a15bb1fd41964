/**
 * The demo's HTTPS listener needs a certificate, and a newcomer has none for localhost: one is
 * made for each run, self-signed for localhost, 127.0.0.1 and ::1 and valid for 30 days, and
 * written (key 0600) to a fresh directory in the temporary directory, which goes when the
 * demo stops. Browsers and curl warn about it (`curl -k`); it exists so HTTP/2 over TLS can be
 * tried in one command, not to be trusted.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newKey, pem, selfSignedCertificate } from '../acme/csr.js';

export interface DemoCertificate {
  cert: string;
  key: string;
  /** Removes the files. */
  remove(): void;
}

const NAMES = ['localhost', '127.0.0.1', '::1'];
const DAYS = 30;

export function makeDemoCertificate(): DemoCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'gangway-demo-tls-'));
  const key = newKey();
  const cert = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  writeFileSync(cert, pem('CERTIFICATE', selfSignedCertificate(NAMES, key, DAYS)));
  writeFileSync(keyFile, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { cert, key: keyFile, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

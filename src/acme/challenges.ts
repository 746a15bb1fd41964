/**
 * The answers Gangway gives the CA while it proves it controls a name, shared by every
 * listener: HTTP-01 key authorizations by token, served at /.well-known/acme-challenge/ on
 * any listener before routing (the redirecting one too); and TLS-ALPN-01 certificates by
 * name, presented only to a client that asked for the `acme-tls/1` protocol (RFC 8737), so
 * that people connecting during a renewal keep getting the real certificate. An answer is
 * offered just before the CA is told to look and withdrawn once it has decided.
 */
import type { KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureContext, type SecureContext } from 'node:tls';
import { challengeCertificate, newKey, pem } from './csr.js';

/** Where HTTP-01 looks (RFC 8555 §8.3). */
export const HTTP_CHALLENGE_PATH = '/.well-known/acme-challenge/';
/** The ALPN protocol a TLS-ALPN-01 validation offers, alone. */
export const ACME_TLS_PROTOCOL = 'acme-tls/1';

export type ChallengeType = 'http-01' | 'tls-alpn-01';

export class ChallengeAnswers {
  private readonly byToken = new Map<string, string>();
  private readonly byName = new Map<string, SecureContext>();

  /** Serves `keyAuthorization` for `token` until the returned function withdraws it. */
  offerHttp(token: string, keyAuthorization: string): () => void {
    this.byToken.set(token, keyAuthorization);
    return () => this.byToken.delete(token);
  }

  /** Presents the challenge certificate for `name` to acme-tls/1 clients until withdrawn. */
  offerTlsAlpn(name: string, keyAuthorization: string): () => void {
    const key: KeyObject = newKey();
    const context = createSecureContext({
      minVersion: 'TLSv1.2',
      cert: pem('CERTIFICATE', challengeCertificate(name, keyAuthorization, key)),
      key: key.export({ type: 'pkcs8', format: 'pem' }),
    });
    const lower = name.toLowerCase();
    this.byName.set(lower, context);
    return () => {
      if (this.byName.get(lower) === context) this.byName.delete(lower);
    };
  }

  httpAnswer(token: string): string | undefined {
    return this.byToken.get(token);
  }

  tlsAlpnContext(name: string): SecureContext | undefined {
    return this.byName.get(name.toLowerCase());
  }

  /**
   * Answers an HTTP-01 request when its token is pending: true when answered. Anything else
   * under the path is left to the caller (a redirecting listener says 404; a routing one
   * passes it on, since a service behind may answer challenges of its own).
   */
  serveHttp(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.byToken.size === 0) return false;
    const url = req.url ?? '';
    if (!url.startsWith(HTTP_CHALLENGE_PATH)) return false;
    const answer = this.byToken.get(url.slice(HTTP_CHALLENGE_PATH.length));
    if (answer === undefined) return false;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(answer);
    return true;
  }
}

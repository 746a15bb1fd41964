/**
 * The answers Gangway gives the CA while it proves it controls a name, shared by every
 * listener: HTTP-01 key authorizations by token, served at /.well-known/acme-challenge/ on
 * any listener before routing (the redirecting one too); and TLS-ALPN-01 certificates by
 * name, presented only to a client that asked for the `acme-tls/1` protocol (RFC 8737), so
 * that people connecting during a renewal keep getting the real certificate. An answer is
 * offered just before the CA is told to look and withdrawn once it has decided.
 *
 * These are one process's answers. When processes share a store (workers, a fleet), the CA's
 * look may land on any of them: ./fleet.ts offers every answer to all of them, and a look for
 * an answer this process has not heard of asks the store (`lookup`) — on that rare path only.
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

/** Where an order offers its answers: this process's listeners, or every process sharing a store. */
export interface ChallengeBoard {
  /**
   * Offers the answer to a challenge (`subject`: the token for HTTP-01, the name for TLS-ALPN-01);
   * resolves once the CA may look, with the withdrawal.
   */
  offer(type: ChallengeType, subject: string, keyAuthorization: string): Promise<() => void>;
}

/** Answers offered by other processes, read from the shared store. */
export interface ChallengeLookup {
  /** The key authorization for a token or name, when another process offered one. */
  find(type: ChallengeType, subject: string): Promise<string | undefined>;
  /** A look answered from here (for the log: the CA's look landed on this process). */
  served(type: ChallengeType, subject: string, offeredHere: boolean): void;
}

export class ChallengeAnswers implements ChallengeBoard {
  private readonly byToken = new Map<string, string>();
  private readonly byName = new Map<string, SecureContext>();
  /** Subjects offered by this process itself (not learnt from another one). */
  private readonly ours = new Set<string>();
  /** Set when processes share a store: answers this process has not heard of are looked for there. */
  lookup: ChallengeLookup | undefined = undefined;

  async offer(type: ChallengeType, subject: string, keyAuthorization: string): Promise<() => void> {
    const withdraw =
      type === 'http-01' ? this.offerHttp(subject, keyAuthorization) : this.offerTlsAlpn(subject, keyAuthorization);
    const mine = ownKey(type, subject);
    this.ours.add(mine);
    return () => {
      this.ours.delete(mine);
      withdraw();
    };
  }

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
    const context = this.byName.get(name.toLowerCase());
    if (context !== undefined) this.lookup?.served('tls-alpn-01', name, this.ours.has(ownKey('tls-alpn-01', name)));
    return context;
  }

  /**
   * The TLS-ALPN-01 answer for a name this process has none for, from the shared store: made
   * here from the key authorization another process offered (and kept until it expires).
   */
  async findTlsAlpn(name: string): Promise<SecureContext | undefined> {
    const lookup = this.lookup;
    if (lookup === undefined) return undefined;
    const keyAuthorization = await lookup.find('tls-alpn-01', name).catch(() => undefined);
    if (keyAuthorization === undefined) return undefined;
    setTimeout(this.offerTlsAlpn(name, keyAuthorization), LEARNT_ANSWER_MS).unref();
    return this.tlsAlpnContext(name);
  }

  /**
   * Answers an HTTP-01 request when its token is pending: true when answered; a promise of
   * that when the token is unknown here and the shared store is asked. Anything else under the
   * path is left to the caller (a redirecting listener says 404; a routing one passes it on,
   * since a service behind may answer challenges of its own).
   */
  serveHttp(req: IncomingMessage, res: ServerResponse): boolean | Promise<boolean> {
    if (this.byToken.size === 0 && this.lookup === undefined) return false;
    const url = req.url ?? '';
    if (!url.startsWith(HTTP_CHALLENGE_PATH)) return false;
    const token = url.slice(HTTP_CHALLENGE_PATH.length);
    const answer = this.byToken.get(token);
    if (answer !== undefined) {
      this.lookup?.served('http-01', token, this.ours.has(ownKey('http-01', token)));
      answerHttp(res, answer);
      return true;
    }
    if (this.lookup === undefined || !TOKEN.test(token)) return false;
    return this.lookup.find('http-01', token).then(
      (found) => {
        if (found === undefined) return false;
        setTimeout(this.offerHttp(token, found), LEARNT_ANSWER_MS).unref();
        this.lookup?.served('http-01', token, false);
        answerHttp(res, found);
        return true;
      },
      () => false,
    );
  }
}

/** How an answer offered here is remembered: tokens are case-sensitive, names are not. */
function ownKey(type: ChallengeType, subject: string): string {
  return type === 'http-01' ? `http-01 ${subject}` : `tls-alpn-01 ${subject.toLowerCase()}`;
}

/** An ACME token: base64url, at least 128 bits (RFC 8555 §8.3); anything else is not looked for. */
const TOKEN = /^[A-Za-z0-9_-]{22,128}$/;
/** How long an answer learnt from the store is kept here (the CA may look again, from elsewhere). */
const LEARNT_ANSWER_MS = 60_000;

function answerHttp(res: ServerResponse, keyAuthorization: string): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
  res.end(keyAuthorization);
}

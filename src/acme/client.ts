/**
 * The ACME protocol (RFC 8555) as a client speaks it, on undici: the directory, anti-replay
 * nonces (a `badNonce` refusal is retried once with the fresh nonce it carries, §6.5), the
 * account (found again by its key on every start, so nothing but the key needs keeping),
 * orders, authorizations, challenges, finalization and the certificate download, polling
 * where the CA asks (honouring Retry-After), and ACME Renewal Information (RFC 9773) when the
 * directory offers it. Every refusal becomes an AcmeProblem carrying the CA's problem
 * document, so a log line can say what the CA said. This file knows nothing of schedules,
 * storage or listeners.
 */
import type { KeyObject } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { Agent, type Dispatcher, request } from 'undici';
import { parseRetryAfter } from '../http/retry-after.js';
import { certificateIdentity } from './der.js';
import { signRequest } from './jws.js';

export interface AcmeDirectory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  /** RFC 9773 ACME Renewal Information, when the CA offers it. */
  renewalInfo?: string;
  meta?: { termsOfService?: string };
}

export interface AcmeIdentifier {
  type: string;
  value: string;
}

export interface AcmeOrder {
  status: 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';
  identifiers: AcmeIdentifier[];
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: ProblemDocument;
}

export interface AcmeChallenge {
  type: string;
  url: string;
  token: string;
  status: 'pending' | 'processing' | 'valid' | 'invalid';
  error?: ProblemDocument;
}

export interface AcmeAuthorization {
  status: 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
  identifier: AcmeIdentifier;
  challenges: AcmeChallenge[];
}

/** RFC 7807 as ACME uses it (§6.7). */
export interface ProblemDocument {
  type?: string;
  detail?: string;
  status?: number;
  subproblems?: Array<{ type?: string; detail?: string; identifier?: AcmeIdentifier }>;
}

/** The CA refused, or could not be reached: its problem document (or the transport's error) in words. */
export class AcmeProblem extends Error {
  constructor(
    /** The problem's type without its `urn:ietf:params:acme:error:` prefix, or a word of ours (`unreachable`). */
    readonly type: string,
    readonly detail: string,
    readonly status: number | undefined,
    /** When the CA said when to come back (Retry-After on a 429 or 503). */
    readonly retryAfterMs?: number,
  ) {
    super(`${detail} (${type}${status === undefined ? '' : `, HTTP ${status}`})`);
    this.name = 'AcmeProblem';
  }
}

const ACME_ERROR = 'urn:ietf:params:acme:error:';

/** The suggested renewal window of RFC 9773 §4.2, and when to ask again. */
export interface RenewalWindow {
  start: Date;
  end: Date;
  /** The CA's Retry-After for this answer, in ms. */
  retryAfterMs: number | undefined;
}

export interface AcmeClientOptions {
  /** PEM certificates to trust for the directory's HTTPS (a private or test CA); default: the system's. */
  ca?: string;
  /** `mailto:` addresses for the account. */
  contact?: readonly string[];
  /** Longest wait for one answer from the CA. */
  requestTimeoutMs?: number;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

const header = (a: Answer, name: string): string | undefined => {
  const v = a.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Longest Retry-After a poll honours before looking again anyway. */
const MAX_POLL_WAIT_MS = 10_000;

export class AcmeClient {
  private readonly dispatcher: Dispatcher;
  private directory: AcmeDirectory | undefined;
  private nonce: string | undefined;
  private accountUrl: string | undefined;

  constructor(
    readonly directoryUrl: string,
    private readonly accountKey: KeyObject,
    private readonly options: AcmeClientOptions = {},
  ) {
    const timeout = options.requestTimeoutMs ?? 30_000;
    this.dispatcher = new Agent({
      connect: { ca: options.ca, timeout: Math.min(timeout, 10_000) },
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
  }

  /** The directory, fetched once per client. */
  async getDirectory(): Promise<AcmeDirectory> {
    if (this.directory !== undefined) return this.directory;
    const answer = await this.send('GET', this.directoryUrl);
    if (answer.status !== 200) throw problemOf(answer, 'the ACME directory');
    const directory = parseJson<AcmeDirectory>(answer, 'the ACME directory');
    if (typeof directory.newNonce !== 'string' || typeof directory.newOrder !== 'string')
      throw new AcmeProblem('malformed', `${this.directoryUrl} is not an ACME directory`, answer.status);
    this.directory = directory;
    return directory;
  }

  /**
   * The account for this key: created with the terms of service agreed, or found again when
   * the CA already knows the key (200 instead of 201, same URL).
   */
  async account(): Promise<string> {
    if (this.accountUrl !== undefined) return this.accountUrl;
    const directory = await this.getDirectory();
    const payload: Record<string, unknown> = { termsOfServiceAgreed: true };
    if (this.options.contact !== undefined && this.options.contact.length > 0) payload.contact = this.options.contact;
    const answer = await this.post(directory.newAccount, payload, false);
    const location = header(answer, 'location');
    if (location === undefined)
      throw new AcmeProblem('malformed', 'the CA created an account without a URL', answer.status);
    this.accountUrl = location;
    return location;
  }

  /** Places an order for `names`; `replaces` names the certificate it succeeds (RFC 9773 §5). */
  async newOrder(names: readonly string[], replaces?: string): Promise<{ url: string; order: AcmeOrder }> {
    const directory = await this.getDirectory();
    await this.account();
    const payload: Record<string, unknown> = { identifiers: names.map((value) => ({ type: 'dns', value })) };
    if (replaces !== undefined) payload.replaces = replaces;
    const answer = await this.post(directory.newOrder, payload);
    const url = header(answer, 'location');
    if (url === undefined) throw new AcmeProblem('malformed', 'the CA created an order without a URL', answer.status);
    return { url, order: parseJson<AcmeOrder>(answer, 'the order') };
  }

  /** POST-as-GET (§6.3) of an order, authorization or challenge. */
  async read<T>(url: string): Promise<T> {
    return parseJson<T>(await this.post(url, undefined), url);
  }

  /** Tells the CA the challenge's answer is in place (an empty object as payload, §7.5.1). */
  async answerChallenge(url: string): Promise<AcmeChallenge> {
    return parseJson<AcmeChallenge>(await this.post(url, {}), url);
  }

  /**
   * Polls an authorization until the CA has decided; an invalid one throws with the
   * challenge's error (what the CA saw when it looked).
   */
  async awaitAuthorization(url: string, deadline: number): Promise<AcmeAuthorization> {
    for (;;) {
      const answer = await this.post(url, undefined);
      const authorization = parseJson<AcmeAuthorization>(answer, url);
      if (authorization.status === 'valid') return authorization;
      if (authorization.status !== 'pending') {
        const failed = authorization.challenges.find((c) => c.error !== undefined)?.error;
        throw fromDocument(
          failed,
          `the authorization for ${authorization.identifier.value} is ${authorization.status}`,
        );
      }
      await this.pause(answer, deadline, `the authorization for ${authorization.identifier.value}`);
    }
  }

  /** Sends the CSR (DER) and polls the order until the certificate is ready; resolves with its URL. */
  async finalize(orderUrl: string, order: AcmeOrder, csr: Buffer, deadline: number): Promise<string> {
    let answer = await this.post(order.finalize, { csr: csr.toString('base64url') });
    let current = parseJson<AcmeOrder>(answer, 'the order');
    while (current.status === 'processing' || current.status === 'ready' || current.status === 'pending') {
      await this.pause(answer, deadline, 'the order');
      answer = await this.post(orderUrl, undefined);
      current = parseJson<AcmeOrder>(answer, 'the order');
    }
    if (current.status !== 'valid' || current.certificate === undefined)
      throw fromDocument(current.error, `the order ended ${current.status}`);
    return current.certificate;
  }

  /** The issued chain, PEM, leaf first. */
  async downloadCertificate(url: string): Promise<string> {
    const answer = await this.post(url, undefined, true, 'application/pem-certificate-chain');
    if (!answer.text.includes('-----BEGIN CERTIFICATE-----'))
      throw new AcmeProblem('malformed', 'the CA sent something other than a PEM certificate chain', answer.status);
    return answer.text;
  }

  /**
   * The CA's suggested renewal window for a certificate (RFC 9773), or undefined when the
   * directory offers no renewalInfo or the certificate carries no Authority Key Identifier.
   */
  async renewalInfo(certificatePem: string): Promise<RenewalWindow | undefined> {
    const directory = await this.getDirectory();
    const id = directory.renewalInfo === undefined ? undefined : renewalCertId(certificatePem);
    if (directory.renewalInfo === undefined || id === undefined) return undefined;
    const answer = await this.send('GET', `${directory.renewalInfo.replace(/\/$/, '')}/${id}`);
    if (answer.status !== 200) throw problemOf(answer, 'the renewal information');
    const info = parseJson<{ suggestedWindow?: { start?: string; end?: string } }>(answer, 'the renewal information');
    const start = Date.parse(info.suggestedWindow?.start ?? '');
    const end = Date.parse(info.suggestedWindow?.end ?? '');
    if (Number.isNaN(start) || Number.isNaN(end) || end < start)
      throw new AcmeProblem('malformed', 'the renewal information has no usable suggestedWindow', answer.status);
    const seconds = parseRetryAfter(header(answer, 'retry-after'));
    return {
      start: new Date(start),
      end: new Date(end),
      retryAfterMs: seconds === undefined ? undefined : seconds * 1000,
    };
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }

  /** A signed POST; a badNonce refusal is tried once more with the nonce it brought. */
  private async post(url: string, payload: unknown, withKid = true, accept?: string): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const nonce = await this.takeNonce();
      const kid = withKid ? await this.account() : undefined;
      const body = JSON.stringify(signRequest(this.accountKey, url, nonce, payload, kid));
      const answer = await this.send('POST', url, body, accept);
      if (answer.status < 400) return answer;
      const problem = problemOf(answer, url);
      if (problem.type === 'badNonce' && attempt === 0) continue;
      throw problem;
    }
  }

  private async takeNonce(): Promise<string> {
    const kept = this.nonce;
    this.nonce = undefined;
    if (kept !== undefined) return kept;
    const directory = await this.getDirectory();
    const answer = await this.send('HEAD', directory.newNonce);
    const nonce = header(answer, 'replay-nonce');
    if (nonce === undefined) throw problemOf(answer, 'a new nonce');
    this.nonce = undefined;
    return nonce;
  }

  private async send(method: 'GET' | 'HEAD' | 'POST', url: string, body?: string, accept?: string): Promise<Answer> {
    let response: Dispatcher.ResponseData<unknown>;
    try {
      response = await request(url, {
        method,
        body,
        dispatcher: this.dispatcher,
        headers: {
          'content-type': body === undefined ? undefined : 'application/jose+json',
          accept: accept ?? 'application/json',
          'user-agent': 'gangway-acme',
        },
      } as Parameters<typeof request>[1]);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new AcmeProblem('unreachable', `cannot reach the CA at ${url}: ${e.code ?? e.message}`, undefined);
    }
    const text = method === 'HEAD' ? '' : await response.body.text();
    if (method === 'HEAD') await response.body.dump();
    const answer = { status: response.statusCode, headers: response.headers as Answer['headers'], text };
    // Every answer carries a fresh nonce; keeping it saves a round trip on the next POST.
    const nonce = header(answer, 'replay-nonce');
    if (nonce !== undefined) this.nonce = nonce;
    return answer;
  }

  /** Waits as the CA's Retry-After says (bounded), or a second; throws past the deadline. */
  private async pause(answer: Answer, deadline: number, what: string): Promise<void> {
    const seconds = parseRetryAfter(header(answer, 'retry-after'));
    const wait = Math.min(MAX_POLL_WAIT_MS, seconds === undefined ? 1000 : Math.max(seconds * 1000, 250));
    if (Date.now() + wait > deadline)
      throw new AcmeProblem('timeout', `the CA took too long deciding ${what}`, undefined);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial number bytes). */
export function renewalCertId(certificatePem: string): string | undefined {
  const { serial, authorityKeyId } = certificateIdentity(new X509Certificate(certificatePem).raw);
  if (authorityKeyId === undefined) return undefined;
  return `${authorityKeyId.toString('base64url')}.${serial.toString('base64url')}`;
}

function parseJson<T>(answer: Answer, what: string): T {
  try {
    return JSON.parse(answer.text) as T;
  } catch {
    throw new AcmeProblem('malformed', `the CA's answer for ${what} is not JSON`, answer.status);
  }
}

function problemOf(answer: Answer, what: string): AcmeProblem {
  let document: ProblemDocument | undefined;
  try {
    document = JSON.parse(answer.text) as ProblemDocument;
  } catch {
    document = undefined;
  }
  const seconds = parseRetryAfter(header(answer, 'retry-after'));
  const problem = fromDocument(document, `the CA answered ${answer.status} for ${what}`, answer.status);
  return seconds === undefined
    ? problem
    : new AcmeProblem(problem.type, problem.detail, problem.status, seconds * 1000);
}

function fromDocument(document: ProblemDocument | undefined, fallback: string, status?: number): AcmeProblem {
  const type = document?.type?.startsWith(ACME_ERROR)
    ? document.type.slice(ACME_ERROR.length)
    : (document?.type ?? 'unknown');
  const sub = (document?.subproblems ?? [])
    .map((s) => `${s.identifier?.value ?? ''}: ${s.detail ?? s.type ?? ''}`)
    .join('; ');
  const detail = (document?.detail ?? fallback) + (sub === '' ? '' : ` (${sub})`);
  return new AcmeProblem(type, detail, status ?? document?.status);
}

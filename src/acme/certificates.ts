/**
 * The certificates Gangway obtains for itself: one per listed name, found in storage at start
 * (no order while a stored one is good), ordered when missing, renewed when a third of its
 * lifetime remains or when ACME Renewal Information says, retried with backoff while the CA
 * fails — all while the gateway serves. A new certificate is handed to the listeners at once
 * (new handshakes present it; open connections carry on with the one they have). Orders run
 * one at a time, gently for the CA and readable in the log. A changed list of names (reload)
 * orders what is new and keeps what is held.
 *
 * Several processes may manage the same names: the workers of one machine, the instances of a
 * fleet. The storage's issuance lock lets one of them order; the others wait for it (not a
 * failure: no warning, no backoff) and take its certificate from storage when it announces it
 * (./fleet.ts) or when they find the lock free again.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import type { Logger } from '../observe/logger.js';
import { serverContext } from '../listen/tls-settings.js';
import type { ChallengeBoard, ChallengeType } from './challenges.js';
import { type AcmeAuthorization, AcmeClient, AcmeProblem, renewalCertId } from './client.js';
import { certificateRequest, newKey } from './csr.js';
import { keyAuthorization } from './jws.js';
import { LONGEST_SLEEP_MS, renewalAtThird, renewalInWindow, retryDelay } from './schedule.js';
import type { AcmeStorage, StoredCertificate } from './storage.js';

/** The `acme` section as the gateway runs it. */
export interface AcmeSettings {
  directory: string;
  /** `mailto:` URLs. */
  contact: string[];
  /** PEM bundle trusted for the directory's HTTPS, when not the system's. */
  ca: string | undefined;
  /** The challenge types to answer, in order of preference. */
  challenges: ChallengeType[];
  /** First wait after a failure; doubled per failure up to maxRetryDelay. */
  retryDelay: number;
  maxRetryDelay: number;
}

/** What became of one attempt at a name, for the metric. */
export type AcmeOutcome = 'obtained' | 'renewed' | 'reused' | 'failed';

export interface AcmeEvents {
  /** A name has a (new) certificate: listeners present it from the next handshake on. */
  installed(name: string, certificate: StoredCertificate): void;
  outcome(name: string, outcome: AcmeOutcome): void;
  /** This process ordered and stored a certificate for a name (the others sharing its storage may take it). */
  stored?(name: string): void;
}

/** A certificate being served, with what the schedule needs of it. */
export interface HeldCertificate extends StoredCertificate {
  notBefore: Date;
  notAfter: Date;
  context: SecureContext;
}

interface NameState {
  name: string;
  held: HeldCertificate | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Failed attempts since the last success. */
  failures: number;
  /** No longer listed: its timers stop and it is no longer served. */
  dropped: boolean;
  /** Waiting for another process that holds the issuance lock (said once in the log per wait). */
  waiting: boolean;
}

/** The issuance lock passed to another process part way through an order: that one orders now. */
class LockLost extends Error {}

/** Longest an order may take, from placing it to the download. */
const ORDER_DEADLINE_MS = 3 * 60_000;
/**
 * While another process holds the issuance lock, how often to look whether it let go (its
 * announcement of the certificate usually comes first; a holder that died lets go when its
 * lock times out).
 */
const LOCK_LOOK_MS = 1000;
/** A stored time to try again this close is taken as come (timers fire within a few ms of their time). */
const OWN_TIMER_SLACK_MS = 50;

export class AcmeCertificates {
  private readonly names = new Map<string, NameState>();
  private client: AcmeClient | undefined;
  private accountKey: KeyObject | undefined;
  /** Orders in line: one at a time. */
  private line: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly settings: AcmeSettings,
    private readonly storage: AcmeStorage,
    private readonly board: ChallengeBoard,
    private readonly logger: Logger,
    private readonly events: AcmeEvents,
  ) {}

  /** Manages exactly these names from now on: new ones are loaded or ordered, dropped ones let go. */
  manage(names: readonly string[]): void {
    const wanted = new Set(names.map((n) => n.toLowerCase()));
    for (const [name, state] of this.names) {
      if (wanted.has(name)) continue;
      state.dropped = true;
      clearTimeout(state.timer);
      this.names.delete(name);
      this.logger.info({ name }, 'acme: name no longer listed; its certificate is kept on disk but not renewed');
    }
    for (const name of wanted) {
      if (this.names.has(name)) continue;
      const state: NameState = {
        name,
        held: undefined,
        timer: undefined,
        failures: 0,
        dropped: false,
        waiting: false,
      };
      this.names.set(name, state);
      this.enqueue(state, () => this.begin(state));
    }
  }

  /** The context to present for a name: null while a listed name has no certificate yet. */
  contextFor(name: string): SecureContext | null | undefined {
    const state = this.names.get(name.toLowerCase());
    return state === undefined ? undefined : (state.held?.context ?? null);
  }

  /** The certificate held for a name (PEM chain and key), once it has one. */
  certificateOf(name: string): HeldCertificate | undefined {
    return this.names.get(name.toLowerCase())?.held;
  }

  /**
   * Another process stored a certificate for `name` (every name when empty): it is read from
   * storage and presented when it is newer than the one held.
   */
  storedElsewhere(name: string): void {
    for (const state of this.names.values())
      if (name === '' || state.name === name.toLowerCase()) this.enqueue(state, () => this.adopt(state));
  }

  /** Stops every timer and lets the CA client go; an order under way ends at its next step. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const state of this.names.values()) clearTimeout(state.timer);
    await this.client?.close().catch(() => undefined);
  }

  /** At start (or when first listed): a stored certificate if good, else an order. */
  private async begin(state: NameState): Promise<void> {
    const stored = await this.readStored(state.name);
    if (stored !== undefined) {
      this.install(state, stored);
      this.events.outcome(state.name, 'reused');
      this.logger.info(
        { name: state.name, notAfter: stored.notAfter.toISOString(), storage: this.storage.location },
        'acme: stored certificate reused',
      );
      await this.plan(state);
      return;
    }
    await this.obtain(state, state.held);
  }

  /** A newer certificate in storage (stored by another process) replaces the one held. */
  private async adopt(state: NameState): Promise<void> {
    const stored = await this.readStored(state.name);
    if (stored === undefined || (state.held !== undefined && stored.notAfter <= state.held.notAfter)) return;
    this.installStored(state, stored);
    await this.plan(state);
  }

  private installStored(state: NameState, stored: HeldCertificate): void {
    this.install(state, stored);
    state.failures = 0;
    state.waiting = false;
    this.events.outcome(state.name, 'reused');
    this.logger.info(
      { name: state.name, notAfter: stored.notAfter.toISOString(), storage: this.storage.location },
      'acme: certificate stored by another gateway presented',
    );
  }

  /**
   * Orders a certificate now (first, or renewing `replacing`: given, since a waiting call must
   * not take a certificate adopted meanwhile for the one to replace), under the storage's
   * issuance lock; while another process holds it, waits for that one's certificate instead.
   */
  private async obtain(state: NameState, replacing: HeldCertificate | undefined): Promise<void> {
    const renewing = replacing !== undefined;
    /** When the order itself failed: the wait already made known to the others. */
    let failedWait: number | undefined;
    try {
      const release = await this.storage.lock(state.name);
      if (release === undefined) {
        if (!state.waiting)
          this.logger.info(
            { name: state.name, storage: this.storage.location },
            'acme: another gateway is ordering this name; waiting for its certificate',
          );
        state.waiting = true;
        this.sleep(state, LOCK_LOOK_MS, () => this.obtain(state, replacing));
        return;
      }
      state.waiting = false;
      let retryAt: number | undefined;
      try {
        // Another gateway sharing the storage may have ordered it meanwhile. A storage that cannot
        // be read now is no reason to order: that could be a duplicate (the CA counts them).
        const stored = await this.readStored(state.name, true);
        if (stored !== undefined && stored.notAfter > (replacing?.notAfter ?? new Date(0)) && !this.due(stored)) {
          if (state.held === undefined || stored.notAfter > state.held.notAfter) this.installStored(state, stored);
          await this.plan(state);
          return;
        }
        // Another gateway's order failed lately: this one waits as that one does.
        // (Its own last failure's time has come when its timer fires: a timer may run a moment early.)
        retryAt = await this.storage.readRetryAt(state.name);
        if (retryAt !== undefined && retryAt > Date.now() + OWN_TIMER_SLACK_MS) {
          this.logger.info(
            { name: state.name, retryAt: new Date(retryAt).toISOString() },
            'acme: an order by another gateway failed lately; waiting as it does',
          );
        } else retryAt = undefined;
        if (retryAt !== undefined) {
          // Counted as a failure of its own, so its backoff grows with the fleet's.
          state.failures++;
          this.sleep(state, retryAt - Date.now(), () => this.obtain(state, replacing));
          return;
        }
        const obtained = await this.order(state).catch(async (err: unknown) => {
          if (err instanceof LockLost) throw err;
          // Said before the lock is let go, so the others sharing the storage wait as long as this
          // one will (best effort: a storage that is away cannot be told).
          failedWait = this.waitAfter(state.failures + 1, err);
          await this.storage.writeRetryAt(state.name, Date.now() + failedWait).catch(() => undefined);
          throw err;
        });
        // Checked before it is stored: a chain that does not parse, does not match its key or
        // does not name the name would replace a good certificate on disk and be refused at start.
        const held = toHeld(obtained, state.name);
        await this.storage.writeCertificate(state.name, obtained);
        this.events.stored?.(state.name);
        if (state.dropped || this.closed) return;
        this.install(state, held);
        state.failures = 0;
        this.events.outcome(state.name, renewing ? 'renewed' : 'obtained');
        this.logger.info(
          { name: state.name, notAfter: held.notAfter.toISOString(), storage: this.storage.location },
          renewing ? 'acme: certificate renewed' : 'acme: certificate obtained',
        );
      } finally {
        // A store away at this moment must not turn an obtained certificate (or the CA's own
        // refusal) into a store error: the lock expires by itself.
        await release().catch((err: Error) =>
          this.logger.warn({ name: state.name, err: err.message }, 'acme: could not release the issuance lock'),
        );
      }
      await this.plan(state);
    } catch (err) {
      if (state.dropped || this.closed) return;
      if (err instanceof LockLost) {
        // Not a failure: the process holding the lock now orders, and this one adopts its certificate.
        this.logger.warn({ name: state.name }, 'acme: the issuance lock passed to another gateway; order given up');
        state.waiting = true;
        this.sleep(state, LOCK_LOOK_MS, () => this.obtain(state, replacing));
        return;
      }
      state.failures++;
      const problem = err instanceof AcmeProblem ? err : undefined;
      const wait = failedWait ?? this.waitAfter(state.failures, err);
      this.events.outcome(state.name, 'failed');
      this.logger.warn(
        {
          name: state.name,
          problem: problem?.type ?? 'error',
          detail: problem?.detail ?? (err as Error).message,
          failures: state.failures,
          retryAt: new Date(Date.now() + wait).toISOString(),
          serving: state.held === undefined ? 'nothing yet for this name' : 'the current certificate',
        },
        renewing ? 'acme: renewal failed; retrying later' : 'acme: could not obtain a certificate; retrying later',
      );
      this.sleep(state, wait, () => this.obtain(state, replacing));
    }
  }

  /** The wait before the next attempt after `failures` failures, the last being `err`. */
  private waitAfter(failures: number, err: unknown): number {
    return Math.max(
      retryDelay(failures, this.settings.retryDelay, this.settings.maxRetryDelay),
      err instanceof AcmeProblem ? (err.retryAfterMs ?? 0) : 0,
    );
  }

  /** One order, start to finish: authorizations answered, CSR sent, chain downloaded. */
  private async order(state: NameState): Promise<StoredCertificate> {
    const client = await this.connect();
    const deadline = Date.now() + ORDER_DEADLINE_MS;
    const directory = await client.getDirectory();
    // RFC 9773 §5: a renewal names the certificate it replaces — unless that already failed once.
    const replaces =
      state.held !== undefined && directory.renewalInfo !== undefined && state.failures === 0
        ? renewalCertId(state.held.cert)
        : undefined;
    const { url, order } = await client.newOrder([state.name], replaces);
    this.logger.info({ name: state.name, order: url }, 'acme: order placed');
    for (const authorizationUrl of order.authorizations) {
      const authorization = await client.read<AcmeAuthorization>(authorizationUrl);
      if (authorization.status === 'valid') continue;
      this.stillHolding(state.name);
      await this.prove(client, state.name, authorization, authorizationUrl, deadline);
    }
    // The last moment a duplicate can be avoided: the CA issues on finalize.
    this.stillHolding(state.name);
    const key = newKey();
    const certificateUrl = await client.finalize(url, order, certificateRequest([state.name], key), deadline);
    const cert = await client.downloadCertificate(certificateUrl);
    return { cert, key: key.export({ type: 'pkcs8', format: 'pem' }) as string };
  }

  private stillHolding(name: string): void {
    if (this.storage.lockLost?.(name)) throw new LockLost(`the issuance lock for ${name} passed to another gateway`);
  }

  /** Answers one authorization's challenge of a type we answer, and waits for the CA's verdict. */
  private async prove(
    client: AcmeClient,
    name: string,
    authorization: AcmeAuthorization,
    url: string,
    deadline: number,
  ): Promise<void> {
    const challenge = this.settings.challenges
      .map((type) => authorization.challenges.find((c) => c.type === type))
      .find((c) => c !== undefined);
    if (challenge === undefined)
      throw new AcmeProblem(
        'unsupportedChallenge',
        `the CA offers ${authorization.challenges.map((c) => c.type).join(', ')} for ${name}; ` +
          `Gangway is set to answer ${this.settings.challenges.join(', ')}`,
        undefined,
      );
    const answer = keyAuthorization(challenge.token, this.accountKey!);
    // Resolves once the CA may look: in a fleet, once the other processes can answer too.
    const withdraw = await this.board.offer(
      challenge.type as ChallengeType,
      challenge.type === 'http-01' ? challenge.token : name,
      answer,
    );
    try {
      await client.answerChallenge(challenge.url);
      this.logger.info({ name, challenge: challenge.type }, 'acme: challenge answered');
      await client.awaitAuthorization(url, deadline);
    } finally {
      withdraw();
    }
  }

  /** Schedules the next look at a held certificate: its renewal, or a check of the CA's window. */
  private async plan(state: NameState): Promise<void> {
    const held = state.held;
    if (held === undefined || state.dropped || this.closed) return;
    let renewAt = renewalAtThird(held.notBefore, held.notAfter);
    let by = 'a third of its lifetime left';
    let lookAgain = LONGEST_SLEEP_MS;
    try {
      const window = await (await this.connect()).renewalInfo(held.cert);
      if (window !== undefined) {
        renewAt = renewalInWindow(window.start, window.end);
        by = 'the CA’s renewal window (ARI)';
        if (window.retryAfterMs !== undefined) lookAgain = Math.max(60_000, window.retryAfterMs);
      }
    } catch (err) {
      // Without the CA's word, the lifetime rule stands; the next look asks again.
      this.logger.debug({ name: state.name, err: (err as Error).message }, 'acme: renewal information unavailable');
    }
    const wait = renewAt.getTime() - Date.now();
    if (wait <= 0) {
      this.enqueue(state, () => this.obtain(state, state.held));
      return;
    }
    this.logger.info({ name: state.name, renewAt: renewAt.toISOString(), by }, 'acme: renewal scheduled');
    if (wait <= lookAgain) this.sleep(state, wait, () => this.obtain(state, state.held));
    else this.sleep(state, lookAgain, () => this.plan(state));
  }

  private due(certificate: HeldCertificate): boolean {
    return renewalAtThird(certificate.notBefore, certificate.notAfter).getTime() <= Date.now();
  }

  private sleep(state: NameState, ms: number, then: () => Promise<void>): void {
    clearTimeout(state.timer);
    if (this.closed || state.dropped) return;
    state.timer = setTimeout(() => this.enqueue(state, then), ms);
    state.timer.unref();
  }

  private enqueue(state: NameState, step: () => Promise<void>): void {
    this.line = this.line.then(async () => {
      if (this.closed || state.dropped) return;
      try {
        await step();
      } catch (err) {
        this.logger.error({ name: state.name, err: (err as Error).message }, 'acme: unexpected failure');
      }
    });
  }

  private install(state: NameState, held: HeldCertificate): void {
    state.held = held;
    this.events.installed(state.name, held);
  }

  /**
   * A stored certificate that can be served now (parses, matches its key, names `name`, not
   * expired). `strict`: a storage that cannot be read throws instead of answering "none".
   */
  private async readStored(name: string, strict = false): Promise<HeldCertificate | undefined> {
    let stored: StoredCertificate | undefined;
    try {
      stored = await this.storage.readCertificate(name);
    } catch (err) {
      if (strict)
        throw new AcmeProblem('storage', `cannot read the stored certificate: ${(err as Error).message}`, undefined);
      this.logger.warn({ name, err: (err as Error).message }, 'acme: cannot read the stored certificate');
      return undefined;
    }
    if (stored === undefined) return undefined;
    try {
      const held = toHeld(stored, name);
      if (held.notAfter.getTime() <= Date.now()) return undefined;
      return held;
    } catch (err) {
      this.logger.warn(
        { name, err: (err as Error).message },
        'acme: the stored certificate is unusable; ordering anew',
      );
      return undefined;
    }
  }

  /** The CA client, with the account key read from storage or made and stored on first use. */
  private async connect(): Promise<AcmeClient> {
    if (this.client !== undefined) return this.client;
    let pem = await this.storage.readAccountKey();
    if (pem === undefined) {
      const made = newKey().export({ type: 'pkcs8', format: 'pem' }) as string;
      // Another process sharing the storage may have stored one first: that one is the account.
      pem = await this.storage.writeAccountKey(made);
      if (pem === made) this.logger.info({ storage: this.storage.location }, 'acme: new account key stored');
    }
    this.accountKey = createPrivateKey(pem);
    this.client = new AcmeClient(this.settings.directory, this.accountKey, {
      ca: this.settings.ca,
      contact: this.settings.contact,
    });
    return this.client;
  }
}

/** A chain and key ready to serve for `name`, or an error saying why they are not. */
function toHeld(certificate: StoredCertificate, name: string): HeldCertificate {
  const leaf = new X509Certificate(certificate.cert);
  if (!leaf.checkPrivateKey(createPrivateKey(certificate.key)))
    throw new Error('the key does not belong to the certificate');
  if (leaf.checkHost(name) === undefined)
    throw new Error(`the certificate does not name ${name} (its names: ${leaf.subjectAltName ?? 'none'})`);
  return {
    ...certificate,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    context: serverContext(certificate.cert, certificate.key),
  };
}

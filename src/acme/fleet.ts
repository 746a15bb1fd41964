/**
 * What ACME shares with the other processes of the service through the state store — the
 * other workers of this machine (the supervisor's store) and the other instances (Redis):
 *
 * - **Challenges.** The CA's look lands on whichever process the kernel (reusePort) or the load
 *   balancer picks, not on the one that ordered. An offered answer is therefore written to the
 *   store with a time to live and announced; every process adds it to its own answers and
 *   acknowledges. The orderer tells the CA to look once every process counted alive (the
 *   store's heartbeat) has acknowledged, or after ANNOUNCE_WAIT_MS at most — acknowledgements
 *   rather than a fixed pause, so a quick fleet is not slowed and a slow one is waited for. A
 *   process that missed the announcement (it started since, or its subscription was away) finds
 *   the answer in the store when the CA asks it (`find`: one store call of at most half a second,
 *   only for a well-formed token or a TLS-ALPN-01 handshake, at most ten a second).
 *   Once the CA has decided, the answer is withdrawn everywhere.
 * - **Certificates.** A process that stored a new certificate announces its name; the others
 *   read the storage again and present it from their next handshake, without a restart.
 */
import type { Logger } from '../observe/logger.js';
import type { StoreLink } from '../state/link.js';
import { storeCall } from './store-storage.js';
import type { ChallengeAnswers, ChallengeBoard, ChallengeLookup, ChallengeType } from './challenges.js';

const CHALLENGES = 'acme:challenges';
const SEEN = 'acme:challenges:seen';
const CERTIFICATES = 'acme:certificates';
/** An answer outlives no order (orders are given three minutes): it expires from the store by itself. */
const CHALLENGE_TTL_MS = 5 * 60_000;
/** Longest wait for every process to acknowledge an offered answer before the CA is told to look. */
const ANNOUNCE_WAIT_MS = 3000;
/** Longest wait for a store call made while offering (in the background, not on a request's path). */
const OFFER_DEADLINE_MS = 2000;
/** Store look-ups for unknown answers, at most this many a second (a flood of made-up tokens stays cheap). */
const LOOKUPS_PER_SECOND = 10;
/**
 * Longest wait for a look-up. Not the store's few milliseconds, which are for requests that must
 * never wait: here the asker is the CA (it waits seconds), and a look-up given up is a failed
 * validation — an order to place again, which the CA counts.
 */
const LOOKUP_DEADLINE_MS = 500;

type Announcement =
  | { kind: 'offer'; id: string; from: string; type: ChallengeType; subject: string; keyAuthorization: string }
  | { kind: 'withdraw'; id: string; from: string; type: ChallengeType; subject: string };

export class AcmeFleet implements ChallengeBoard, ChallengeLookup {
  /** Answers offered by other processes, held here until withdrawn or expired. */
  private readonly learnt = new Map<string, { withdraw: () => void; timer: NodeJS.Timeout }>();
  /** Offers of this process awaiting acknowledgements: id → the processes that saw it. */
  private readonly awaiting = new Map<string, { seen: Set<string>; check: () => void }>();
  private readonly installedListeners: Array<(name: string) => void> = [];
  private offers = 0;
  private lookups = { second: 0, count: 0 };
  private subscribed = false;

  constructor(
    private readonly link: StoreLink,
    private readonly answers: ChallengeAnswers,
    private readonly logger: Logger,
  ) {
    answers.lookup = this;
    // A subscription refused while the store was away is made when it answers again; what was
    // announced meanwhile is found in storage (the certificates) or the store (the answers).
    link.onRecovered(() => {
      void this.start();
      for (const l of this.installedListeners) l('');
    });
  }

  /** Subscribes to the fleet's announcements (again after an outage, when the first try failed). */
  async start(): Promise<void> {
    if (this.subscribed) return;
    const store = this.link.store;
    try {
      await Promise.all([
        store.subscribe(CHALLENGES, (m) => this.announced(m)),
        store.subscribe(SEEN, (m) => this.seen(m)),
        store.subscribe(CERTIFICATES, (m) => this.certificateNews(m)),
      ]);
      this.subscribed = true;
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message },
        'acme: cannot subscribe to the fleet’s announcements yet; answers are looked for in the store meanwhile',
      );
    }
  }

  /** Called with a name another process stored a new certificate for ('' after an outage: every name). */
  onInstalled(listener: (name: string) => void): void {
    this.installedListeners.push(listener);
  }

  /** Says that this process stored a new certificate for `name`. */
  announceInstalled(name: string): void {
    const message = JSON.stringify({ from: this.link.instance, name });
    void within(this.link.store.publish(CERTIFICATES, message)).catch((err: Error) =>
      this.logger.warn({ name, err: err.message }, 'acme: could not announce the new certificate to the fleet'),
    );
  }

  async offer(type: ChallengeType, subject: string, keyAuthorization: string): Promise<() => void> {
    const withdrawHere = await this.answers.offer(type, subject, keyAuthorization);
    const key = storeKey(type, subject);
    const id = `${this.link.instance}-${++this.offers}`;
    const from = this.link.instance;
    const seen = new Set<string>([from]);
    let check = (): void => undefined;
    const everyone = new Promise<void>((resolve) => {
      check = () => {
        if (seen.size >= this.link.instances) resolve();
      };
    });
    this.awaiting.set(id, { seen, check });
    const started = Date.now();
    try {
      await within(this.link.store.set(key, keyAuthorization, CHALLENGE_TTL_MS));
      const offer: Announcement = { kind: 'offer', id, from, type, subject, keyAuthorization };
      await within(this.link.store.publish(CHALLENGES, JSON.stringify(offer)));
      check();
      const waited = await Promise.race([everyone.then(() => true), sleep(ANNOUNCE_WAIT_MS).then(() => false)]);
      this.logger.info(
        { type, acknowledged: seen.size, alive: this.link.instances, ms: Date.now() - started },
        waited
          ? 'acme: every process holds the challenge answer'
          : 'acme: not every process acknowledged the challenge answer; the others find it in the store',
      );
    } catch (err) {
      // Offered here only: the CA's look may still land here, and the order says whether it did.
      this.logger.warn(
        { type, err: (err as Error).message },
        'acme: could not share the challenge answer with the fleet; only this process can answer it',
      );
    } finally {
      this.awaiting.delete(id);
    }
    return () => {
      withdrawHere();
      const withdrawal: Announcement = { kind: 'withdraw', id, from, type, subject };
      void within(this.link.store.release(key, keyAuthorization))
        .then(() => within(this.link.store.publish(CHALLENGES, JSON.stringify(withdrawal))))
        .catch(() => undefined); // The answer expires from the store and from the others by itself.
    };
  }

  async find(type: ChallengeType, subject: string): Promise<string | undefined> {
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.lookups.second) this.lookups = { second, count: 0 };
    if (++this.lookups.count > LOOKUPS_PER_SECOND) return undefined;
    return storeCall(this.link.store.get(storeKey(type, subject)), LOOKUP_DEADLINE_MS);
  }

  served(type: ChallengeType, subject: string, offeredHere: boolean): void {
    this.logger.info(
      { type, name: type === 'tls-alpn-01' ? subject : undefined, offeredHere },
      'acme: challenge answer served to the CA',
    );
  }

  private announced(message: string): void {
    const a = parsed<Announcement>(message);
    if (a === undefined || a.from === this.link.instance) return;
    const key = storeKey(a.type, a.subject);
    this.learnt.get(key)?.withdraw();
    this.learnt.delete(key);
    if (a.kind === 'withdraw') return;
    const withdrawAnswer =
      a.type === 'http-01'
        ? this.answers.offerHttp(a.subject, a.keyAuthorization)
        : this.answers.offerTlsAlpn(a.subject, a.keyAuthorization);
    const withdraw = (): void => {
      clearTimeout(entry.timer);
      withdrawAnswer();
    };
    const entry = { withdraw, timer: setTimeout(() => this.forget(key, entry), CHALLENGE_TTL_MS) };
    entry.timer.unref();
    this.learnt.set(key, entry);
    void within(this.link.store.publish(SEEN, JSON.stringify({ id: a.id, from: this.link.instance }))).catch(
      () => undefined,
    );
  }

  private forget(key: string, entry: { withdraw: () => void }): void {
    if (this.learnt.get(key) !== entry) return;
    this.learnt.delete(key);
    entry.withdraw();
  }

  private seen(message: string): void {
    const s = parsed<{ id?: string; from?: string }>(message);
    const waiting = s?.id === undefined ? undefined : this.awaiting.get(s.id);
    if (waiting === undefined || typeof s?.from !== 'string') return;
    waiting.seen.add(s.from);
    waiting.check();
  }

  private certificateNews(message: string): void {
    const news = parsed<{ from?: string; name?: string }>(message);
    if (news === undefined || news.from === this.link.instance || typeof news.name !== 'string' || news.name === '')
      return;
    for (const l of this.installedListeners) l(news.name);
  }
}

/** Where an answer is kept in the store: by token (HTTP-01) or by name (TLS-ALPN-01). */
function storeKey(type: ChallengeType, subject: string): string {
  return type === 'http-01' ? `acme:challenge:http:${subject}` : `acme:challenge:tls:${subject.toLowerCase()}`;
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/** A store call that gives up after OFFER_DEADLINE_MS. */
function within<T>(work: Promise<T>): Promise<T> {
  return storeCall(work, OFFER_DEADLINE_MS);
}

/** A message from another process, or undefined when it is not JSON (a message not meant for us is ignored). */
function parsed<T>(message: string): T | undefined {
  try {
    return JSON.parse(message) as T;
  } catch {
    return undefined;
  }
}

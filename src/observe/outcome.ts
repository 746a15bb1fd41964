/**
 * What a request's end meant to the person who sent it — the one definition of "a failure a
 * listener saw" that the metrics, the access log, the status page, the incidents and the demo
 * console all count by. A broken answer and a stream cut part way are failures; a request the
 * gateway turned away at once with Retry-After to protect the service (shed) is not a broken
 * answer and is counted apart; planned maintenance and the client's own mistakes are neither.
 */
import { FAILURES, type FailureKindName } from '../faults/taxonomy.js';

export type Outcome =
  /** A complete answer below 500 (a 404 from the service is an answer). */
  | 'ok'
  /** A 5xx answer: the gateway's own (other than shedding and maintenance) or the upstream's. */
  | 'failed'
  /** The answer started and then broke: the listener has a partial body. */
  | 'cut'
  /** Turned away at once with Retry-After because the service was at its limit. */
  | 'shed'
  | 'maintenance'
  /** The client's own doing: a malformed request, a rate limit, or it left. */
  | 'client';

/** The outcomes a listener experiences as the service failing them. */
export function isListenerFailure(outcome: Outcome): boolean {
  return outcome === 'failed' || outcome === 'cut';
}

export function outcomeOf(status: number, failure: FailureKindName | undefined, headersSent: boolean): Outcome {
  if (failure !== undefined) {
    const kind = FAILURES[failure];
    if (kind.side === 'client') return 'client';
    if (kind.side === 'maintenance') return 'maintenance';
    if (failure === 'connection_limit_reached') return 'shed';
    if (headersSent && status < 500) return 'cut';
  }
  return status >= 500 ? 'failed' : 'ok';
}

/**
 * Fair shares of the event loop for response bodies. Left to itself, one upstream read event
 * can carry a whole large body through the gateway in a single turn of the event loop: libuv
 * reads a readable socket up to 32 times (64 KiB each) per event, and a client write that the
 * kernel takes at once drains on the next tick, which resumes the upstream read before the
 * loop moves on. Measured with 64 concurrent 1 MiB downloads, every response was relayed
 * whole within one turn (up to 23 MiB and 31 responses in a single turn), so a turn lasted as
 * long as copying all of that, and the streams and requests that were not in it waited: a few
 * downloads took seconds while most took milliseconds.
 *
 * So a relay may move TURN_BUDGET bytes, then it pauses its upstream and yields: it goes on in
 * the check phase after the other sockets' I/O of this turn had their go (setImmediate), as
 * nginx bounds the work of one connection per event (`sendfile_max_chunk`, its proxy buffers).
 * Backpressure is unchanged and composes with it: the upstream flows again only when the
 * relay's turn came round *and* the client drained. A body smaller than the budget (the 1 KiB
 * path) never yields: it pays one addition and one comparison per chunk.
 */

/**
 * Bytes a relay may move before it lets the other streams have a turn: one socket read's
 * worth (libuv reads 64 KiB at a time), so a turn carries at most about one read per stream,
 * however much the upstream has buffered.
 */
export const TURN_BUDGET = 64 * 1024;

/** A body relay as the pacer sees it (the Exchange is one; its fields are kept on it, no object per response). */
export interface PacedRelay {
  /** Bytes relayed since the relay last yielded. */
  turnBytes: number;
  /** Gave its turn away: waits for the check phase to go on. */
  yielding: boolean;
  /** The client's buffer is full: waits for its drain. */
  clientFull: boolean;
  /** Lets the upstream's body flow again. */
  flow(): void;
}

/**
 * A chunk was handed to the client (`accepted`: what the client said, false when its buffer is
 * full). Returns false when the upstream must pause now: the client is full, or this relay has
 * had its share of the turn.
 */
export function paceChunk(relay: PacedRelay, length: number, accepted: boolean): boolean {
  if (!accepted) relay.clientFull = true;
  relay.turnBytes += length;
  if (relay.turnBytes < TURN_BUDGET) return accepted;
  relay.turnBytes = 0;
  if (!relay.yielding) {
    relay.yielding = true;
    setImmediate(turnCameRound, relay);
  }
  return false;
}

/** The client drained: flow again, unless the relay is still waiting for its turn. */
export function clientDrained(relay: PacedRelay): void {
  relay.clientFull = false;
  if (!relay.yielding) relay.flow();
}

function turnCameRound(relay: PacedRelay): void {
  relay.yielding = false;
  if (!relay.clientFull) relay.flow();
}

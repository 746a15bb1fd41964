/**
 * The gateway's own answer to a request — refused by the preflight, shed, or failed
 * upstream — built in this one place from what the request context knows, and written to
 * whichever client side the request came from; for a gRPC call, a gRPC status (in the head,
 * or in the trailers of a stream that had started).
 */
import { buildReply, type LocalReply, type ReplyFacts } from '../explain/reply.js';
import { describeError } from '../faults/classify.js';
import type { FailureKindName } from '../faults/taxonomy.js';
import type { ClientResponse } from '../listen/client.js';
import { standInForError } from './cache-phase.js';
import type { RequestContext, RoutedContext } from './context.js';

/** What a stage may add to a reply: when to come back, the operator's message, details, extra fields. */
export type ReplyExtras = Pick<
  ReplyFacts,
  'retryAfter' | 'message' | 'details' | 'headers' | 'receivedStatus' | 'endKnown'
>;

export function replyLocally(ctx: RequestContext, kind: FailureKindName, err?: unknown, extra?: ReplyExtras): void {
  // On a cached route, a stored copy may stand in for a 502/503/504 (stale-if-error).
  if (ctx.route?.cache !== undefined && standInForError(ctx as RoutedContext, kind)) return;
  ctx.failure = kind;
  if (err !== undefined) ctx.cause = describeError(err);
  const reply = buildReply(factsOf(ctx, kind, extra));
  // A request body we did not read would be taken for the next request on this connection.
  if (!ctx.req.complete) ctx.res.closeAfter();
  ctx.headAt = performance.now();
  sendReply(ctx.res, reply, ctx.req.method);
}

/**
 * A gRPC call whose answer had started (the upstream's headers went out) and cannot go on: it
 * ends with the gateway's status in its trailers — the same `grpc-status` and `grpc-message` a
 * reply of this kind carries — so the client reads UNAVAILABLE (or DEADLINE_EXCEEDED) rather
 * than a reset stream. Whatever it already received stays received; nothing is spliced after it.
 */
export function endGrpcCall(ctx: RequestContext, kind: FailureKindName, extra?: ReplyExtras): void {
  const reply = buildReply(factsOf(ctx, kind, extra));
  const trailers: Array<[string, string]> = [];
  for (const field of reply.headers)
    if (field[0] === 'grpc-status' || field[0] === 'grpc-message') trailers.push(field);
  ctx.res.finish(undefined, trailers);
}

function factsOf(ctx: RequestContext, kind: FailureKindName, extra: ReplyExtras | undefined): ReplyFacts {
  const { req, runtime } = ctx;
  const replies = runtime.replies;
  return {
    kind,
    proxyName: replies.proxyName,
    page: replies.page,
    statusPage: replies.statusPage,
    requestId: ctx.id,
    service: ctx.route?.upstream.name,
    path: req.url,
    authority: ctx.authority,
    scheme: ctx.scheme,
    accept: req.headers.accept,
    acceptLanguage: req.headers['accept-language'],
    method: req.method,
    revealDetails: ctx.revealDetails,
    nextHop: ctx.exchange?.lastHost?.label,
    cause: ctx.cause,
    grpc: ctx.grpc,
    ...extra,
  };
}

/** Writes a built reply on a response whose headers have not been sent. */
export function sendReply(res: ClientResponse, reply: LocalReply, method: string | undefined): void {
  const flat: string[] = [];
  for (const [k, v] of reply.headers) flat.push(k, v);
  flat.push('content-length', String(Buffer.byteLength(reply.body)));
  res.sendHead(reply.status, undefined, flat, true);
  res.finish(method === 'HEAD' ? undefined : reply.body);
}

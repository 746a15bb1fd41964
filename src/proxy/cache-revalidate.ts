/**
 * stale-while-revalidate (RFC 5861 §3): a stale copy was served, and the upstream is asked
 * once, outside any client's request, whether it is still current — a 304 refreshes the copy,
 * a storable answer replaces it. One such request per URL at a time. The request head is built
 * as every upstream request's is (hop-by-hop fields out, the checked Host, X-Forwarded-*,
 * Via), with the copy's validators in place of the client's own conditions, and it goes to a
 * host the pool picks, within the upstream's response timeout.
 */
import type CachePolicy from 'http-cache-semantics';
import type { RouteCache } from '../cache/route-cache.js';
import { afterNotModified, storablePolicy } from '../cache/storable.js';
import { StoredResponse, varyFieldsOf, varyKeyOf } from '../cache/store.js';
import type { RoutedContext } from './context.js';
import { buildUpstreamHeaders } from './headers.js';

/** Request fields the copy's validators replace: the client's own conditions are not the cache's. */
const CONDITIONS = new Set([
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'if-range',
  'range',
]);

const underway = new WeakMap<RouteCache, Set<string>>();

export function revalidateInBackground(
  ctx: RoutedContext,
  cache: RouteCache,
  key: string,
  stored: StoredResponse,
  validators: CachePolicy.Headers,
): void {
  let keys = underway.get(cache);
  if (keys === undefined) {
    keys = new Set();
    underway.set(cache, keys);
  }
  if (keys.has(key)) return;
  const { req, runtime, route } = ctx;
  const host = route.upstream.pick();
  if (host === undefined) return;
  keys.add(key);
  const head = buildUpstreamHeaders(req.rawHeaders, req.headers.connection, {
    proxyName: runtime.replies.proxyName,
    requestId: ctx.id,
    clientAddress: ctx.clientAddress,
    proto: ctx.scheme,
    httpVersion: req.httpVersion,
    authority: ctx.authority,
    hostOverride: route.policy.hostHeader === 'upstream' ? host.label : undefined,
  });
  const sent: string[] = [];
  for (let i = 0; i < head.length; i += 2)
    if (!CONDITIONS.has(head[i]!.toLowerCase())) sent.push(head[i]!, head[i + 1]!);
  for (const name of ['if-none-match', 'if-modified-since']) {
    const v = validators[name];
    if (typeof v === 'string') sent.push(name, v);
  }
  const request: CachePolicy.Request = { url: req.url, method: 'GET', headers: { ...req.headers } };
  const timeout = route.upstream.config.timeouts.response;
  host.outstanding++;
  host.dispatcher
    .request({ path: req.url!, method: 'GET', headers: sent, headersTimeout: timeout, bodyTimeout: timeout })
    .then(async (r) => {
      const fields = r.headers as Record<string, string | string[] | undefined>;
      if (r.statusCode === 304) {
        await r.body.dump();
        const policy = afterNotModified(stored, request, fields);
        if (policy === undefined) cache.store.delete(key, stored);
        else cache.refresh(key, stored, policy);
        return;
      }
      const policy = storablePolicy(request, r.statusCode, fields, cache.maxObjectSize);
      if (policy === undefined) {
        await r.body.dump();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of r.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > cache.maxObjectSize) {
          r.body.destroy();
          return;
        }
        chunks.push(chunk);
      }
      const vary = varyFieldsOf(fields.vary);
      const body = Buffer.concat(chunks, size);
      cache.store.put(key, new StoredResponse(policy, r.statusCode, body, vary, varyKeyOf(vary, request.headers)));
    })
    .catch(() => undefined)
    .finally(() => {
      host.outstanding--;
      keys.delete(key);
    });
}

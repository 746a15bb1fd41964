/**
 * docs/failures.md, generated from the failure taxonomy table.
 */
import { text } from './catalogue.js';
import { FAILURES, type FailureKindName } from '../faults/taxonomy.js';

const RETRY_TEXT = {
  any: 'yes, any method (nothing reached the upstream)',
  replayable: 'yes, when the request body can be sent again',
  idempotent: 'idempotent requests only',
  resume: "resume by Range when validators allow, else the client's stream is cut",
  never: 'no',
} as const;

const TABLE_HEAD =
  '| kind | status | Proxy-Status error | retried on another host? | whose side | Retry-After (s) | ' +
  'gRPC status | what the client is told |\n|---|---|---|---|---|---|---|---|';

export function renderFailuresReference(): string {
  const rows = Object.entries(FAILURES).map(([name, k]) => {
    const passedOn = name === 'upstream_error_status';
    const status = k.status ?? (passedOn ? 'as received' : '(headers already sent)');
    const error = k.error ? `\`${k.error}\`` : passedOn ? '`received-status`' : '—';
    const told = text('en', `kind.${name as FailureKindName}.explanation`, undefined, { service: '*service*' });
    return (
      `| \`${name}\` | ${status} | ${error} | ${RETRY_TEXT[k.retry]} | ${k.side} | ${k.retryAfter ?? '—'} | ` +
      `\`${k.grpc}\` | ${told} |`
    );
  });
  return `# Failures and what the gateway answers

<!-- Generated from src/faults/taxonomy.ts by \`npm run docs\`; do not edit by hand. -->

Every way a request can fail at Gangway maps to exactly one kind below. A response the
gateway makes itself carries \`Proxy-Status\` (RFC 9209) with the error token, \`Cache-Control:
no-store\`, \`X-Request-Id\`, and \`Retry-After\` when the answer is about the service's health.
Its body follows the request's \`Accept\`: \`application/problem+json\` (RFC 9457, with
\`type: urn:gangway:failure:<kind>\`), HTML for browsers, plain text otherwise.

Clients see the upstream's *name* (\`details="upstream music"\`), never a host address or a raw
error, unless \`errors.exposeDetails\` is on or the client is in \`errors.trustedClients\`; the
access log always has the host and the cause. Metrics label requests by kind
(\`gangway_requests_total{failure="<kind>"}\`).

${TABLE_HEAD}
${rows.join('\n')}

The retry column is what the gateway does before any answer reaches the client: another
host is tried when the rule allows it, the request has attempts left (\`retries.attempts\`,
default 3) and the upstream's retry budget (20% of the last 10 s of requests, plus 1 per
second) is not spent. "Idempotent" means GET, HEAD, OPTIONS, PUT, DELETE, TRACE, or any
request with an \`Idempotency-Key\` header; a body is "replayable" when it was small enough
(\`retries.replayBody\`, default 64 KiB) to be kept. A 503 with \`Retry-After\` also takes
that host out of rotation for that long. After the headers, a broken GET response is resumed
from another host with \`Range\`/\`If-Range\` when it has a strong validator and byte ranges,
up to twice; otherwise the client's stream is cut so it sees an incomplete body.

A gRPC call (\`Content-Type: application/grpc…\`) gets the kind's gRPC status instead of a body:
a trailers-only answer, HTTP 200 with \`grpc-status\`, \`grpc-message\` (the explanation above,
percent-encoded, naming the service and the kind), \`Proxy-Status\`, and \`grpc-retry-pushback-ms\`
beside \`Retry-After\`. A gRPC stream that breaks after its headers ends with its status in the
trailers (UNAVAILABLE, or DEADLINE_EXCEEDED when its \`grpc-timeout\` passed), never resumed.
Every gRPC call is a POST: it is sent again after it reached a host only when the route lists
its method in \`grpc.idempotentMethods\` (see docs/grpc.md).
`;
}

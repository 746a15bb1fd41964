/**
 * The words of `gangway --help` and of each command's own help (`gangway help start`,
 * `gangway start --help`), with examples.
 */
import { VERSION } from '../version.js';

export const GENERAL_HELP = `gangway ${VERSION} — an HTTP gateway that keeps 502s away from users and explains the ones it cannot prevent

Usage:
  gangway start [-c] FILE [--watch]   run the gateway on a configuration file
  gangway check [-c] FILE             validate a configuration file
  gangway doctor URL [options]        find out why URL fails, and whose side it is on
  gangway demo                        a streaming service behind Gangway, with fault switches
  gangway schema                      print the configuration's JSON Schema
  gangway help COMMAND                a command's options and examples
  gangway --help | --version

Examples:
  gangway demo
  gangway check -c gangway.yaml && gangway start -c gangway.yaml
  gangway doctor https://music.example.com/api/tracks

Documentation: README.md, docs/configuration.md, docs/failures.md, docs/operations.md
`;

export const COMMAND_HELP: Record<string, string> = {
  start: `gangway start -c FILE [--watch]

Runs the gateway on a YAML configuration file (see docs/configuration.md). An invalid file is
refused with file:line:column, the field and the problem, and the gateway does not start.

Options:
  -c, --config FILE   the configuration file
  -w, --watch         reload whenever the file changes (an invalid edit is logged and ignored)

Signals: SIGTERM or SIGINT drain in-flight requests and stop (a second one exits at once);
SIGHUP reloads the file. POST /api/reload on the admin API does the same and answers with
the problems of an invalid file. The running configuration stays until a valid one arrives.

With \`workers: N\` (or "auto", one per core) this process supervises N worker processes on the
same listeners: signal it as above and every worker reloads or drains; a worker that crashes is
started again after a backoff (see docs/workers.md).

Environment: GANGWAY_ADMIN_TOKEN, the bearer token admin changes require (overrides adminToken).

Examples:
  gangway start -c gangway.yaml
  gangway start -c /etc/gangway/gangway.yaml --watch
  kill -HUP $(pidof gangway)            # reload
`,
  check: `gangway check -c FILE

Validates a configuration file without starting anything: exit 0 and a one-line summary when
it is valid; exit 1 and one line per problem (file:line:column field: message) when not.

Examples:
  gangway check -c gangway.yaml
  gangway check -c gangway.yaml && systemctl reload gangway
`,
  doctor: `gangway doctor URL [--json] [--resolver IP[:PORT]]... [--control URL] [--attempts N] [--timeout DURATION]

Runs the troubleshooting ladder for URL and says whose side the trouble is on: the local
network, proxies and VPNs, DNS (the system resolver against --resolver), TCP to each address,
TLS, the HTTP answer with every hop's Proxy-Status, repeated attempts (transient or
persistent), the service's status page, and a control URL.

A URL without a scheme is tried with https:// first; when the server answers in plain HTTP
instead, doctor says so and goes on with http://. Of the answer's body it reads the first
16 KiB at most, so a stream or a long download does not hold it. Before each pause between
attempts it says how long it waits and why (what Retry-After asks, 5 s at most).

Options:
  --json                one JSON document: {verdict, summary, steps, hops, advice, …}
  --resolver IP[:PORT]  also ask this DNS resolver (repeatable)
  --control URL         a URL known to work, to tell your network from the service
  --attempts N          attempts before a failure counts as persistent (1–10, default 3)
  --timeout DURATION    per step (default 5s)

Verdicts and exit codes:
  ok 0 · transient 10 · service-side 20 · service-maintenance 21 · service-overloaded 22
  your-network 30 · your-dns 31 · your-proxy-or-vpn 32 · unknown 40 · usage error 2
An answer below 500 is ok (the service is up); the summary says what it means (404: no such page).

Proxies are read exactly as curl reads them: http_proxy in lowercase only (curl ignores
HTTP_PROXY, which a CGI program's request can set), https_proxy, all_proxy and no_proxy in
either case, lowercase first. Requests go through http:// and https:// proxies; a SOCKS
proxy (socks4/4a/5/5h) is checked for a connection, then the service is checked directly.
Behind an HTTP proxy the TLS rung shakes hands inside the proxy's CONNECT tunnel, so it sees
the certificate your programs see: one that differs from the service's own is a proxy that
intercepts TLS, and a proxy refusing the way (403) is named as the cause.
Colour on a terminal; NO_COLOR turns it off.

Examples:
  gangway doctor https://music.example.com/api/tracks
  gangway doctor music.example.com --resolver 1.1.1.1 --resolver 9.9.9.9
  gangway doctor https://music.example.com/ --control https://example.org/ --json | jq .verdict
`,
  demo: `gangway demo

Starts three replicas of a small streaming service (catalogue API, generated audio with
Range and strong ETags, a web player) as child processes, Gangway in front of them on
examples/gangway.yaml, and an operator console with switches that kill, freeze, slow down,
corrupt, cut and overload one replica. Prints the URLs; Ctrl-C stops everything.
The player is also served over HTTPS with HTTP/2 on 127.0.0.1:8443, with a self-signed
certificate made for the run (curl -k, or accept the browser's warning).

Environment: GANGWAY_DEMO_PORTS=gateway,admin,console,replica1,replica2,replica3[,https]
when the defaults (8080,9901,9902,7001,7002,7003,8443) are taken.

Examples:
  gangway demo                                   # then open http://127.0.0.1:9902/
  curl --http2 -vk https://localhost:8443/api/tracks   # while it runs: HTTP/2 over TLS
  GANGWAY_DEMO_PORTS=18080,19901,19902,17001,17002,17003,18443 gangway demo
`,
  schema: `gangway schema

Prints the configuration's JSON Schema, generated from the same schema the gateway
validates with, for editors (YAML language server: # yaml-language-server: $schema=…).

Example:
  gangway schema > gangway.schema.json
`,
};

/** The options each command accepts (besides --help). */
export const COMMAND_OPTIONS: Record<string, readonly string[]> = {
  start: ['config', 'watch'],
  check: ['config'],
  doctor: ['json', 'resolver', 'control', 'attempts', 'timeout'],
  demo: [],
  schema: [],
  help: [],
};

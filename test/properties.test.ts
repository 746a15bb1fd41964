/**
 * Properties of the pure functions a hostile client or a misbehaving upstream feeds directly:
 * the path policy, the authority, Retry-After, the structured-field codec behind Proxy-Status,
 * and the configuration loader. Each property is checked on generated input (fast-check), so
 * the examples in the other tests are not the only ones that hold. A property that found a
 * real bug stays, marked `todo` with the counterexample, until the bug is fixed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isIPv6 } from 'node:net';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { normalizePath, DEFAULT_PATH_POLICY, type PathPolicy } from '../src/http/path.js';
import { hostFieldCount, parseAuthority } from '../src/http/host.js';
import { parseRetryAfter } from '../src/http/retry-after.js';
import { isToken, parseList, sfString, textOf } from '../src/http/structured-fields.js';
import { parseProxyStatus, serializeProxyStatus, type ProxyStatusMember } from '../src/faults/proxy-status.js';
import { ConfigError, formatPath } from '../src/config/load.js';
import { parseConfigText } from '../src/index.js';

fc.configureGlobal({ numRuns: 500 });

// ---------------------------------------------------------------------------------------------
// Generators and models
// ---------------------------------------------------------------------------------------------

const UNRESERVED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';
const unreservedChar = fc.constantFrom(...UNRESERVED);

/** Any string at all, lone surrogates included. */
const anyString = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string());

/** Paths assembled from the pieces the policy has an opinion about. */
const PATH_PIECES = [
  'a',
  'B',
  '~',
  '-',
  '_',
  '.',
  '..',
  '/',
  '//',
  ';',
  ';x',
  '=',
  ':',
  '@',
  '!',
  '%',
  '%4',
  '%2',
  '%g1',
  '%2e',
  '%2E',
  '%2f',
  '%2F',
  '%5c',
  '%5C',
  '\\',
  '%00',
  '%0A',
  '%7f',
  '%7e',
  '%7E',
  '%41',
  '%61',
  '%3b',
  '%3B',
  '%25',
  '%20',
  ' ',
  '#',
  '?',
  'é',
  '\u0000',
];
const pathish = fc.array(fc.constantFrom(...PATH_PIECES), { maxLength: 16 }).map((parts) => `/${parts.join('')}`);
const anyPath = fc.oneof(
  pathish,
  anyString,
  anyString.map((s) => `/${s}`),
);

/** A segment made only of unreserved characters, and not "." or "..". */
const plainSegment = fc
  .array(unreservedChar, { minLength: 1, maxLength: 8 })
  .map((cs) => cs.join(''))
  .filter((s) => s !== '.' && s !== '..');

const policies: PathPolicy[] = [
  DEFAULT_PATH_POLICY,
  { rejectDotSegments: true, rejectEncodedSlash: false },
  { rejectDotSegments: false, rejectEncodedSlash: true },
  { rejectDotSegments: true, rejectEncodedSlash: true },
];
const anyPolicy = fc.constantFrom(...policies);

const hex2 = (code: number) => code.toString(16).toUpperCase().padStart(2, '0');

/** RFC 3986 §5.2.4, remove_dot_segments, on a path string, as written in the RFC. */
function removeDotSegments(path: string): string {
  let input = path;
  let output = '';
  while (input !== '') {
    if (input.startsWith('../')) input = input.slice(3);
    else if (input.startsWith('./')) input = input.slice(2);
    else if (input.startsWith('/./')) input = input.slice(2);
    else if (input === '/.') input = '/';
    else if (input.startsWith('/../')) {
      input = input.slice(3);
      output = output.slice(0, Math.max(0, output.lastIndexOf('/')));
    } else if (input === '/..') {
      input = '/';
      output = output.slice(0, Math.max(0, output.lastIndexOf('/')));
    } else if (input === '.' || input === '..') input = '';
    else {
      const next = input.indexOf('/', input.startsWith('/') ? 1 : 0);
      const end = next < 0 ? input.length : next;
      output += input.slice(0, end);
      input = input.slice(end);
    }
  }
  return output;
}

/**
 * How a permissive origin might read a path: every %XX decoded, "\" and a decoded "/" taken as
 * separators, ";params" stripped from every segment, then dot segments removed. With
 * `mergeRawSlashes`, runs of raw "/" are merged first, as the gateway's policy does by design
 * (docs/security.md: "merged to /, as nginx does").
 */
function lenientView(path: string, mergeRawSlashes: boolean): string {
  const raw = mergeRawSlashes ? path.replace(/\/{2,}/g, '/') : path;
  const decoded = raw.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
  const segments = decoded.split(/[/\\]/).map((s) => s.split(';')[0]!);
  return removeDotSegments(segments.join('/'));
}

const firstSegment = (path: string): string => path.split('/')[1] ?? '';
/** A segment a route prefix could name: pchar without "%" and ";". */
const routable = (segment: string): boolean => /^[A-Za-z0-9._~!$&'()*+,=:@-]+$/.test(segment);

/**
 * Whether a prefix route the gateway chose for a path is what the origin sees: whenever the
 * gateway's first segment could be named by a route, the origin's first segment is the same.
 */
function sameRoute(gateway: string, origin: string): boolean {
  const g = firstSegment(gateway);
  const o = firstSegment(origin);
  // A first segment no prefix could name ("x%3B..", "a;b") is routed by a catch-all route only,
  // which does not care what the origin makes of it; a routable one must mean the same to both.
  return !routable(g) || g === o;
}

/** The same path with every percent-encoding's hex digits in the other case, at random. */
const withHexCaseFlipped = (path: string, flips: boolean[]): string => {
  let k = 0;
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) =>
    flips[k++ % Math.max(1, flips.length)] ? `%${h.toLowerCase()}` : `%${h.toUpperCase()}`,
  );
};

// ---------------------------------------------------------------------------------------------
// The path policy
// ---------------------------------------------------------------------------------------------

test('normalizePath never throws, and always says why it refuses', () => {
  fc.assert(
    fc.property(anyPath, anyPolicy, (p, policy) => {
      const r = normalizePath(p, policy);
      if (r.ok) assert.equal(typeof r.path, 'string', 'an accepted path is a string');
      else assert.ok(r.reason.length > 0, `a refusal of ${JSON.stringify(p)} has a reason`);
    }),
  );
});

test(
  'an accepted path is in normal form: rooted, no empty or dot segment, only ' +
    'upper-case encodings of reserved characters',
  () => {
    fc.assert(
      fc.property(anyPath, anyPolicy, (p, policy) => {
        const r = normalizePath(p, policy);
        if (!r.ok) return;
        const q = r.path;
        const why = `${JSON.stringify(p)} → ${JSON.stringify(q)}`;
        assert.ok(q.startsWith('/'), `starts with "/": ${why}`);
        assert.ok(!q.includes('//'), `no empty segment: ${why}`);
        assert.ok(!q.includes('\\'), `no backslash: ${why}`);
        assert.ok(/^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/.test(q), `only RFC 3986 path characters: ${why}`);
        assert.ok(!/%(?![0-9A-F]{2})/.test(q), `every "%" is followed by two upper-case hex digits: ${why}`);
        assert.ok(
          !/%(4[1-9A-F]|5[0-9A]|6[1-9A-F]|7[0-9A]|3[0-9]|2D|2E|5F|7E)/.test(q),
          `no encoded unreserved: ${why}`,
        );
        assert.ok(!/%(0[0-9A-F]|1[0-9A-F]|7F|5C)/.test(q), `no encoded control character or backslash: ${why}`);
        for (const s of q.split('/').slice(1)) {
          assert.ok(s !== '.' && s !== '..', `no dot segment: ${why}`);
          for (const part of s.split('%2F')) {
            const bare = part.split(';')[0];
            assert.ok(bare !== '.' && bare !== '..', `no dot segment behind ";" or "%2F": ${why}`);
          }
        }
        if (policy.rejectEncodedSlash)
          assert.ok(!q.includes('%2F'), `no encoded slash under the strict policy: ${why}`);
        assert.ok(q.length <= p.length, `normalising never lengthens a path: ${why}`);
      }),
    );
  },
);

test('normalizePath is idempotent: a normal form is its own normal form', () => {
  fc.assert(
    fc.property(anyPath, anyPolicy, (p, policy) => {
      const r = normalizePath(p, policy);
      if (!r.ok) return;
      assert.deepEqual(normalizePath(r.path, policy), r, `normalising ${JSON.stringify(r.path)} again changes it`);
    }),
  );
});

test('a path of plain segments comes back unchanged, with or without a trailing slash', () => {
  fc.assert(
    fc.property(fc.array(plainSegment, { maxLength: 8 }), fc.boolean(), anyPolicy, (segments, slash, policy) => {
      const p = `/${segments.join('/')}${slash && segments.length > 0 ? '/' : ''}`;
      assert.deepEqual(normalizePath(p, policy), { ok: true, path: p }, `${JSON.stringify(p)} is already normal`);
    }),
  );
});

test('encoding unreserved characters, in either hex case, does not change the normal form', () => {
  fc.assert(
    fc.property(
      fc.array(plainSegment, { minLength: 1, maxLength: 6 }),
      fc.infiniteStream(fc.constantFrom('keep', 'upper', 'lower')),
      (segments, how) => {
        const plain = `/${segments.join('/')}`;
        const encoded = [...plain]
          .map((c) => {
            if (c === '/') return c;
            const h = hex2(c.charCodeAt(0));
            const choice = how.next().value;
            return choice === 'keep' ? c : `%${choice === 'upper' ? h : h.toLowerCase()}`;
          })
          .join('');
        assert.deepEqual(normalizePath(encoded), { ok: true, path: plain }, `${JSON.stringify(encoded)} decodes`);
      },
    ),
  );
});

test('the case of percent-encoding hex digits never changes the outcome', () => {
  fc.assert(
    fc.property(anyPath, fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), anyPolicy, (p, flips, policy) => {
      const q = withHexCaseFlipped(p, flips);
      const a = normalizePath(p, policy);
      const b = normalizePath(q, policy);
      assert.equal(b.ok, a.ok, `${JSON.stringify(p)} and ${JSON.stringify(q)} are both accepted or both refused`);
      if (a.ok && b.ok) assert.equal(b.path, a.path, `${JSON.stringify(p)} and ${JSON.stringify(q)} normalise alike`);
    }),
  );
});

test('characters outside RFC 3986, backslashes and encoded backslashes or control characters are refused', () => {
  const bad = fc.oneof(
    fc.constantFrom('\\', '%5C', '%5c', '%00', '%0a', '%1F', '%7F', ' ', '#', '"', '<', '>', '^', '`', '{', '|', '}'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => c.charCodeAt(0) >= 0x80),
  );
  fc.assert(
    fc.property(pathish, bad, fc.nat(), anyPolicy, (p, c, at, policy) => {
      const k = 1 + (at % p.length);
      const q = `${p.slice(0, k)}${c}${p.slice(k)}`;
      assert.equal(normalizePath(q, policy).ok, false, `${JSON.stringify(q)} is refused`);
    }),
  );
});

test('a "%" not followed by two hex digits is refused (RFC 3986 §2.1)', () => {
  fc.assert(
    fc.property(pathish, anyPolicy, (p, policy) => {
      fc.pre(/%(?![0-9A-Fa-f]{2})/.test(p));
      const r = normalizePath(p, policy);
      assert.equal(r.ok, false, `${JSON.stringify(p)} is refused, not read as ${JSON.stringify(r)}`);
    }),
  );
});

test('the stricter switches only refuse more: what they accept, the default policy accepts alike', () => {
  fc.assert(
    fc.property(anyPath, anyPolicy, (p, policy) => {
      const strict = normalizePath(p, policy);
      if (!strict.ok) return;
      assert.deepEqual(normalizePath(p), strict, `${JSON.stringify(p)} normalises the same under the default policy`);
    }),
  );
});

const ESCAPE_SEGMENTS = ['.', '..', '%2e', '%2E', '%2e%2e', 'a', 'b', '%2F', '%5C', '\\', ';', ';x', '', '%00', '%7e'];
const underPublic = (alphabet: string[]) =>
  fc.array(fc.constantFrom(...alphabet), { maxLength: 8 }).map((segments) => `/public/${segments.join('/')}`);

/**
 * The original path is never forwarded (the normal form is), so this is about the client's
 * intent, not about escaping a route; two documented choices keep it from holding for every
 * path: raw empty segments are merged ("/public//.." routes "/", RFC 3986 alone says
 * "/public/"), and "%2F" is data, so "/public/%2F/../.." routes "/" while an origin decoding
 * "%2F" would resolve it to "/public/". The model merges raw slashes, and "%2F" is left out.
 */
test('a lenient origin reading the original path routes it as the gateway did', () => {
  fc.assert(
    fc.property(underPublic(ESCAPE_SEGMENTS.filter((s) => s !== '%2F')), (p) => {
      const r = normalizePath(p);
      if (!r.ok) return;
      const origin = lenientView(p, true);
      assert.ok(
        sameRoute(r.path, origin),
        `${JSON.stringify(p)}: the gateway routes ${JSON.stringify(r.path)}, the origin sees ${JSON.stringify(origin)}`,
      );
    }),
    { numRuns: 2000 },
  );
});

test('a lenient origin reading the forwarded path sees the route the gateway chose', () => {
  fc.assert(
    fc.property(underPublic(ESCAPE_SEGMENTS), fc.boolean(), (p, merge) => {
      const r = normalizePath(p);
      if (!r.ok) return;
      const origin = lenientView(r.path, merge);
      assert.ok(
        sameRoute(r.path, origin),
        `${JSON.stringify(p)}: the gateway routes and forwards ${JSON.stringify(r.path)}, the origin sees ${JSON.stringify(origin)}`,
      );
    }),
    { numRuns: 2000 },
  );
});

test('an encoded ";" cannot hide a dot segment from the router either', () => {
  fc.assert(
    fc.property(
      underPublic([...ESCAPE_SEGMENTS, '..%3B', '.%3Bx', '%2e%2e%3b', 'x%3B..']),
      fc.boolean(),
      (p, merge) => {
        const r = normalizePath(p);
        if (!r.ok) return;
        const origin = lenientView(r.path, merge);
        assert.ok(
          sameRoute(r.path, origin),
          `${JSON.stringify(p)}: the gateway forwards ${JSON.stringify(r.path)}, the origin sees ${JSON.stringify(origin)}`,
        );
      },
    ),
    { numRuns: 2000 },
  );
});

// ---------------------------------------------------------------------------------------------
// The authority
// ---------------------------------------------------------------------------------------------

const NAME_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._';
/** A name of labels (no empty label: ".", "..", "a..b" are refused), with an optional trailing dot. */
const hostName = fc
  .tuple(
    fc.array(
      fc
        .array(fc.constantFrom(...[...NAME_CHARS].filter((c) => c !== '.')), { minLength: 1, maxLength: 12 })
        .map((cs) => cs.join('')),
      { minLength: 1, maxLength: 4 },
    ),
    fc.boolean(),
  )
  .map(([labels, root]) => labels.join('.') + (root ? '.' : ''));
const port = fc.integer({ min: 0, max: 65535 });
const authorityish = fc
  .array(
    fc.constantFrom('a', 'Z', '0', '9', '.', '-', '_', ':', '[', ']', '::1', 'fe80::', '@', '/', '%', ' ', ',', 'é'),
    {
      maxLength: 12,
    },
  )
  .map((parts) => parts.join(''));

test('parseAuthority never throws; what it accepts is a lower-case name or a bracketed IPv6, and a port from 0 to 65535', () => {
  fc.assert(
    fc.property(fc.oneof(anyString, authorityish), (value) => {
      const r = parseAuthority(value);
      if (!r.ok) {
        assert.ok(r.reason.length > 0, `a refusal of ${JSON.stringify(value)} has a reason`);
        return;
      }
      const why = `${JSON.stringify(value)} → ${JSON.stringify(r)}`;
      assert.equal(r.host, r.host.toLowerCase(), `the host is lower-case: ${why}`);
      const bracketed = /^\[(.*)\]$/.exec(r.host);
      assert.ok(
        /^[a-z0-9._-]*$/.test(r.host) || (bracketed !== null && isIPv6(bracketed[1]!)),
        `a name of [a-z0-9._-] or a bracketed IPv6: ${why}`,
      );
      if (r.port !== undefined) {
        assert.ok(Number.isInteger(r.port) && r.port >= 0 && r.port <= 65535, `a port from 0 to 65535: ${why}`);
      }
    }),
  );
});

test('a name with userinfo, a path, a space, a comma, a query or a fragment anywhere is refused', () => {
  fc.assert(
    fc.property(
      hostName,
      fc.option(port, { nil: undefined }),
      fc.constantFrom(' ', '@', '/', '\\', '?', '#', ','),
      fc.nat(),
      (name, p, c, at) => {
        const authority = p === undefined ? name : `${name}:${p}`;
        const k = at % (authority.length + 1);
        const value = `${authority.slice(0, k)}${c}${authority.slice(k)}`;
        assert.equal(parseAuthority(value).ok, false, `${JSON.stringify(value)} is refused`);
      },
    ),
  );
});

test('a name and a port come back as they were, the name lower-cased', () => {
  fc.assert(
    fc.property(hostName, port, (name, p) => {
      assert.deepEqual(parseAuthority(`${name}:${p}`), { ok: true, host: name.toLowerCase(), port: p }, `${name}:${p}`);
      assert.deepEqual(parseAuthority(name), { ok: true, host: name.toLowerCase(), port: undefined }, name);
      assert.deepEqual(parseAuthority(`${name}:`), { ok: true, host: name.toLowerCase(), port: undefined }, `${name}:`);
    }),
  );
});

test('a bracketed IPv6 address and a port come back as they were, the address lower-cased', () => {
  fc.assert(
    fc.property(fc.ipV6(), fc.option(port, { nil: undefined }), fc.boolean(), (ip, p, upper) => {
      const written = upper ? ip.toUpperCase() : ip;
      const value = p === undefined ? `[${written}]` : `[${written}]:${p}`;
      assert.deepEqual(parseAuthority(value), { ok: true, host: `[${ip.toLowerCase()}]`, port: p }, value);
    }),
  );
});

test('a port above 65535 or of more than five digits is refused', () => {
  fc.assert(
    fc.property(
      hostName,
      fc.oneof(fc.integer({ min: 65536, max: 99999 }).map(String), fc.stringMatching(/^\d{6,9}$/)),
      (name, digits) => {
        assert.equal(parseAuthority(`${name}:${digits}`).ok, false, `${name}:${digits} is refused`);
      },
    ),
  );
});

test('hostFieldCount counts the Host fields of a raw header list, in any case, and never throws', () => {
  const fieldName = fc.oneof(
    fc.constantFrom('Host', 'host', 'HOST', 'hOsT', 'Hosts', 'X-Host', 'Content-Type', 'ho st', 'HOſT'),
    fc.string({ maxLength: 6 }),
  );
  const fieldValue = fc.oneof(fc.constantFrom('host', 'Host'), fc.string({ maxLength: 6 }));
  fc.assert(
    fc.property(fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 10 }), fc.boolean(), (fields, odd) => {
      const raw = fields.flat();
      if (odd) raw.push('Host');
      const expected = fields.filter(([n]) => /^host$/i.test(n)).length + (odd ? 1 : 0);
      assert.equal(hostFieldCount(raw), expected, `${JSON.stringify(raw)} has ${expected} Host fields`);
    }),
  );
});

// ---------------------------------------------------------------------------------------------
// Retry-After
// ---------------------------------------------------------------------------------------------

const NOW = Date.UTC(2030, 5, 15, 12, 0, 0, 250);

test('parseRetryAfter never throws, and gives undefined or a non-negative number of seconds', () => {
  const headerish = fc
    .array(fc.constantFrom('Mon', 'Sun,', ' ', '1', '9', '-', '.', 'GMT', 'Jan', '2030', '12:00:00', 'e3', ','), {
      maxLength: 8,
    })
    .map((parts) => parts.join(''));
  fc.assert(
    fc.property(fc.oneof(anyString, headerish), fc.integer({ min: 0, max: 4e12 }), (value, now) => {
      const s = parseRetryAfter(value, now);
      assert.ok(
        s === undefined || (Number.isInteger(s) && s >= 0),
        `${JSON.stringify(value)} gives ${s}, not undefined or whole seconds`,
      );
    }),
  );
  assert.equal(parseRetryAfter(undefined), undefined, 'no field, no delay');
});

test('a number of seconds reads as that number (a year at most), whitespace around it or not', () => {
  const YEAR = 365 * 86_400;
  fc.assert(
    fc.property(fc.stringMatching(/^\d{1,15}$/), fc.constantFrom('', ' ', '\t'), (digits, ws) => {
      const expected = Math.min(Number(digits), YEAR);
      assert.equal(parseRetryAfter(`${ws}${digits}${ws}`, NOW), expected, `${JSON.stringify(digits)} seconds`);
    }),
  );
});

test('any string of digits, however long, reads as a finite whole number of seconds', () => {
  fc.assert(
    fc.property(
      fc
        .integer({ min: 1, max: 400 })
        .chain((n) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: n, maxLength: n })),
      (digits) => {
        const s = parseRetryAfter(digits, NOW);
        assert.ok(Number.isSafeInteger(s), `${digits} gives ${s}, not a safe whole number`);
      },
    ),
  );
});

test('an IMF-fixdate in the future reads as the seconds until then; one in the past as 0', () => {
  fc.assert(
    fc.property(fc.integer({ min: -1e10, max: 1e10 }), (deltaMs) => {
      const date = new Date(NOW + deltaMs).toUTCString();
      const s = parseRetryAfter(date, NOW);
      const expected = Math.max(0, deltaMs / 1000);
      assert.ok(s !== undefined && Math.abs(s - expected) <= 1, `${date} is ${expected} s away, not ${s}`);
    }),
  );
});

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');
/** asctime-date (RFC 9110 §5.6.7): "Sun Nov  6 08:49:37 1994", always in GMT. */
const asctime = (d: Date) =>
  `${DAYS[d.getUTCDay()]!.slice(0, 3)} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ` +
  `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${d.getUTCFullYear()}`;

test('an asctime date in the future reads as the seconds until then, whatever the local time zone (RFC 9110 §5.6.7)', () => {
  const zone = process.env.TZ;
  try {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e9 }),
        fc.constantFrom('UTC', 'America/New_York', 'Asia/Kolkata', 'Pacific/Auckland'),
        (deltaMs, tz) => {
          process.env.TZ = tz;
          const date = asctime(new Date(NOW + deltaMs));
          const s = parseRetryAfter(date, NOW);
          assert.ok(
            s !== undefined && Math.abs(s - deltaMs / 1000) <= 1,
            `${date} (TZ=${tz}) is ${deltaMs / 1000} s away, not ${s}`,
          );
        },
      ),
      { numRuns: 200 },
    );
  } finally {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  }
});

// ---------------------------------------------------------------------------------------------
// Structured fields and Proxy-Status
// ---------------------------------------------------------------------------------------------

const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, '?');
const token = fc.stringMatching(/^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]{0,15}$/);
const sfKey = fc.stringMatching(/^[a-z*][a-z0-9_\-.*]{0,10}$/);
const sfish = fc
  .array(
    fc.constantFrom(
      'a',
      'tok',
      '*',
      '"',
      '\\',
      '"x"',
      ';',
      '=',
      ',',
      ' ',
      '\t',
      ':',
      'aGk=',
      '?1',
      '?0',
      '?',
      '-',
      '1',
      '.',
      '5',
      '(',
      ')',
      'é',
      '\n',
    ),
    { maxLength: 16 },
  )
  .map((parts) => parts.join(''));

test('parseList never throws on any string, and parseProxyStatus keeps only members with a name', () => {
  fc.assert(
    fc.property(fc.oneof(anyString, sfish), (value) => {
      const list = parseList(value);
      assert.ok(
        Array.isArray(list.members) && typeof list.complete === 'boolean',
        `a list from ${JSON.stringify(value)}`,
      );
      for (const m of parseProxyStatus(value)) {
        assert.ok(typeof m.proxy === 'string' && m.proxy !== '', `a named member from ${JSON.stringify(value)}`);
      }
    }),
  );
});

test('sfString writes any string as one sf-string that reads back, non-printable characters as "?"', () => {
  fc.assert(
    fc.property(anyString, (x) => {
      const list = parseList(sfString(x));
      assert.equal(list.complete, true, `${sfString(x)} parses to its end`);
      assert.equal(list.members.length, 1, `${sfString(x)} is one member`);
      const item = list.members[0]!;
      assert.deepEqual(item.value, { type: 'string', value: printable(x) }, `${JSON.stringify(x)} reads back`);
      assert.equal(item.params.size, 0, `${sfString(x)} has no parameters`);
    }),
  );
});

test('a token reads back as that token, and isToken agrees with the parser', () => {
  fc.assert(
    fc.property(fc.oneof(token, anyString), (t) => {
      const list = parseList(t);
      const whole = list.complete && list.members.length === 1 && list.members[0]!.params.size === 0;
      const asToken = whole && list.members[0]!.value.type === 'token' && textOf(list.members[0]!.value) === t;
      assert.equal(asToken, isToken(t), `${JSON.stringify(t)}: isToken says ${isToken(t)}, the parser ${asToken}`);
    }),
  );
});

test('integers, booleans, byte sequences and parameters read back as written', () => {
  const param = fc.oneof(
    token.map((t) => [t, t] as const),
    fc.string({ unit: 'binary' }).map((x) => [sfString(x), printable(x)] as const),
  );
  fc.assert(
    fc.property(
      fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }),
      fc.boolean(),
      fc.uint8Array({ maxLength: 24 }),
      sfKey,
      param,
      (n, b, bytes, key, [written, read]) => {
        const field = `${n};${key}=${written}, ?${b ? 1 : 0}, :${Buffer.from(bytes).toString('base64')}:`;
        const list = parseList(field);
        assert.equal(list.complete, true, `${field} parses to its end`);
        const [int, bool, bin] = list.members;
        assert.deepEqual(int?.value, { type: 'integer', value: n }, `${field}: the integer`);
        assert.equal(textOf(int?.params.get(key)), read, `${field}: the parameter`);
        assert.deepEqual(bool?.value, { type: 'boolean', value: b }, `${field}: the boolean`);
        assert.deepEqual(bin?.value, { type: 'binary', value: bytes }, `${field}: the bytes`);
      },
    ),
  );
});

const member: fc.Arbitrary<ProxyStatusMember> = fc.record(
  {
    proxy: fc.oneof(token, fc.string({ unit: 'binary', minLength: 1 })),
    error: fc.oneof(token, fc.string({ unit: 'binary' })),
    receivedStatus: fc.integer({ min: 100, max: 599 }),
    nextHop: fc.string({ unit: 'binary' }),
    details: fc.string({ unit: 'binary' }),
  },
  { requiredKeys: ['proxy'] },
);

/** What a member looks like after a trip through the field: empty fields left out, text made printable. */
function expectedBack(m: ProxyStatusMember): ProxyStatusMember {
  const out: ProxyStatusMember = { proxy: printable(m.proxy) };
  if (m.error) out.error = printable(m.error);
  if (m.receivedStatus !== undefined) out.receivedStatus = m.receivedStatus;
  if (m.nextHop) out.nextHop = printable(m.nextHop);
  if (m.details) out.details = printable(m.details);
  return out;
}

test('a Proxy-Status member reads back as it was written', () => {
  fc.assert(
    fc.property(member, (m) => {
      const field = serializeProxyStatus(m);
      assert.deepEqual(parseProxyStatus(field), [expectedBack(m)], `${JSON.stringify(m)} written as ${field}`);
      assert.equal(parseList(field).complete, true, `${field} is a valid field`);
    }),
  );
});

test('several Proxy-Status members joined by ", " read back all of them, in order', () => {
  fc.assert(
    fc.property(fc.array(member, { minLength: 1, maxLength: 5 }), (ms) => {
      const field = ms.map(serializeProxyStatus).join(', ');
      assert.deepEqual(parseProxyStatus(field), ms.map(expectedBack), `written as ${field}`);
    }),
  );
});

test('whatever follows a list of members never changes how they read', () => {
  fc.assert(
    fc.property(fc.array(member, { minLength: 1, maxLength: 4 }), sfish, (ms, tail) => {
      const field = `${ms.map(serializeProxyStatus).join(', ')}, ${tail}`;
      const back = parseProxyStatus(field);
      assert.deepEqual(back.slice(0, ms.length), ms.map(expectedBack), `the first members of ${field}`);
    }),
  );
});

// ---------------------------------------------------------------------------------------------
// The configuration loader
// ---------------------------------------------------------------------------------------------

const MINIMAL = `listen: "127.0.0.1:8080"
admin: "127.0.0.1:9901"
upstreams:
  music:
    hosts: ["127.0.0.1:7001", "127.0.0.1:7002"]
    timeouts: { connect: "1s", response: "10s", idle: "30s" }
routes:
  - match: { path: "/api" }
    upstream: music
`;
const NO_ENV = {};

/** The problems of a configuration, or [] when it loads; anything but a ConfigError fails the property. */
function problemsOf(text: string): ConfigError['problems'] {
  try {
    parseConfigText(text, 'gangway.yaml', NO_ENV);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, `${JSON.stringify(text)} threw ${String(err)}, not a ConfigError`);
    return err.problems;
  }
}

function checkProblems(text: string, problems: ConfigError['problems']): void {
  const lines = text.split(/\r\n|\r|\n/).length;
  for (const p of problems) {
    const why = `${JSON.stringify(text)}: ${JSON.stringify(p)}`;
    assert.equal(p.file, 'gangway.yaml', `the problem names the file: ${why}`);
    assert.ok(typeof p.message === 'string' && p.message.trim() !== '', `the problem has a message: ${why}`);
    assert.equal(typeof p.path, 'string', `the problem has a path: ${why}`);
    if (p.line !== undefined) {
      assert.ok(Number.isInteger(p.line) && p.line >= 1 && p.line <= lines + 1, `the line is in the file: ${why}`);
      assert.ok(Number.isInteger(p.column) && p.column! >= 1, `the column is a column: ${why}`);
    }
  }
}

const yamlish = fc
  .array(
    fc.constantFrom(
      'a',
      'listen',
      'routes',
      ': ',
      ':',
      '\n',
      '  ',
      '- ',
      '[',
      ']',
      '{',
      '}',
      ', ',
      '"',
      "'",
      '# c',
      '!!str ',
      '!!binary ',
      '!!int ',
      '!tag ',
      '<<: ',
      '? ',
      '|',
      '>',
      '---\n',
      '...\n',
      '%YAML 1.2\n',
      '1',
      '1s',
      '~',
      'null',
      'true',
      '&x ',
      '*x',
      '\t',
    ),
    { maxLength: 24 },
  )
  .map((parts) => parts.join(''));

test('parseConfigText throws nothing but a ConfigError, with located, explained problems, for any text', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        anyString,
        yamlish.filter((t) => !t.includes('*x')),
      ),
      (text) => {
        checkProblems(text, problemsOf(text));
      },
    ),
    { numRuns: 400 },
  );
});

test('parseConfigText throws nothing but a ConfigError for any JSON value', () => {
  fc.assert(
    fc.property(fc.oneof(fc.anything(), fc.object(), fc.jsonValue()), (value) => {
      const text = JSON.stringify(value) ?? 'null';
      checkProblems(text, problemsOf(text));
    }),
    { numRuns: 300 },
  );
});

test('anchors and aliases, however many or unresolved, are a ConfigError too', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        yamlish,
        fc.integer({ min: 1, max: 300 }).map((n) => `a: &x [1, 2, 3]\nb: [${Array(n).fill('*x').join(', ')}]\n`),
      ),
      (text) => {
        checkProblems(text, problemsOf(text));
      },
    ),
    { numRuns: 300 },
  );
});

type Key = string | number;

/** Every path to a value in a parsed document, the root's children first. */
function pathsOf(value: unknown, prefix: Key[] = []): Key[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => [[...prefix, i], ...pathsOf(v, [...prefix, i])]);
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...pathsOf(v, [...prefix, k])]);
  }
  return [];
}

const minimalDoc = parseYaml(MINIMAL) as Record<string, unknown>;
const minimalPaths = pathsOf(minimalDoc);

/** A copy of `doc` with the value at `path` replaced, deleted (`remove`), or given an extra field. */
function mutated(doc: unknown, path: Key[], change: { kind: 'replace' | 'remove' | 'add'; value: unknown }): unknown {
  const copy = structuredClone(doc) as Record<Key, unknown>;
  let parent: Record<Key, unknown> = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<Key, unknown>;
  const last = path[path.length - 1]!;
  if (change.kind === 'replace') parent[last] = change.value;
  else if (change.kind === 'remove') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else {
    const target = parent[last];
    if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
      (target as Record<string, unknown>).zzUnknown = change.value;
    } else parent[last] = change.value;
  }
  return copy;
}

/** Whether one formatted field path is the other, or lies beneath it. */
const within = (inner: string, outer: string): boolean =>
  outer === '' || inner === outer || inner.startsWith(`${outer}.`) || inner.startsWith(`${outer}[`);

/**
 * Whether a problem at `problem` may come from a change at `changed`: at the field, beneath it
 * (a value replaced by a bad object) or above it (a required field removed). The one reference
 * across the document: a route names an upstream, so a change under `upstreams` may surface
 * at `routes[i].upstream`.
 */
const related = (problem: string, changed: string): boolean =>
  within(problem, changed) ||
  within(changed, problem) ||
  (/^routes\[\d+\]\.upstream$/.test(problem) && within(changed, 'upstreams'));

test('a change to one field of a valid configuration is reported at that field, beneath it or above it', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...minimalPaths),
      fc.constantFrom<'replace' | 'remove' | 'add'>('replace', 'remove', 'add'),
      fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.constantFrom('', '0', 'x', '1s', '0.0.0.0:80', -1, 65536, null, [], {}),
      ),
      fc.boolean(),
      (path, kind, value, asYaml) => {
        const doc = mutated(minimalDoc, path, { kind, value });
        const text = asYaml ? stringifyYaml(doc) : JSON.stringify(doc, null, 2);
        const problems = problemsOf(text);
        checkProblems(text, problems);
        const changed = formatPath(path);
        for (const p of problems) {
          assert.ok(
            related(p.path, changed),
            `${kind} ${changed} with ${JSON.stringify(value)}: the problem "${p.path}: ${p.message}" is elsewhere`,
          );
        }
      },
    ),
    { numRuns: 400 },
  );
});

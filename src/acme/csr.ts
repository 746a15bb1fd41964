/**
 * The two pieces of X.509 an ACME client has to make itself, in DER: the certificate signing
 * request sent to finalize an order (PKCS#10, RFC 2986, the names as a subjectAltName in an
 * extensionRequest, as RFC 8555 §7.4 asks), and the self-signed certificate that answers a
 * TLS-ALPN-01 challenge (RFC 8737 §3: the name as its only SAN, and a critical
 * id-pe-acmeIdentifier extension holding the SHA-256 of the key authorization) — and, made the
 * same way, a self-signed certificate for local use (the demo's HTTPS listener). Keys are
 * ECDSA P-256 and signatures ecdsa-with-SHA256, both from node:crypto.
 */
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString,
  booleanTrue,
  explicit,
  implicitPrimitive,
  integer,
  octetString,
  oid,
  sequence,
  set,
  time,
  utf8String,
} from './der.js';

const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));
const COMMON_NAME = '2.5.4.3';
const SUBJECT_ALT_NAME = '2.5.29.17';
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
/** id-pe-acmeIdentifier (RFC 8737 §6.1). */
const ACME_IDENTIFIER = '1.3.6.1.5.5.7.1.31';

/** A fresh ECDSA P-256 key, the kind every ACME CA accepts and TLS clients handle fastest. */
export function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

const nameOf = (commonName: string): Buffer => sequence(set(sequence(oid(COMMON_NAME), utf8String(commonName))));

/** A DNS name as dNSName [2]; an IPv4 or IPv6 address as iPAddress [7] (its 4 or 16 bytes). */
function generalName(name: string): Buffer {
  const family = isIP(name);
  if (family === 0) return implicitPrimitive(2, Buffer.from(name, 'ascii'));
  return implicitPrimitive(7, family === 4 ? Buffer.from(name.split('.').map(Number)) : ipv6Bytes(name));
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const left = groups(head);
  const right = address.includes('::') ? groups(tail) : [];
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = Buffer.alloc(16);
  for (const [i, g] of all.entries()) bytes.writeUInt16BE(g, i * 2);
  return bytes;
}

function subjectAltName(names: readonly string[]): Buffer {
  const general = names.map(generalName);
  return sequence(oid(SUBJECT_ALT_NAME), octetString(sequence(...general)));
}

const spki = (key: KeyObject): Buffer => createPublicKey(key).export({ type: 'spki', format: 'der' });

/** A PKCS#10 request for `names` (the first also as the subject's CN), signed with `key`; DER. */
export function certificateRequest(names: readonly string[], key: KeyObject): Buffer {
  const attributes = explicit(0, sequence(oid(EXTENSION_REQUEST), set(sequence(subjectAltName(names)))));
  const info = sequence(integer(0), nameOf(names[0]!), spki(key), attributes);
  return sequence(info, ECDSA_WITH_SHA256, bitString(sign('sha256', info, key)));
}

/**
 * The TLS-ALPN-01 certificate for `name` and a key authorization: self-signed with `key`,
 * valid a week around now (the CA only reads it during the validation).
 */
export function challengeCertificate(name: string, keyAuthorization: string, key: KeyObject): Buffer {
  const digest = createHash('sha256').update(keyAuthorization).digest();
  const proof = sequence(oid(ACME_IDENTIFIER), booleanTrue(), octetString(octetString(digest)));
  return selfSignedCertificate([name], key, 7, [proof]);
}

/**
 * A certificate for `names` signed by its own `key`, valid from a day ago for `days` days, with
 * the names as its subjectAltName and any further extensions given.
 */
export function selfSignedCertificate(
  names: readonly string[],
  key: KeyObject,
  days: number,
  extensions: readonly Buffer[] = [],
): Buffer {
  const now = Date.now();
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(serial),
    ECDSA_WITH_SHA256,
    nameOf(names[0]!),
    sequence(time(new Date(now - 86_400_000)), time(new Date(now + (days - 1) * 86_400_000))),
    nameOf(names[0]!),
    spki(key),
    explicit(3, sequence(subjectAltName(names), ...extensions)),
  );
  return sequence(tbs, ECDSA_WITH_SHA256, bitString(sign('sha256', tbs, key)));
}

/** DER to PEM with the given label. */
export function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

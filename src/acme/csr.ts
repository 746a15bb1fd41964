/**
 * The two pieces of X.509 an ACME client has to make itself, in DER: the certificate signing
 * request sent to finalize an order (PKCS#10, RFC 2986, the names as a subjectAltName in an
 * extensionRequest, as RFC 8555 §7.4 asks), and the self-signed certificate that answers a
 * TLS-ALPN-01 challenge (RFC 8737 §3: the name as its only SAN, and a critical
 * id-pe-acmeIdentifier extension holding the SHA-256 of the key authorization). Keys are
 * ECDSA P-256 and signatures ecdsa-with-SHA256, both from node:crypto.
 */
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
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

function subjectAltName(names: readonly string[]): Buffer {
  const general = names.map((n) => implicitPrimitive(2, Buffer.from(n, 'ascii')));
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
  const extensions = explicit(
    3,
    sequence(subjectAltName([name]), sequence(oid(ACME_IDENTIFIER), booleanTrue(), octetString(octetString(digest)))),
  );
  const now = Date.now();
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(serial),
    ECDSA_WITH_SHA256,
    nameOf(name),
    sequence(time(new Date(now - 86_400_000)), time(new Date(now + 6 * 86_400_000))),
    nameOf(name),
    spki(key),
    extensions,
  );
  return sequence(tbs, ECDSA_WITH_SHA256, bitString(sign('sha256', tbs, key)));
}

/** DER to PEM with the given label. */
export function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

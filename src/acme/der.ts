/**
 * Just enough ASN.1 DER to speak ACME without a JavaScript crypto library: an encoder for the
 * few types a certificate signing request and the TLS-ALPN-01 challenge certificate are made
 * of, and a reader that walks a certificate far enough to find its serial number and its
 * Authority Key Identifier (what ACME Renewal Information names a certificate by). node:crypto
 * does the keys and signatures; this file only lays out bytes (X.690 §8, §10).
 */

/** One element: tag, definite length (short or long form), content. */
export function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let head: Buffer;
  if (n < 0x80) head = Buffer.from([tag, n]);
  else {
    const bytes: number[] = [];
    for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
    head = Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([head, content]);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
export const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
export const octetString = (bytes: Buffer): Buffer => tlv(0x04, bytes);
export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));
export const booleanTrue = (): Buffer => Buffer.from([0x01, 0x01, 0xff]);
/** A BIT STRING of whole bytes (no unused bits), as signatures and keys are. */
export const bitString = (bytes: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
/** `[n] EXPLICIT`: a constructed context-specific wrapper. */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
/** `[n] IMPLICIT` of a primitive type (a dNSName in GeneralNames is `[2] IA5String`). */
export const implicitPrimitive = (n: number, bytes: Buffer): Buffer => tlv(0x80 | n, bytes);

/** A non-negative INTEGER from its big-endian magnitude (a 0 is prepended when the top bit is set). */
export function integer(value: number | Buffer): Buffer {
  let bytes = typeof value === 'number' ? Buffer.from([value]) : value;
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && (bytes[start + 1]! & 0x80) === 0) start++;
  bytes = bytes.subarray(start);
  if ((bytes[0]! & 0x80) !== 0) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

/** An OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes: number[] = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const base128: number[] = [part & 0x7f];
    for (let rest = Math.floor(part / 128); rest > 0; rest = Math.floor(rest / 128))
      base128.unshift(0x80 | (rest & 0x7f));
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime up to 2049, GeneralizedTime after (RFC 5280 §4.1.2.5), to the second. */
export function time(at: Date): Buffer {
  const iso = at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return at.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

/** An element as read: its tag and where its content lies in the buffer. */
export interface Element {
  tag: number;
  start: number;
  end: number;
}

/** The element at `offset`; throws on a length running past the buffer. */
export function readElement(der: Buffer, offset: number): Element {
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i]!;
    start += count;
  }
  if (start + length > der.length) throw new Error('DER element runs past its buffer');
  return { tag, start, end: start + length };
}

/** The elements directly inside a constructed element. */
export function children(der: Buffer, parent: Element): Element[] {
  const out: Element[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = readElement(der, at);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** id-ce-authorityKeyIdentifier's content bytes (the OID without its tag and length). */
const AUTHORITY_KEY_IDENTIFIER = oid('2.5.29.35').subarray(2);

/**
 * A certificate's serial number (the INTEGER's content bytes, leading zero kept) and its
 * Authority Key Identifier's keyIdentifier, when it carries one (RFC 5280 §4.2.1.1).
 */
export function certificateIdentity(der: Buffer): { serial: Buffer; authorityKeyId: Buffer | undefined } {
  const certificate = readElement(der, 0);
  const tbs = children(der, certificate)[0]!;
  const fields = children(der, tbs);
  // The version is an optional [0]; the serial number follows it.
  const serialAt = fields[0]!.tag === 0xa0 ? 1 : 0;
  const serialElement = fields[serialAt]!;
  const serial = der.subarray(serialElement.start, serialElement.end);
  let authorityKeyId: Buffer | undefined;
  const extensions = fields.find((f) => f.tag === 0xa3);
  if (extensions !== undefined) {
    for (const extension of children(der, children(der, extensions)[0]!)) {
      const parts = children(der, extension);
      const id = der.subarray(parts[0]!.start, parts[0]!.end);
      if (!id.equals(AUTHORITY_KEY_IDENTIFIER)) continue;
      const value = parts[parts.length - 1]!; // OCTET STRING holding AuthorityKeyIdentifier
      const aki = readElement(der, value.start);
      const keyId = children(der, aki).find((e) => e.tag === 0x80);
      if (keyId !== undefined) authorityKeyId = der.subarray(keyId.start, keyId.end);
    }
  }
  return { serial, authorityKeyId };
}

/**
 * The signed envelopes of ACME (RFC 8555 §6.2, RFC 7515): every POST to the CA is a flattened
 * JWS signed with the account key, ES256 over `protected.payload` with the signature in the
 * raw r‖s form JOSE uses (not DER). The account is named by its public key (`jwk`) until the
 * CA has given it a URL, by that URL (`kid`) afterwards; and the key authorization a challenge
 * answers with is the token joined to the key's RFC 7638 thumbprint.
 */
import { createHash, type KeyObject, sign } from 'node:crypto';

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** The account key's public half as a JWK, with only the members RFC 7638 requires for EC keys. */
export function publicJwk(key: KeyObject): { crv: string; kty: string; x: string; y: string } {
  const jwk = key.export({ format: 'jwk' });
  return { crv: jwk.crv!, kty: jwk.kty!, x: jwk.x!, y: jwk.y! };
}

/** RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace. */
export function thumbprint(key: KeyObject): string {
  const { crv, kty, x, y } = publicJwk(key);
  return b64url(createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest());
}

/** What a challenge's answer proves: the token bound to this account's key (RFC 8555 §8.1). */
export function keyAuthorization(token: string, key: KeyObject): string {
  return `${token}.${thumbprint(key)}`;
}

export interface JwsBody {
  protected: string;
  payload: string;
  signature: string;
}

/**
 * A flattened JWS for `url`. `payload` undefined is a POST-as-GET (empty payload, §6.3);
 * `kid` is the account URL once known, else the public key goes along as `jwk`.
 */
export function signRequest(
  key: KeyObject,
  url: string,
  nonce: string,
  payload: unknown,
  kid: string | undefined,
): JwsBody {
  const header =
    kid === undefined ? { alg: 'ES256', jwk: publicJwk(key), nonce, url } : { alg: 'ES256', kid, nonce, url };
  const protected64 = b64url(JSON.stringify(header));
  const payload64 = payload === undefined ? '' : b64url(JSON.stringify(payload));
  const signature = sign('sha256', Buffer.from(`${protected64}.${payload64}`), { key, dsaEncoding: 'ieee-p1363' });
  return { protected: protected64, payload: payload64, signature: b64url(signature) };
}

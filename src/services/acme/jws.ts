import {type KeyObject, createHash, createPrivateKey, createPublicKey, sign} from 'node:crypto'

/** A public key as a JSON Web Key (RFC 7517), only the members RFC 7638 hashes. */
export type Jwk = {kty: 'EC'; crv: string; x: string; y: string} | {kty: 'RSA'; e: string; n: string}

/** A flattened JWS (RFC 7515 §7.2.2), the body of every ACME POST. */
export interface FlattenedJws {
  protected: string
  payload: string
  signature: string
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url')

/** The public JWK of a private (or public) key, members in RFC 7638's lexical order. */
export function publicJwk(key: KeyObject): Jwk {
  const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({format: 'jwk'})
  if (jwk.kty === 'EC') return {crv: jwk.crv!, kty: 'EC', x: jwk.x!, y: jwk.y!}
  if (jwk.kty === 'RSA') return {e: jwk.e!, kty: 'RSA', n: jwk.n!}
  throw new Error(`Unsupported key type ${jwk.kty} for ACME (ECDSA P-256/P-384 or RSA only).`)
}

/** RFC 7638 thumbprint, base64url (what `keyAuthorization` and certbot's account ids use). */
export function jwkThumbprint(key: KeyObject): string {
  return b64url(createHash('sha256').update(JSON.stringify(publicJwk(key))).digest())
}

function algorithm(key: KeyObject): {alg: string; hash: string; ec: boolean} {
  if (key.asymmetricKeyType === 'rsa') return {alg: 'RS256', hash: 'sha256', ec: false}
  const curve = key.asymmetricKeyDetails?.namedCurve
  if (curve === 'prime256v1') return {alg: 'ES256', hash: 'sha256', ec: true}
  if (curve === 'secp384r1') return {alg: 'ES384', hash: 'sha384', ec: true}
  throw new Error(`Unsupported key for ACME signatures: ${key.asymmetricKeyType} ${curve ?? ''}.`)
}

/**
 * Signs `payload` (an object, or '' for POST-as-GET) for `url`. With `kid` the header names the
 * account (RFC 8555 §6.2); without it carries the key itself (`jwk`: new accounts, key change,
 * revocation with the certificate's key). `nonce` is omitted for the inner JWS of a key change.
 */
export function signJws(key: KeyObject, url: string, payload: unknown, options: {kid?: string; nonce?: string}): FlattenedJws {
  const {alg, hash, ec} = algorithm(key)
  const header = {alg, ...(options.kid ? {kid: options.kid} : {jwk: publicJwk(key)}), ...(options.nonce ? {nonce: options.nonce} : {}), url}
  const protectedB64 = b64url(JSON.stringify(header))
  const payloadB64 = payload === '' ? '' : b64url(JSON.stringify(payload))
  const signature = sign(hash, Buffer.from(`${protectedB64}.${payloadB64}`), ec ? {key, dsaEncoding: 'ieee-p1363'} : key)
  return {protected: protectedB64, payload: payloadB64, signature: b64url(signature)}
}

/** A private key from PEM, or from a JWK such as certbot's `private_key.json`. */
export function privateKeyFrom(material: string): KeyObject {
  const text = material.trim()
  if (text.startsWith('{')) return createPrivateKey({key: JSON.parse(text) as import('node:crypto').JsonWebKey, format: 'jwk'})
  return createPrivateKey(text)
}

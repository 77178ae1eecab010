import {X509Certificate, createHash, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, sign, type KeyObject} from 'node:crypto'
import {isIP} from 'node:net'
import {promisify} from 'node:util'

import * as der from './der.js'
import type {KeySpec} from './key-spec.js'

/*
 * Builds X.509 v3 certificates (RFC 5280) with Node's native crypto for keys and signatures and
 * der.ts for the encoding. @peculiar/x509 would do the same but costs ~250 ms to import on
 * this machine, most of `ssl init`'s time; parsing stays with Node's X509Certificate.
 */

const generate = promisify(generateKeyPair)

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  rsaSha256: '1.2.840.113549.1.1.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
}

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
const KEY_USAGE = {digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6}

/** Generates a private key (native OpenSSL) and returns it as PKCS#8 PEM. */
export async function generatePrivateKey(spec: KeySpec): Promise<string> {
  const {privateKey} = spec.type === 'ecdsa'
    ? await generate('ec', {namedCurve: spec.curve})
    : await generate('rsa', {modulusLength: spec.size, publicExponent: 0x10001})
  return privateKey.export({format: 'pem', type: 'pkcs8'}) as string
}

interface Signer {
  key: KeyObject
  hash: 'sha256' | 'sha384'
  algorithm: der.Der
}

function signerFor(keyPem: string): Signer {
  const key = createPrivateKey(keyPem)
  if (key.asymmetricKeyType === 'ec') {
    const p384 = key.asymmetricKeyDetails?.namedCurve === 'secp384r1'
    return {key, hash: p384 ? 'sha384' : 'sha256', algorithm: der.sequence(der.objectIdentifier(p384 ? OID.ecdsaSha384 : OID.ecdsaSha256))}
  }

  return {key, hash: 'sha256', algorithm: der.sequence(der.objectIdentifier(OID.rsaSha256), der.nullValue())}
}

function spkiOf(keyPem: string): Buffer {
  return createPublicKey(keyPem).export({format: 'der', type: 'spki'})
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spki: Buffer): Buffer {
  const [, publicKey] = der.children(der.readElement(spki).content)
  return createHash('sha1').update(publicKey.content.subarray(1)).digest()
}

function name(commonName: string, organization?: string): der.Der {
  const rdn = (oid: string, value: string) => der.set(der.sequence(der.objectIdentifier(oid), der.utf8String(value)))
  return der.sequence(...(organization ? [rdn(OID.organization, organization)] : []), rdn(OID.commonName, commonName))
}

function extension(oid: string, critical: boolean, value: der.Der): der.Der {
  return der.sequence(der.objectIdentifier(oid), ...(critical ? [der.boolean(true)] : []), der.octetString(value))
}

/** A positive 128-bit serial (RFC 5280 allows up to 20 octets). */
function serialNumber(): Buffer {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0] & 0x7F) | 0x01
  return bytes
}

interface TbsOptions {
  issuer: der.Der
  subject: der.Der
  notBefore: Date
  notAfter: Date
  spki: Buffer
  extensions: der.Der[]
  signer: Signer
}

function signCertificate(options: TbsOptions): string {
  const tbs = der.sequence(
    der.explicit(0, der.smallInteger(2)), // v3
    der.unsignedInteger(serialNumber()),
    options.signer.algorithm,
    options.issuer,
    der.sequence(der.time(options.notBefore), der.time(options.notAfter)),
    options.subject,
    options.spki,
    der.explicit(3, der.sequence(...options.extensions)),
  )
  const signature = sign(options.signer.hash, tbs, options.signer.key) // ECDSA: DER (r, s), as X.509 wants
  const certificate = der.sequence(tbs, options.signer.algorithm, der.bitString(signature))
  const base64 = certificate.toString('base64').replaceAll(/(.{64})/g, '$1\n').trimEnd()
  return `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`
}

export interface CaOptions {
  commonName: string
  notBefore: Date
  notAfter: Date
  keyPem: string
}

/** A self-signed CA certificate: CA:TRUE with pathlen 0, keyCertSign + cRLSign, critical. */
export function createCaCertificate(options: CaOptions): string {
  const spki = spkiOf(options.keyPem)
  const subject = name(options.commonName, 'mfc local CA')
  return signCertificate({
    issuer: subject,
    subject,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    spki,
    signer: signerFor(options.keyPem),
    extensions: [
      extension(OID.basicConstraints, true, der.sequence(der.boolean(true), der.smallInteger(0))),
      extension(OID.keyUsage, true, der.namedBits([KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign])),
      extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdentifier(spki))),
    ],
  })
}

export interface LeafOptions {
  domains: string[]
  notBefore: Date
  notAfter: Date
  /** The leaf's own key (PKCS#8 PEM). */
  keyPem: string
  caCertPem: string
  caKeyPem: string
}

function generalName(value: string): der.Der {
  const family = isIP(value)
  if (family === 0) return der.implicitPrimitive(2, Buffer.from(value, 'ascii')) // dNSName
  const bytes = Buffer.from(family === 4 ? value.split('.').map(Number) : expandIpv6(value))
  return der.implicitPrimitive(7, bytes) // iPAddress
}

function expandIpv6(address: string): number[] {
  const [head, tail = ''] = address.split('::')
  const groups = (part: string) => (part === '' ? [] : part.split(':'))
  const left = groups(head)
  const right = address.includes('::') ? groups(tail) : []
  const all = [...left, ...Array.from({length: 8 - left.length - right.length}, () => '0'), ...right]
  return all.flatMap((group) => {
    const value = Number.parseInt(group, 16)
    return [value >> 8, value & 0xFF]
  })
}

/** A server certificate signed by the CA: SANs, serverAuth, CA:FALSE, SKI/AKI. */
export function createLeafCertificate(options: LeafOptions): string {
  const spki = spkiOf(options.keyPem)
  const ca = new X509Certificate(options.caCertPem)
  const tbsFields = der.children(der.readElement(der.children(der.readElement(ca.raw).content)[0].raw).content)
  const caSubject = tbsFields[tbsFields[0].tag === 0xA0 ? 5 : 4].raw
  const ecdsa = createPrivateKey(options.keyPem).asymmetricKeyType === 'ec'
  const firstDns = options.domains.find((d) => isIP(d) === 0) ?? options.domains[0]
  return signCertificate({
    issuer: caSubject,
    subject: name(firstDns),
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    spki,
    signer: signerFor(options.caKeyPem),
    extensions: [
      extension(OID.basicConstraints, true, der.sequence()),
      // RSA key exchange (TLS 1.2 without ECDHE) needs keyEncipherment; ECDSA keys never do.
      extension(OID.keyUsage, true, der.namedBits(ecdsa ? [KEY_USAGE.digitalSignature] : [KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment])),
      extension(OID.extKeyUsage, false, der.sequence(der.objectIdentifier(OID.serverAuth))),
      extension(OID.subjectAltName, false, der.sequence(...options.domains.map((d) => generalName(d)))),
      extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdentifier(spki))),
      extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, keyIdentifier(spkiOf(options.caKeyPem))))),
    ],
  })
}

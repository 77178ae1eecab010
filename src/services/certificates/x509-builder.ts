import 'reflect-metadata'
import {createPrivateKey, createPublicKey, generateKeyPair, randomBytes, webcrypto} from 'node:crypto'
import {isIP} from 'node:net'
import {promisify} from 'node:util'

// @peculiar/x509 2.x needs reflect-metadata loaded first (see ARCHITECTURE.md); this module is
// its only importer, and only the commands that mint certificates load this module.
import * as x509 from '@peculiar/x509'

import type {KeySpec} from './key-spec.js'

x509.cryptoProvider.set(webcrypto as never)
const subtle = webcrypto.subtle as webcrypto.SubtleCrypto
const generate = promisify(generateKeyPair)

export interface PemPair {
  certPem: string
  keyPem: string
}

/** Generates a private key (native OpenSSL, not JS) and returns it as PKCS#8 PEM. */
export async function generatePrivateKey(spec: KeySpec): Promise<string> {
  const {privateKey} = spec.type === 'ecdsa'
    ? await generate('ec', {namedCurve: spec.curve})
    : await generate('rsa', {modulusLength: spec.size, publicExponent: 0x10001})
  return privateKey.export({format: 'pem', type: 'pkcs8'}) as string
}

function algorithmOf(keyPem: string): webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams {
  const key = createPrivateKey(keyPem)
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256'
    return {name: 'ECDSA', namedCurve: curve}
  }

  return {name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256'}
}

async function importKeys(keyPem: string): Promise<{privateKey: webcrypto.CryptoKey; publicKey: webcrypto.CryptoKey; algorithm: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams}> {
  const algorithm = algorithmOf(keyPem)
  const der = createPrivateKey(keyPem).export({format: 'der', type: 'pkcs8'})
  const spki = createPublicKey(keyPem).export({format: 'der', type: 'spki'})
  const privateKey = await subtle.importKey('pkcs8', der, algorithm, false, ['sign'])
  const publicKey = await subtle.importKey('spki', spki, algorithm, true, ['verify'])
  return {privateKey, publicKey, algorithm}
}

function signingAlgorithm(algorithm: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams): webcrypto.Algorithm {
  return algorithm.name === 'ECDSA'
    ? {name: 'ECDSA', hash: (algorithm as webcrypto.EcKeyImportParams).namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256'} as webcrypto.EcdsaParams
    : {name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256'} as webcrypto.RsaHashedImportParams
}

/** A positive 128-bit serial (RFC 5280 allows up to 20 octets; the top bit is cleared). */
function serialNumber(): string {
  const bytes = randomBytes(16)
  bytes[0] &= 0x7F
  bytes[0] |= 0x01
  return bytes.toString('hex')
}

function escapeDn(value: string): string {
  return value.replaceAll(/([,+"\\<>;=])/g, String.raw`\$1`)
}

export interface CaOptions {
  commonName: string
  notBefore: Date
  notAfter: Date
  keyPem: string
}

/** A self-signed CA certificate: CA:TRUE with pathlen 0, keyCertSign + cRLSign, critical. */
export async function createCaCertificate(options: CaOptions): Promise<string> {
  const {privateKey, publicKey, algorithm} = await importKeys(options.keyPem)
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${escapeDn(options.commonName)}, O=mfc local CA`,
    issuer: `CN=${escapeDn(options.commonName)}, O=mfc local CA`,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    signingAlgorithm: signingAlgorithm(algorithm),
    publicKey,
    signingKey: privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  })
  return cert.toString('pem') + '\n'
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

/** A server certificate signed by the CA: SANs, serverAuth, CA:FALSE, SKI/AKI. */
export async function createLeafCertificate(options: LeafOptions): Promise<string> {
  const leaf = await importKeys(options.keyPem)
  const ca = await importKeys(options.caKeyPem)
  const caCert = new x509.X509Certificate(options.caCertPem)
  const names = options.domains.map((name) => ({type: isIP(name) ? 'ip' : 'dns', value: name}) as x509.JsonGeneralName)
  const keyUsage = leaf.algorithm.name === 'ECDSA'
    ? x509.KeyUsageFlags.digitalSignature
    : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
  const firstDns = options.domains.find((name) => !isIP(name)) ?? options.domains[0]
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${escapeDn(firstDns)}`,
    issuer: caCert.subject,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    signingAlgorithm: signingAlgorithm(ca.algorithm),
    publicKey: leaf.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(keyUsage, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(leaf.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  })
  return cert.toString('pem') + '\n'
}

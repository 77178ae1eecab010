import {X509Certificate, createPrivateKey, type KeyObject} from 'node:crypto'

import {StoreError} from '../../lib/errors.js'

/** Facts about one certificate, as `cert monitor` reports them. */
export interface CertInfo {
  subject: string
  issuer: string
  sans: string[]
  serial: string
  notBefore: string
  notAfter: string
  keyType: string
  keySize: number | null
  curve: string | null
  fingerprint256: string
  isCa: boolean
  selfSigned: boolean
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/** Splits a PEM bundle into its certificates, in file order. */
export function splitPemChain(pem: string): string[] {
  return (pem.match(PEM_CERT) ?? []).map((block) => block + '\n')
}

export function parseCertificates(pem: string, source: string): X509Certificate[] {
  const blocks = splitPemChain(pem)
  if (blocks.length === 0) {
    throw new StoreError(`${source} holds no PEM certificate.`, {
      code: 'MFC_CERT_INVALID',
      suggestions: [`Check that ${source} is a certificate in PEM format (-----BEGIN CERTIFICATE-----).`],
    })
  }

  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block)
    } catch (error) {
      throw new StoreError(`Certificate #${index + 1} in ${source} cannot be parsed: ${(error as Error).message}.`, {
        code: 'MFC_CERT_INVALID',
        cause: error,
        suggestions: [`Replace ${source} with a valid PEM certificate.`],
      })
    }
  })
}

export function parsePrivateKey(pem: string, source: string): KeyObject {
  try {
    return createPrivateKey(pem)
  } catch (error) {
    throw new StoreError(`${source} is not a readable private key: ${(error as Error).message}.`, {
      code: 'MFC_CERT_INVALID',
      cause: error,
      suggestions: [`Check that ${source} is an unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1).`],
    })
  }
}

function subjectAltNames(cert: X509Certificate): string[] {
  const text = cert.subjectAltName
  if (!text) return []
  return text.split(', ').map((entry) => entry.replace(/^(DNS|IP Address):/, ''))
}

export function describeCertificate(cert: X509Certificate): CertInfo {
  const key = cert.publicKey
  const details = key.asymmetricKeyDetails ?? {}
  return {
    subject: cert.subject.replaceAll('\n', ', '),
    issuer: cert.issuer.replaceAll('\n', ', '),
    sans: subjectAltNames(cert),
    serial: cert.serialNumber,
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    keyType: key.asymmetricKeyType === 'ec' ? 'ECDSA' : (key.asymmetricKeyType ?? 'unknown').toUpperCase(),
    keySize: details.modulusLength ?? (details.namedCurve === 'secp384r1' ? 384 : details.namedCurve === 'prime256v1' ? 256 : null),
    curve: details.namedCurve === 'prime256v1' ? 'P-256' : details.namedCurve === 'secp384r1' ? 'P-384' : (details.namedCurve ?? null),
    fingerprint256: cert.fingerprint256,
    isCa: cert.ca,
    selfSigned: cert.subject === cert.issuer && cert.checkIssued(cert) && cert.verify(cert.publicKey),
  }
}

export interface PairCheckOptions {
  certPem: string
  keyPem: string
  certSource: string
  keySource: string
  now: Date
}

/**
 * Checks a certificate/key pair before it is installed: the key matches the leaf, every
 * certificate is signed by the next one (leaf first), and the leaf is inside its validity.
 * Returns the parsed chain; throws a StoreError naming the file at fault otherwise.
 */
export function checkPair(options: PairCheckOptions): X509Certificate[] {
  const chain = parseCertificates(options.certPem, options.certSource)
  const key = parsePrivateKey(options.keyPem, options.keySource)
  const [leaf] = chain
  if (!leaf.checkPrivateKey(key)) {
    throw new StoreError(`The private key ${options.keySource} does not belong to the certificate ${options.certSource}.`, {
      code: 'MFC_CERT_INVALID',
      suggestions: ['Give the key that was generated together with this certificate (compare `openssl x509 -noout -pubkey` with `openssl pkey -pubout`).'],
    })
  }

  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i].checkIssued(chain[i + 1]) || !chain[i].verify(chain[i + 1].publicKey)) {
      throw new StoreError(`The chain in ${options.certSource} is out of order: certificate #${i + 1} (${chain[i].subject.replaceAll('\n', ', ')}) is not issued by #${i + 2}.`, {
        code: 'MFC_CERT_INVALID',
        suggestions: ['Order the file leaf first, then each issuer (as in a fullchain.pem).'],
      })
    }
  }

  const notAfter = new Date(leaf.validTo)
  if (notAfter <= options.now) {
    throw new StoreError(`The certificate ${options.certSource} expired on ${notAfter.toISOString()}.`, {
      code: 'MFC_CERT_INVALID',
      suggestions: ['Get a new certificate from your CA, or run `mfc ssl init` without --cert-file to create one.'],
    })
  }

  if (new Date(leaf.validFrom) > options.now) {
    throw new StoreError(`The certificate ${options.certSource} is not valid before ${new Date(leaf.validFrom).toISOString()}.`, {
      code: 'MFC_CERT_INVALID',
      suggestions: ['Check the system clock, or wait until the certificate becomes valid.'],
    })
  }

  return chain
}

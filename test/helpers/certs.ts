import {X509Certificate, createPrivateKey} from 'node:crypto'

import {createCaCertificate, createLeafCertificate, generatePrivateKey} from '../../src/services/certificates/x509-builder.js'
import type {CertBundle} from '../../src/services/store/cert-store.js'

const DAY = 86_400_000

export interface TestCa {
  certPem: string
  keyPem: string
}

/** A throwaway CA for tests (minted at test time, never a checked-in key). */
export async function mintCa(name = 'mfc test CA'): Promise<TestCa> {
  const keyPem = await generatePrivateKey({type: 'ecdsa', curve: 'P-256'})
  const certPem = createCaCertificate({commonName: name, keyPem, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3650 * DAY)})
  return {certPem, keyPem}
}

/** A leaf for `domains`, valid from `notBefore` for `days` days. */
export async function mintLeaf(ca: TestCa, domains: string[], options: {notBefore?: Date; days?: number} = {}): Promise<{certPem: string; keyPem: string}> {
  const keyPem = await generatePrivateKey({type: 'ecdsa', curve: 'P-256'})
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000)
  const certPem = createLeafCertificate({
    domains, keyPem, caCertPem: ca.certPem, caKeyPem: ca.keyPem, notBefore, notAfter: new Date(notBefore.getTime() + (options.days ?? 90) * DAY),
  })
  return {certPem, keyPem}
}

export async function mintBundle(ca: TestCa, name: string, domains = [name]): Promise<CertBundle> {
  const {certPem, keyPem} = await mintLeaf(ca, domains)
  const leaf = new X509Certificate(certPem)
  return {
    certPem, chainPem: ca.certPem, keyPem,
    meta: {name, domains, issuer: 'local-ca', serial: leaf.serialNumber, notBefore: new Date(leaf.validFrom).toISOString(), notAfter: new Date(leaf.validTo).toISOString(), createdAt: new Date().toISOString()},
  }
}

/** True if the key belongs to the first certificate of the PEM. */
export function pairMatches(fullchainPem: string, keyPem: string): boolean {
  return new X509Certificate(fullchainPem).checkPrivateKey(createPrivateKey(keyPem))
}

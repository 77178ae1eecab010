import {promises as fs} from 'node:fs'
import {hostname} from 'node:os'

import type {Clock} from '../../lib/clock.js'
import {IssuerError, errnoCode} from '../../lib/errors.js'
import {ensureDir, writeFileAtomic} from '../../lib/fs-atomic.js'
import type {MfcPaths} from '../../lib/paths.js'
import {checkPair} from '../certificates/inspect.js'
import type {IssueRequest, IssuedCertificate, Issuer} from '../certificates/issuer.js'

const DAY_MS = 86_400_000
/** Leaf lifetime: the 90 days browsers and Let's Encrypt expect, so renewal is exercised. */
export const LOCAL_LEAF_DAYS = 90
export const LOCAL_CA_YEARS = 10

export interface LocalCa {
  certPem: string
  keyPem: string
  certFile: string
  created: boolean
}

/**
 * A certificate authority kept in the state directory (ECDSA P-256, 10 years, CA:TRUE,
 * pathlen 0). Created on first use; the caller must hold the mfc lock so two processes never
 * create two CAs. Leaves carry every domain as a SAN and last 90 days.
 */
export class LocalCaIssuer implements Issuer {
  readonly kind = 'local-ca' as const
  readonly label = 'local CA'

  constructor(private readonly paths: MfcPaths, private readonly clock: Clock) {}

  async ensureCa(): Promise<LocalCa> {
    const {caCertFile, caKeyFile} = this.paths
    try {
      const [certPem, keyPem] = await Promise.all([fs.readFile(caCertFile, 'utf8'), fs.readFile(caKeyFile, 'utf8')])
      checkPair({certPem, keyPem, certSource: caCertFile, keySource: caKeyFile, now: this.clock.now()})
      return {certPem, keyPem, certFile: caCertFile, created: false}
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error
    }

    // The X.509 builder loads only when something is signed.
    const {createCaCertificate, generatePrivateKey} = await import('../certificates/x509-builder.js')
    const now = this.clock.now()
    const keyPem = await generatePrivateKey({type: 'ecdsa', curve: 'P-256'})
    const notAfter = new Date(now)
    notAfter.setUTCFullYear(notAfter.getUTCFullYear() + LOCAL_CA_YEARS)
    const certPem = createCaCertificate({
      commonName: `mfc local CA (${hostname()})`,
      keyPem,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter,
    })
    await ensureDir(this.paths.caDir, 0o700)
    // Key first: a crash between the two writes leaves a key without a cert, which is
    // regenerated (ENOENT on the cert), never a cert without its key.
    await writeFileAtomic(caKeyFile, keyPem, 0o600)
    await writeFileAtomic(caCertFile, certPem, 0o644)
    return {certPem, keyPem, certFile: caCertFile, created: true}
  }

  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    request.onStep?.('Preparing the local CA')
    const ca = await this.ensureCa()
    request.onStep?.(`Signing a certificate for ${request.domains.join(', ')}`)
    const {createLeafCertificate, generatePrivateKey} = await import('../certificates/x509-builder.js')
    try {
      const keyPem = await generatePrivateKey(request.keySpec)
      const certPem = createLeafCertificate({
        domains: request.domains,
        keyPem,
        caCertPem: ca.certPem,
        caKeyPem: ca.keyPem,
        // Backdated a minute so a peer with a slightly slow clock accepts it at once.
        notBefore: new Date(request.now.getTime() - 60_000),
        notAfter: new Date(request.now.getTime() + LOCAL_LEAF_DAYS * DAY_MS),
      })
      return {certPem, chainPem: ca.certPem, keyPem}
    } catch (error) {
      throw new IssuerError(`The local CA could not sign a certificate for ${request.domains.join(', ')}: ${(error as Error).message}`, {
        code: 'MFC_ISSUER_FAILED',
        cause: error,
        suggestions: ['Run again with --debug for details.'],
      })
    }
  }
}

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
  /** This machine's copy of the CA certificate: the file users trust. */
  certFile: string
  created: boolean
}

/** A CA certificate and its private key, PEM. */
export interface CaPair {
  certPem: string
  keyPem: string
}

/**
 * Where a cluster keeps its one local CA (cluster mode: src/services/storage/pg-local-ca.ts).
 * Contract: `load()` is undefined when there is none yet; `createIfAbsent(pair)` stores `pair`
 * only when no CA is stored (set-if-absent, atomic across every node) and returns the CA that
 * is stored afterwards, `created` true only for the caller whose pair won. N nodes racing
 * therefore all leave with the same CA. The key is kept sealed; nothing is ever replaced.
 */
export interface LocalCaStore {
  load(): Promise<CaPair | undefined>
  createIfAbsent(pair: CaPair): Promise<{pair: CaPair; created: boolean}>
}

/**
 * A certificate authority (ECDSA P-256, 10 years, CA:TRUE, pathlen 0), created on first use.
 * Leaves carry every domain as a SAN and last 90 days. On one machine it is kept in the state
 * directory and the caller must hold the mfc lock so two processes never create two CAs. With
 * a `shared` store (cluster mode) the CA is the cluster's: read from the store, or created there
 * with set-if-absent, so every node signs under one root; the node keeps only a copy of the CA
 * certificate at `caCertFile` (what trust instructions and probes point at), never its key.
 */
export class LocalCaIssuer implements Issuer {
  readonly kind = 'local-ca' as const
  readonly label = 'local CA'

  constructor(private readonly paths: MfcPaths, private readonly clock: Clock, private readonly shared?: LocalCaStore) {}

  async ensureCa(): Promise<LocalCa> {
    if (this.shared) return this.ensureShared(this.shared)
    const {caCertFile, caKeyFile} = this.paths
    try {
      const [certPem, keyPem] = await Promise.all([fs.readFile(caCertFile, 'utf8'), fs.readFile(caKeyFile, 'utf8')])
      checkPair({certPem, keyPem, certSource: caCertFile, keySource: caKeyFile, now: this.clock.now()})
      return {certPem, keyPem, certFile: caCertFile, created: false}
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error
    }

    const {certPem, keyPem} = await this.generate(`mfc local CA (${hostname()})`)
    await ensureDir(this.paths.caDir, 0o700)
    // Key first: a crash between the two writes leaves a key without a cert, which is
    // regenerated (ENOENT on the cert), never a cert without its key.
    await writeFileAtomic(caKeyFile, keyPem, 0o600)
    await writeFileAtomic(caCertFile, certPem, 0o644)
    return {certPem, keyPem, certFile: caCertFile, created: true}
  }

  /**
   * Cluster mode: this node's copy of the cluster's CA certificate, refreshed from the store
   * (serve calls it at start, so every node's trust file is the cluster root); undefined when
   * the cluster has no local CA yet or this issuer has no shared store.
   */
  async syncSharedRoot(): Promise<string | undefined> {
    const pair = await this.shared?.load()
    if (!pair) return undefined
    await this.writeRootCopy(pair.certPem)
    return this.paths.caCertFile
  }

  private async ensureShared(store: LocalCaStore): Promise<LocalCa> {
    let pair = await store.load()
    let created = false
    if (!pair) {
      // A machine that had its own local CA before it joined (storage copy) offers that one, so
      // the roots its users trust stay valid; otherwise a new root for the whole cluster.
      const own = await this.readOwnPair()
      const result = await store.createIfAbsent(own ?? await this.generate('mfc cluster local CA'))
      pair = result.pair
      created = result.created && own === undefined
    }

    checkPair({certPem: pair.certPem, keyPem: pair.keyPem, certSource: 'the cluster\'s local CA certificate', keySource: 'the cluster\'s local CA key', now: this.clock.now()})
    await this.writeRootCopy(pair.certPem)
    return {...pair, certFile: this.paths.caCertFile, created}
  }

  private async readOwnPair(): Promise<CaPair | undefined> {
    const {caCertFile, caKeyFile} = this.paths
    try {
      const [certPem, keyPem] = await Promise.all([fs.readFile(caCertFile, 'utf8'), fs.readFile(caKeyFile, 'utf8')])
      checkPair({certPem, keyPem, certSource: caCertFile, keySource: caKeyFile, now: this.clock.now()})
      return {certPem, keyPem}
    } catch {
      return undefined
    }
  }

  /**
   * Writes the cluster root to `caCertFile`. A different CA of this machine found there (one it
   * made before it joined) is moved aside to `*.before-cluster` (with a time stamp when that name
   * is taken), never deleted, and its key with it, so the directory never holds a certificate
   * beside a key that is not its own.
   */
  private async writeRootCopy(certPem: string): Promise<void> {
    const {caCertFile, caKeyFile} = this.paths
    const current = await fs.readFile(caCertFile, 'utf8').catch(() => undefined)
    if (current === certPem) return
    await ensureDir(this.paths.caDir, 0o700)
    // A second move (the cluster's database rebuilt with another CA) must not replace the first.
    const taken = await Promise.all([caKeyFile, caCertFile].map((file) => fs.access(`${file}.before-cluster`).then(() => true, () => false)))
    const suffix = taken.some(Boolean) ? `.before-cluster-${this.clock.now().toISOString().replaceAll(/[:.]/g, '')}` : '.before-cluster'
    for (const file of [caKeyFile, caCertFile]) {
      await fs.rename(file, `${file}${suffix}`).catch((error: unknown) => {
        if (errnoCode(error) !== 'ENOENT') throw error
      })
    }

    await writeFileAtomic(caCertFile, certPem, 0o644)
  }

  private async generate(commonName: string): Promise<CaPair> {
    // The X.509 builder loads only when something is signed.
    const {createCaCertificate, generatePrivateKey} = await import('../certificates/x509-builder.js')
    const now = this.clock.now()
    const keyPem = await generatePrivateKey({type: 'ecdsa', curve: 'P-256'})
    const notAfter = new Date(now)
    notAfter.setUTCFullYear(notAfter.getUTCFullYear() + LOCAL_CA_YEARS)
    const certPem = createCaCertificate({commonName, keyPem, notBefore: new Date(now.getTime() - 60_000), notAfter})
    return {certPem, keyPem}
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

import {X509Certificate} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {resolve} from 'node:path'

import type {Clock} from '../../lib/clock.js'
import type {MfcConfig} from '../../lib/config.js'
import {LockError, MfcError, StoreError, UsageError, fileProblem} from '../../lib/errors.js'
import {withLock} from '../../lib/lock.js'
import {livePaths} from '../../lib/paths.js'
import {AcmeAccountClient, type AcmeSigner, type RevocationReason} from '../acme/acme-account-client.js'
import {AccountStore} from '../acme/account-store.js'
import {issuanceDirectory} from '../acme/directories.js'
import {privateKeyFrom} from '../acme/jws.js'
import {runningServe} from '../daemon/reload.js'
import type {CertStore, StoredCert} from '../store/cert-store.js'
import {describeCertificate, parseCertificates} from '../certificates/inspect.js'
import {decideRenewal} from '../certificates/renewal-policy.js'
import {type Locker, withLocker} from '../../lib/locker.js'

/** One lineage as `cert list` shows it (certbot's `certificates`, plus the renewal plan). */
export interface CertListing {
  name: string
  domains: string[]
  serial: string
  notBefore: string
  notAfter: string
  daysLeft: number
  /** VALID, EXPIRED, or INVALID (unreadable files), as certbot prints it. */
  validity: 'VALID' | 'EXPIRED' | 'INVALID'
  issuerKind: string
  issuer: string
  acmeDirectory: string | null
  profile: string | null
  keyType: string
  version: string
  versions: number
  paths: {certFile: string; keyFile: string; chainFile: string; fullchainFile: string}
  renewal: {renewAt: string; state: string; reason: string; renewable: boolean}
  /** True when ssl-config.json's cert_file points at this lineage (what `serve` loads). */
  configured: boolean
}

export interface RevokeRequest {
  certName?: string
  certPath?: string
  /** certbot's --key-path: sign with this (the certificate's) key instead of the account. */
  keyPath?: string
  reason: RevocationReason
  /** The CA to ask for a certificate given by path (default: the lineage's, else the configured one). */
  server?: string
  deleteAfter: boolean
  command: string
}

export interface RevokeResult {
  serial: string
  domains: string[]
  reason: RevocationReason
  directory: string
  signedWith: 'account' | 'certificate-key'
  accountUrl: string | null
  deleted: string | null
}

/**
 * The explicit lifecycle verbs around the store: list, revoke and delete. Writers take the mfc
 * lock; deletion is the store's atomic `remove`. Never prints; refusals are MfcErrors naming the
 * certificate, file or process and the next step.
 */
export class CertLifecycle {
  /** `locker`: the cluster's lock (cluster mode), taken inside this node's lock file. */
  constructor(private readonly config: MfcConfig, private readonly store: CertStore, private readonly clock: Clock, private readonly locker?: Locker) {}

  async list(names?: string[]): Promise<CertListing[]> {
    const all = await this.store.list()
    const selected = names?.length ? all.filter((s) => names.includes(s.name)) : all
    return Promise.all(selected.map((stored) => this.describe(stored)))
  }

  async revoke(request: RevokeRequest): Promise<RevokeResult> {
    const target = await this.revocationTarget(request)
    const directory = request.server ?? target.stored?.meta.acmeDirectory ?? issuanceDirectory(this.config.settings)
    const {signer, signedWith} = await this.signerFor(directory, target, request.keyPath)
    await new AcmeAccountClient(directory).revoke(Buffer.from(target.cert.raw), request.reason, signer)
    let deleted: string | null = null
    if (request.deleteAfter && target.stored) {
      await this.delete(target.stored.name, {force: true, command: request.command})
      deleted = target.stored.name
    }

    const info = describeCertificate(target.cert)
    return {serial: info.serial, domains: info.sans, reason: request.reason, directory, signedWith, accountUrl: signer.kid ?? null, deleted}
  }

  /**
   * Deletes a lineage under the lock. Refuses the certificate a running `mfc serve` loads
   * (ssl-config.json's cert_file inside the lineage) unless `force`.
   */
  async delete(name: string, options: {force: boolean; command: string}): Promise<{name: string; configured: boolean; servePid: number | null}> {
    return withLock(this.config.paths.lockFile, options.command, () => this.shared(options.command, async () => {
      const stored = await this.store.live(name)
      if (!stored) throw this.unknown(name)
      const configured = this.isConfigured(name)
      const serve = configured ? await runningServe(this.config.paths.pidFile) : undefined
      if (serve && !options.force) {
        throw new LockError(`Certificate "${name}" is in use: mfc serve (pid ${serve.supervisorPid ?? serve.pid}) loads it through ${this.config.settings.cert_file}.`, {
          code: 'MFC_CERT_IN_USE',
          suggestions: ['Stop it first (`mfc stop`), or point ssl-config.json at another certificate.', 'Add --force to delete it anyway (serve keeps the copy it loaded until it restarts).'],
        })
      }

      await this.store.remove(name)
      return {name, configured, servePid: serve ? serve.supervisorPid ?? serve.pid : null}
    }))
  }

  private shared<T>(command: string, work: () => Promise<T>): Promise<T> {
    return this.locker ? withLocker(this.locker, 'store', command, work) : work()
  }

  async exists(name: string): Promise<boolean> {
    return (await this.store.live(name)) !== undefined
  }

  private isConfigured(name: string): boolean {
    const dir = resolve(this.config.paths.storeDir, name)
    return resolve(this.config.settings.cert_file).startsWith(dir + '/')
  }

  private async describe(stored: StoredCert): Promise<CertListing> {
    const {meta} = stored
    const live = livePaths(this.config.paths, stored.name)
    const versions = (await this.store.versions(stored.name)).length
    const paths = {certFile: live.certFile.replace(/fullchain\.pem$/, 'cert.pem'), keyFile: live.keyFile, chainFile: live.chainFile, fullchainFile: live.certFile}
    const now = this.clock.now()
    const decision = decideRenewal({notBefore: new Date(meta.notBefore), notAfter: new Date(meta.notAfter)}, now, {renewalDaysBefore: this.config.settings.renewal_days_before})
    let issuer = meta.issuer as string
    let keyType = '?'
    let validity: CertListing['validity'] = new Date(meta.notAfter) <= now ? 'EXPIRED' : 'VALID'
    try {
      const [leaf] = parseCertificates(await fs.readFile(stored.certFile, 'utf8'), stored.certFile)
      const info = describeCertificate(leaf)
      issuer = info.issuer
      keyType = info.curve ? `${info.keyType} ${info.curve}` : `${info.keyType} ${info.keySize ?? ''}`.trim()
    } catch {
      validity = 'INVALID'
    }

    const renewable = meta.issuer === 'local-ca' || (meta.issuer === 'acme' && Boolean(meta.acmeDirectory))
    return {
      name: stored.name, domains: meta.domains, serial: meta.serial, notBefore: meta.notBefore, notAfter: meta.notAfter,
      daysLeft: decision.daysLeft, validity, issuerKind: meta.issuer, issuer, acmeDirectory: meta.acmeDirectory ?? null,
      profile: (meta as {profile?: string}).profile ?? null, keyType, version: stored.version, versions, paths,
      renewal: {renewAt: decision.renewAt.toISOString(), state: decision.state, reason: renewable ? decision.reason : `not renewed by mfc (issuer "${meta.issuer}")`, renewable},
      configured: this.isConfigured(stored.name),
    }
  }

  private async revocationTarget(request: RevokeRequest): Promise<{cert: X509Certificate; stored?: StoredCert; keyFile?: string}> {
    if (request.certName) {
      const stored = await this.store.live(request.certName)
      if (!stored) throw this.unknown(request.certName)
      const [cert] = parseCertificates(await fs.readFile(stored.certFile, 'utf8'), stored.certFile)
      return {cert, stored, keyFile: stored.keyFile}
    }

    const file = request.certPath!
    let text: string
    try {
      text = await fs.readFile(file, 'utf8')
    } catch (error) {
      throw new StoreError(`The certificate ${fileProblem(file, error).replace(/^Cannot read /, '')}.`, {code: 'MFC_CERT_INVALID', cause: error, suggestions: ['Give the path of a PEM certificate (cert.pem or fullchain.pem).']})
    }

    const [cert] = parseCertificates(text, file)
    const stored = (await this.store.list()).find((s) => s.meta.serial === cert.serialNumber)
    return {cert, stored, keyFile: stored?.keyFile}
  }

  /** certbot's rule: --key-path signs with the certificate key; otherwise the account, else the lineage's own key. */
  private async signerFor(directory: string, target: {cert: X509Certificate; keyFile?: string}, keyPath?: string): Promise<{signer: AcmeSigner; signedWith: RevokeResult['signedWith']}> {
    if (!keyPath) {
      const accounts = new AccountStore(this.config.paths.acmeDir)
      const [record, pem] = await Promise.all([accounts.record(directory), accounts.existingKey(directory)])
      if (record && pem) return {signer: {key: privateKeyFrom(pem), kid: record.url}, signedWith: 'account'}
    }

    const keyFile = keyPath ?? target.keyFile
    if (!keyFile) {
      throw new StoreError(`mfc has no ACME account for ${directory} and no key for this certificate.`, {
        code: 'MFC_ACCOUNT_MISSING',
        suggestions: ['Sign with the certificate\'s private key: add --key-path /path/to/privkey.pem.', 'Or give the CA the certificate came from: --server URL.'],
      })
    }

    let key
    try {
      key = privateKeyFrom(await fs.readFile(keyFile, 'utf8'))
    } catch (error) {
      throw new StoreError(`Cannot use the key ${keyFile}: ${(error as Error).message}.`, {code: 'MFC_CERT_INVALID', cause: error, suggestions: ['Give the unencrypted PEM key of this certificate with --key-path.']})
    }

    if (!target.cert.checkPrivateKey(key)) {
      throw new StoreError(`The key ${keyFile} does not belong to the certificate (serial ${target.cert.serialNumber}).`, {code: 'MFC_CERT_INVALID', suggestions: ['Give the key the certificate was issued for with --key-path.']})
    }

    return {signer: {key}, signedWith: 'certificate-key'}
  }

  private unknown(name: string): MfcError {
    return new UsageError(`No certificate named "${name}" in ${this.config.paths.storeDir}.`, {
      code: 'MFC_USAGE', suggestions: ['See the names with `mfc cert list`.'],
    })
  }
}

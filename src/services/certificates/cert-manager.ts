import type {Clock} from '../../lib/clock.js'
import {type MfcConfig, type Settings, saveSettings} from '../../lib/config.js'
import {StoreError} from '../../lib/errors.js'
import type {MfcEventBus} from '../../lib/events.js'
import {withLock} from '../../lib/lock.js'
import {lineageName, livePaths} from '../../lib/paths.js'
import type {Issuer} from '../issuers/issuer.js'
import type {CertBundle, CertStore, IssuerKind, StoredCert} from '../store/cert-store.js'
import {checkPair} from './inspect.js'
import type {KeySpec} from './key-spec.js'

export interface InstallResult {
  stored: StoredCert
  /** The live paths written into ssl-config.json. */
  certFile: string
  keyFile: string
  configFile: string
  replaced: boolean
}

export interface ObtainOptions {
  domains: string[]
  issuer: Issuer
  keySpec: KeySpec
  /** Replace a live certificate for the same name (the command asked, or --force). */
  replace: boolean
  /** Settings to persist with the certificate (email, issuer choice, hooks...). */
  settings?: Partial<Settings>
  command: string
  onStep?: (step: string) => void
}

export interface ImportOptions {
  certPem: string
  keyPem: string
  certSource: string
  keySource: string
  replace: boolean
  command: string
}

/**
 * Obtains and installs certificates the certmagic way: take the lock, check the store again,
 * issue, verify the pair, write a new version atomically, point ssl-config.json at the live
 * files, emit an event, release the lock in `finally`.
 */
export class CertManager {
  constructor(
    private readonly config: MfcConfig,
    private readonly store: CertStore,
    private readonly clock: Clock,
    private readonly events?: MfcEventBus,
  ) {}

  nameFor(domains: string[]): string {
    return lineageName(domains[0])
  }

  async existing(domains: string[]): Promise<StoredCert | undefined> {
    return this.store.live(this.nameFor(domains))
  }

  async obtain(options: ObtainOptions): Promise<InstallResult> {
    const name = this.nameFor(options.domains)
    return withLock(this.config.paths.lockFile, options.command, async () => {
      const replaced = await this.refuseUnlessReplacing(name, options.replace)
      this.events?.emit('cert:issuing', {name, domains: options.domains, issuer: options.issuer.kind})
      const now = this.clock.now()
      const issued = await options.issuer.issue({name, domains: options.domains, keySpec: options.keySpec, now, onStep: options.onStep})
      options.onStep?.('Verifying and installing the certificate')
      const bundle = this.bundle(name, options.domains, options.issuer.kind, issued.certPem + issued.chainPem, issued.keyPem, 'the issued certificate', 'the issued key', options.keySpec)
      bundle.meta.acmeDirectory = issued.meta?.acmeDirectory
      const result = await this.install(name, bundle, options.settings ?? {}, replaced)
      this.events?.emit('cert:issued', {name, domains: options.domains, issuer: options.issuer.kind, version: result.stored.version, notAfter: bundle.meta.notAfter})
      return result
    })
  }

  /** Installs a certificate made elsewhere (the guide's option 3), after checking the pair. */
  async importPair(options: ImportOptions): Promise<InstallResult> {
    const chain = checkPair({...options, now: this.clock.now()})
    const sans = chain[0].subjectAltName?.split(', ').map((s) => s.replace(/^(DNS|IP Address):/, '')) ?? []
    const domains = sans.length > 0 ? sans : [this.config.settings.domain]
    const name = this.nameFor([this.config.settings.domain])
    return withLock(this.config.paths.lockFile, options.command, async () => {
      const replaced = await this.refuseUnlessReplacing(name, options.replace)
      const bundle = this.bundle(name, domains, 'custom', options.certPem, options.keyPem, options.certSource, options.keySource)
      return this.install(name, bundle, {}, replaced)
    })
  }

  private async refuseUnlessReplacing(name: string, replace: boolean): Promise<boolean> {
    const current = await this.store.live(name)
    if (current && !replace) {
      throw new StoreError(`A certificate for "${name}" already exists (version ${current.version}, ${current.meta.issuer}, expires ${current.meta.notAfter}).`, {
        code: 'MFC_STORE_EXISTS',
        suggestions: ['Add --force to replace it (the old version is kept in the store).', 'Use `mfc cert renew` to renew it instead.'],
      })
    }

    return current !== undefined
  }

  private bundle(name: string, domains: string[], issuer: IssuerKind, fullchainPem: string, keyPem: string, certSource: string, keySource: string, keySpec?: KeySpec): CertBundle {
    const chain = checkPair({certPem: fullchainPem, keyPem, certSource, keySource, now: this.clock.now()})
    const [leaf, ...rest] = chain
    return {
      certPem: leaf.toString(),
      chainPem: rest.map((c) => c.toString()).join(''),
      keyPem,
      meta: {
        name,
        domains,
        issuer,
        keySpec,
        serial: leaf.serialNumber,
        notBefore: new Date(leaf.validFrom).toISOString(),
        notAfter: new Date(leaf.validTo).toISOString(),
        createdAt: this.clock.now().toISOString(),
      },
    }
  }

  private async install(name: string, bundle: CertBundle, settings: Partial<Settings>, replaced: boolean): Promise<InstallResult> {
    const stored = await this.store.put(name, bundle)
    const live = livePaths(this.config.paths, name)
    const configFile = await saveSettings(this.config, {
      ...settings,
      domain: bundle.meta.domains[0],
      domains: bundle.meta.domains,
      cert_file: live.certFile,
      key_file: live.keyFile,
    })
    return {stored, certFile: live.certFile, keyFile: live.keyFile, configFile, replaced}
  }
}

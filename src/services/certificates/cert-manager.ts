import {promises as fs} from 'node:fs'

import type {Clock} from '../../lib/clock.js'
import {type MfcConfig, type Settings, saveSettings} from '../../lib/config.js'
import {ConfigError, StoreError, toMfcError} from '../../lib/errors.js'
import type {MfcEventBus} from '../../lib/events.js'
import {withLock} from '../../lib/lock.js'
import {lineageName, livePaths} from '../../lib/paths.js'
import type {IssuedCertificate, Issuer} from './issuer.js'
import type {CertBundle, CertStore, ChallengeRecord, IssuerKind, StoredCert} from '../store/cert-store.js'
import {type HookRun, type RenewalHooks, runHook} from './hooks.js'
import {checkPair} from './inspect.js'
import {type KeySpec, keySpecFromSettings} from './key-spec.js'
import {type RenewalDecision, decideRenewal} from './renewal-policy.js'
import {unmanagedConfiguredCert} from './unmanaged.js'

export interface InstallResult {
  stored: StoredCert
  /** The live paths written into ssl-config.json. */
  certFile: string
  keyFile: string
  configFile: string
  replaced: boolean
  /** What the issuer wants the user to know (a preferred profile the CA lacks). */
  warnings: string[]
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
  /** ACME profile to order under (kept in the lineage's metadata for every renewal). */
  profile?: {name: string; required: boolean}
  /** Lineage name (certbot's --cert-name); default: the first domain. */
  name?: string
  /** How the challenges were answered, recorded for renewals. */
  challenge?: ChallengeRecord
}

export interface ImportOptions {
  certPem: string
  keyPem: string
  certSource: string
  keySource: string
  replace: boolean
  command: string
  /** Lineage name; default: the configured domain. */
  name?: string
}

/** What a dry run got from the CA: a checked certificate that was thrown away. */
export interface TrialResult {
  name: string
  domains: string[]
  serial: string
  notBefore: string
  notAfter: string
}

export interface RenewOptions {
  /** Only these lineages (`--cert-name`); all when empty. */
  names?: string[]
  /** Renew even if not due. */
  force: boolean
  /** Order from the test directory and throw the result away: nothing is written. */
  dryRun: boolean
  command: string
  /** The issuer for one lineage (its ACME directory, or the local CA); undefined: mfc cannot renew it. */
  issuerFor(stored: StoredCert, dryRun: boolean): Promise<Issuer | undefined>
  /** The CA's ARI window (RFC 9773) for a certificate; errors are reported, never fatal. */
  renewalWindow?(stored: StoredCert, certPem: string): Promise<{start: Date; end: Date; renewAt: Date} | undefined>
  hooks?: RenewalHooks
  /** Runs once when something is due, before the lock is taken (cron's random sleep). */
  beforeRenewing?(): Promise<void>
  onStep?(name: string, step: string): void
  /** Cancels orders in flight (serve shutting down): nothing is written, no failure is notified. */
  signal?: AbortSignal
  /**
   * How long to wait for another mfc process's lock before failing (default 120 s: an order
   * takes seconds). The waiter then checks the store again and finds the fresh certificate.
   */
  lockWaitMs?: number
  /**
   * Tells a running `mfc serve` to reload, once, after at least one renewal (before the post
   * hook); resolves with the pid told, undefined when none runs. Never rejects. The composition
   * root wires it (to daemon/reload), so this package never signals a process itself.
   */
  reloadServe?(): Promise<number | undefined>
}

export type RenewalStatus = 'renewed' | 'dry-run-ok' | 'not-due' | 'skipped' | 'failed'

/** One lineage's line in a renewal report. */
export interface RenewalOutcome {
  name: string
  domains: string[]
  issuer: IssuerKind
  status: RenewalStatus
  reason: string
  /** When renewal is (was) due by the policy. */
  renewAt: string | null
  notAfter: string
  version: string
  ari: {start: string; end: string} | {error: string} | null
  error?: {code: string; message: string; suggestions: string[]; problem?: unknown; retryAfter?: string}
}

export interface RenewalReport {
  dryRun: boolean
  outcomes: RenewalOutcome[]
  hooks: HookRun[]
  /** The pid of the `mfc serve` told to reload (SIGHUP), if one runs. */
  reloadedPid: number | null
}

interface Planned {
  stored: StoredCert
  outcome: RenewalOutcome
  due: boolean
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
    const name = options.name ?? this.nameFor(options.domains)
    return withLock(this.config.paths.lockFile, options.command, async () => {
      const replaced = await this.refuseUnlessReplacing(name, options.replace)
      this.events?.emit('cert:issuing', {name, domains: options.domains, issuer: options.issuer.kind})
      const now = this.clock.now()
      const issued = await options.issuer.issue({name, domains: options.domains, keySpec: options.keySpec, now, onStep: options.onStep, profile: options.profile?.name, profileRequired: options.profile?.required})
      options.onStep?.('Verifying and installing the certificate')
      const bundle = this.bundle(name, options.domains, options.issuer.kind, issued.certPem + issued.chainPem, issued.keyPem, 'the issued certificate', 'the issued key', options.keySpec)
      bundle.meta.acmeDirectory = issued.meta?.acmeDirectory
      bundle.meta.profile = issued.meta?.profile
      if (options.challenge) bundle.meta.challenge = options.challenge
      const result = {...await this.install(name, bundle, options.settings ?? {}, replaced), warnings: issued.warnings ?? []}
      this.events?.emit('cert:issued', {name, domains: options.domains, issuer: options.issuer.kind, version: result.stored.version, notAfter: bundle.meta.notAfter})
      return result
    })
  }

  /**
   * certbot's `--dry-run` for a new certificate: issue (from the test directory the caller's
   * issuer points at) and check the pair, under the lock because an account may be registered;
   * the certificate, key and config are never written.
   */
  async trial(options: ObtainOptions): Promise<TrialResult> {
    const name = options.name ?? this.nameFor(options.domains)
    return withLock(this.config.paths.lockFile, options.command, async () => {
      const issued = await options.issuer.issue({name, domains: options.domains, keySpec: options.keySpec, now: this.clock.now(), onStep: options.onStep})
      const {meta} = this.bundle(name, options.domains, options.issuer.kind, issued.certPem + issued.chainPem, issued.keyPem, 'the test certificate', 'the test key', options.keySpec)
      return {name, domains: meta.domains, serial: meta.serial, notBefore: meta.notBefore, notAfter: meta.notAfter}
    })
  }

  /** Installs a certificate made elsewhere (the guide's option 3), after checking the pair. */
  async importPair(options: ImportOptions): Promise<InstallResult> {
    const chain = checkPair({...options, now: this.clock.now()})
    const sans = chain[0].subjectAltName?.split(', ').map((s) => s.replace(/^(DNS|IP Address):/, '')) ?? []
    const domains = sans.length > 0 ? sans : [this.config.settings.domain]
    const name = options.name ?? this.nameFor([this.config.settings.domain])
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
    return {stored, certFile: live.certFile, keyFile: live.keyFile, configFile, replaced, warnings: []}
  }

  /**
   * Renews what is due (or everything with `force`/`dryRun`): check the store without the lock,
   * then take the lock, check again (another run may have renewed meanwhile), issue, write the
   * new version atomically, emit `cert:renewed`, and release the lock in `finally`. Hooks run
   * as certbot's do; a running `mfc serve` is told to reload. One lineage failing does not stop
   * the others; the report says what happened to each. Throws only for a bad `--cert-name` or
   * a held lock (LockError, without touching anything).
   */
  async renew(options: RenewOptions): Promise<RenewalReport> {
    const plan = await this.plan(options)
    const report: RenewalReport = {dryRun: options.dryRun, outcomes: plan.map((p) => p.outcome), hooks: [], reloadedPid: null}
    // Never report success while the certificate serve actually uses is due and not ours to renew.
    const unmanaged = options.names?.length ? undefined : await unmanagedConfiguredCert(this.config, this.clock)
    if (unmanaged) report.outcomes.push({...unmanaged, issuer: 'custom', version: '-', ari: null})
    if (!plan.some((p) => p.due)) return report
    await options.beforeRenewing?.()
    return withLock(this.config.paths.lockFile, options.command, async () => {
      options.signal?.throwIfAborted()
      const hooks = options.hooks ?? {}
      if (hooks.pre) report.hooks.push(await runHook('pre', hooks.pre, {}))
      for (const item of plan.filter((p) => p.due)) {
        await this.renewOne(item, options)
        if (item.outcome.status === 'renewed' && hooks.deploy) {
          const live = livePaths(this.config.paths, item.outcome.name)
          const run = await runHook('deploy', hooks.deploy, {RENEWED_LINEAGE: live.dir, RENEWED_DOMAINS: item.outcome.domains.join(' ')})
          report.hooks.push({...run, name: item.outcome.name})
        }
      }

      const renewed = report.outcomes.filter((o) => o.status === 'renewed')
      if (renewed.length > 0) report.reloadedPid = await options.reloadServe?.() ?? null
      if (hooks.post) {
        const failed = report.outcomes.filter((o) => o.status === 'failed')
        report.hooks.push(await runHook('post', hooks.post, {
          RENEWED_DOMAINS: renewed.flatMap((o) => o.domains).join(' '),
          FAILED_DOMAINS: failed.flatMap((o) => o.domains).join(' '),
        }))
      }

      return report
    }, options.lockWaitMs ?? 120_000, options.signal)
  }

  /** The renewal decision for every selected lineage, taken without the lock. */
  private async plan(options: RenewOptions): Promise<Planned[]> {
    const all = await this.store.list()
    const unknown = (options.names ?? []).filter((n) => !all.some((s) => s.name === n))
    if (unknown.length > 0) {
      throw new ConfigError(`No certificate named ${unknown.join(', ')} in ${this.config.paths.storeDir}.`, {
        code: 'MFC_CONFIG_VALUE',
        suggestions: [all.length > 0 ? `Known names: ${all.map((s) => s.name).join(', ')}.` : 'Create one first: `mfc ssl init`.'],
      })
    }

    const selected = options.names?.length ? all.filter((s) => options.names!.includes(s.name)) : all
    return Promise.all(selected.map((stored) => this.planOne(stored, options)))
  }

  private async planOne(stored: StoredCert, options: RenewOptions): Promise<Planned> {
    const {meta} = stored
    const outcome: RenewalOutcome = {
      name: stored.name, domains: meta.domains, issuer: meta.issuer, status: 'not-due', reason: '', renewAt: null,
      notAfter: meta.notAfter, version: stored.version, ari: null,
    }
    if (meta.issuer === 'custom') {
      return {stored, due: false, outcome: {...outcome, status: 'skipped', reason: 'installed from your own files: renew it where it came from, then `mfc ssl init --cert-file ... --force`'}}
    }

    let ariStart: Date | undefined
    if (options.renewalWindow && !options.dryRun && !options.force) {
      try {
        const window = await options.renewalWindow(stored, await fs.readFile(stored.certFile, 'utf8'))
        if (window) {
          outcome.ari = {start: window.start.toISOString(), end: window.end.toISOString()}
          ariStart = window.renewAt
        }
      } catch (error) {
        outcome.ari = {error: (error as Error).message}
      }
    }

    const decision: RenewalDecision = decideRenewal({notBefore: new Date(meta.notBefore), notAfter: new Date(meta.notAfter)}, this.clock.now(),
      {renewalDaysBefore: this.config.settings.renewal_days_before}, ariStart)
    outcome.renewAt = decision.renewAt.toISOString()
    const forced = options.force || options.dryRun
    outcome.reason = decision.renew ? decision.reason : forced ? `forced (${decision.reason})` : decision.reason
    return {stored, due: decision.renew || forced, outcome}
  }

  private async renewOne(item: Planned, options: RenewOptions): Promise<void> {
    const {outcome} = item
    const step = (text: string) => options.onStep?.(outcome.name, text)
    try {
      const live = await this.store.live(outcome.name)
      if (live && live.version !== item.stored.version && !options.force && !options.dryRun) {
        Object.assign(outcome, {status: 'skipped', reason: `already renewed by another mfc run (now version ${live.version})`, version: live.version, notAfter: live.meta.notAfter})
        return
      }

      const current = live ?? item.stored
      const issuer = await options.issuerFor(current, options.dryRun)
      if (!issuer) {
        Object.assign(outcome, {status: 'skipped', reason: `mfc cannot renew certificates of issuer "${current.meta.issuer}"`})
        return
      }

      this.events?.emit('cert:renewing', {name: outcome.name, domains: outcome.domains, reason: outcome.reason})
      const keySpec = current.meta.keySpec ?? keySpecFromSettings(this.config.settings)
      const issued = await issuer.issue({name: outcome.name, domains: current.meta.domains, keySpec, now: this.clock.now(), onStep: step, signal: options.signal, profile: current.meta.profile})
      const bundle = this.renewedBundle(current, issuer.kind, issued, keySpec)
      if (options.dryRun) {
        Object.assign(outcome, {status: 'dry-run-ok', reason: `the CA issued a test certificate (valid until ${bundle.meta.notAfter}); nothing was saved`})
        return
      }

      step('Installing the new version')
      const stored = await this.store.put(outcome.name, bundle)
      Object.assign(outcome, {status: 'renewed', version: stored.version, notAfter: bundle.meta.notAfter})
      this.events?.emit('cert:renewed', {name: outcome.name, domains: outcome.domains, version: stored.version, notAfter: bundle.meta.notAfter})
    } catch (error) {
      const mfcError = toMfcError(error)
      Object.assign(outcome, {status: 'failed', reason: mfcError.message, error: {code: mfcError.code, message: mfcError.message, suggestions: mfcError.suggestions, problem: (mfcError as {problem?: unknown}).problem, retryAfter: (mfcError as {retryAfter?: Date}).retryAfter?.toISOString()}})
      if (!options.signal?.aborted) this.events?.emit('cert:renew-failed', {name: outcome.name, domains: outcome.domains, error: mfcError})
    }
  }

  private renewedBundle(current: StoredCert, kind: IssuerKind, issued: IssuedCertificate, keySpec: KeySpec): CertBundle {
    const bundle = this.bundle(current.name, current.meta.domains, kind, issued.certPem + issued.chainPem, issued.keyPem, 'the renewed certificate', 'the renewed key', keySpec)
    bundle.meta.acmeDirectory = issued.meta?.acmeDirectory ?? current.meta.acmeDirectory
    bundle.meta.profile = current.meta.profile
    if (current.meta.challenge) bundle.meta.challenge = current.meta.challenge
    return bundle
  }
}

import {X509Certificate} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {resolve} from 'node:path'

import type {Clock} from '../../lib/clock.js'
import {type MfcConfig, type Settings, saveSettings} from '../../lib/config.js'
import {ConfigError, StoreError, errnoCode} from '../../lib/errors.js'
import {writeFileAtomic} from '../../lib/fs-atomic.js'
import {withLock} from '../../lib/lock.js'
import {lineageRenewalFile, livePaths} from '../../lib/paths.js'
import {AcmeAccountClient} from '../acme/acme-account-client.js'
import {AccountStore} from '../acme/account-store.js'
import {privateKeyFrom} from '../acme/jws.js'
import {parseCertificates, parsePrivateKey} from '../certificates/inspect.js'
import type {KeySpec} from '../certificates/key-spec.js'
import type {CertBundle, CertStore} from '../store/cert-store.js'
import {type Locker, withLocker} from '../../lib/locker.js'
import {type CertbotLineage, type CertbotRenewalParams, readCertbotAccount, readCertbotDir} from './certbot-dir.js'

/** Per-lineage renewal settings kept beside an adopted lineage (see `lineageRenewalFile`). */
export interface LineageRenewalSettings {
  webroot?: string
  http_port?: number
  from: string
}

export type AdoptionStatus = 'adopted' | 'updated' | 'unchanged' | 'skipped' | 'would-adopt' | 'would-update'

export interface LineageAdoption {
  name: string
  domains: string[]
  status: AdoptionStatus
  reason: string
  /** Archive versions copied in this run / present in certbot's archive. */
  versionsImported: number
  versionsTotal: number
  notAfter: string | null
  server: string
  renewal: LineageRenewalSettings | null
  /** certbot settings mfc has no equivalent for (a DNS plugin...), so renewals may differ. */
  unmapped: string[]
  /** How to stop certbot renewing it (certbot reads only renewal/*.conf). */
  stopCertbot: string
}

export interface AccountAdoption {
  server: string
  url: string | null
  /** The contact the CA has for the adopted account (certbot keeps it only at the CA). */
  email?: string
  status: 'adopted' | 'unchanged' | 'kept-mfc' | 'missing' | 'would-adopt'
  reason: string
}

export interface ImportReport {
  certbotDir: string
  dryRun: boolean
  lineages: LineageAdoption[]
  accounts: AccountAdoption[]
  /** The lineage ssl-config.json now points at (cert_file/key_file), if one was chosen. */
  configured: string | null
  configFile: string | null
  settings: Partial<Settings>
  problems: {name: string; reason: string}[]
}

export interface ImportOptions {
  dir: string
  names?: string[]
  dryRun: boolean
  command: string
}

/**
 * Adopts certbot's lineages: every archive version into the store (oldest first, so the newest
 * ends live), the lineage's certbot account into mfc's account store (so renewals stay on it),
 * its webroot/port beside the lineage, and the chosen lineage's settings into ssl-config.json.
 * Reads certbot's directory only; writes under the mfc lock. Idempotent: a version already in
 * the store (same serial) is not copied again, an account already adopted is left alone.
 */
export class CertbotImporter {
  /** `locker`: the cluster's lock (cluster mode), taken inside this node's lock file. */
  constructor(private readonly config: MfcConfig, private readonly store: CertStore, private readonly clock: Clock, private readonly locker?: Locker) {}

  async import(options: ImportOptions): Promise<ImportReport> {
    const dir = resolve(options.dir)
    const found = await this.read(dir)
    const unknown = (options.names ?? []).filter((n) => !found.lineages.some((l) => l.name === n))
    if (unknown.length > 0) {
      throw new ConfigError(`certbot has no lineage named ${unknown.join(', ')} in ${dir}/renewal.`, {
        code: 'MFC_CONFIG_VALUE', suggestions: [`Lineages there: ${found.lineages.map((l) => l.name).join(', ') || 'none'}.`],
      })
    }

    const lineages = options.names?.length ? found.lineages.filter((l) => options.names!.includes(l.name)) : found.lineages
    const work = async () => {
      const report: ImportReport = {certbotDir: dir, dryRun: options.dryRun, lineages: [], accounts: [], configured: null, configFile: null, settings: {}, problems: found.problems}
      for (const lineage of lineages) report.lineages.push(await this.adoptLineage(dir, lineage, options.dryRun))
      for (const server of new Set(lineages.map((l) => l.params.server))) {
        report.accounts.push(await this.adoptAccount(dir, server, lineages.find((l) => l.params.server === server)!.params.account, options.dryRun))
      }

      await this.configure(report, lineages, options.dryRun)
      return report
    }

    const locker = this.locker
    const shared = locker ? () => withLocker(locker, 'store', options.command, work) : work
    return options.dryRun ? work() : withLock(this.config.paths.lockFile, options.command, shared)
  }

  private async read(dir: string) {
    try {
      return await readCertbotDir(dir)
    } catch (error) {
      const missing = (error as {errno?: string}).errno === 'ENOENT'
      throw new ConfigError(`No certbot configuration to import in ${dir}: ${(error as Error).message}.`, {
        code: 'MFC_CONFIG_VALUE', cause: error,
        suggestions: [missing ? 'Give certbot\'s --config-dir: `mfc cert import --from-certbot /path/to/letsencrypt`.' : `Run as a user who can read ${dir} (certbot's files are root's): sudo mfc cert import --from-certbot ${dir}`],
      })
    }
  }

  private async adoptLineage(dir: string, lineage: CertbotLineage & {unmapped: string[]}, dryRun: boolean): Promise<LineageAdoption> {
    const stopCertbot = `mv ${lineage.confFile} ${lineage.confFile}.adopted-by-mfc   # certbot renews only renewal/*.conf`
    const renewal = lineageRenewal(lineage.params, lineage.confFile)
    const result: LineageAdoption = {
      name: lineage.name, domains: [], status: 'unchanged', reason: '', versionsImported: 0, versionsTotal: lineage.versions.length,
      notAfter: null, server: lineage.params.server, renewal, unmapped: lineage.unmapped, stopCertbot,
    }
    const bundles = []
    for (const version of lineage.versions) bundles.push(await this.bundleOf(lineage, version.number, version))
    const latest = bundles.find((b) => b.meta.adoptedFrom!.archiveVersion === lineage.liveVersion) ?? bundles.at(-1)!
    result.domains = latest.meta.domains
    result.notAfter = latest.meta.notAfter

    const existing = await this.storedSerials(lineage.name)
    if (existing.size > 0 && !existing.adopted) {
      return {...result, status: 'skipped', reason: `mfc already has its own certificate named "${lineage.name}"; delete it first (mfc cert delete --cert-name ${lineage.name}) to adopt certbot's`}
    }

    // The live version goes in last, so it ends up live; older ones keep their archive order.
    const missing = [...bundles.filter((b) => b !== latest), latest].filter((b) => !existing.has(b.meta.serial))
    if (missing.length === 0) return {...result, reason: `already adopted (${existing.size} versions)`}
    // Once mfc has renewed it, mfc's version stays live: a certbot that still renews is told to stop, not followed.
    const live = await this.store.live(lineage.name)
    if (live && !live.meta.adoptedFrom) {
      return {...result, reason: `mfc renews it (live version ${live.version} is mfc's); certbot made ${missing.length} newer version(s), not copied: stop certbot renewing it`}
    }
    if (dryRun) {
      return {...result, status: existing.size > 0 ? 'would-update' : 'would-adopt', versionsImported: missing.length,
        reason: `would copy ${missing.length} of ${bundles.length} archive versions (live: ${lineage.liveVersion})`}
    }

    for (const bundle of missing) await this.store.put(lineage.name, bundle)
    if (renewal) await writeFileAtomic(lineageRenewalFile(this.config.paths, lineage.name), JSON.stringify(renewal, null, 2) + '\n', 0o600)
    return {...result, status: existing.size > 0 ? 'updated' : 'adopted', versionsImported: missing.length, reason: `copied ${missing.length} archive versions; version ${lineage.liveVersion} is live`}
  }

  private async bundleOf(lineage: CertbotLineage, number: number, files: CertbotLineage['versions'][number]): Promise<CertBundle> {
    const read = (file: string) => fs.readFile(file, 'utf8').catch((error: unknown) => {
      throw new StoreError(`Cannot read ${file} (certbot lineage ${lineage.name}): ${errnoCode(error) ?? (error as Error).message}.`, {
        code: 'MFC_STORE_IO', cause: error, suggestions: ['Run as root (certbot\'s keys are readable by root only).'],
      })
    })
    const [certPem, chainPem, keyPem] = await Promise.all([read(files.certFile), read(files.chainFile).catch(() => ''), read(files.keyFile)])
    const [leaf] = parseCertificates(certPem, files.certFile)
    const key = parsePrivateKey(keyPem, files.keyFile)
    if (!leaf.checkPrivateKey(key)) {
      throw new StoreError(`certbot's ${files.keyFile} does not belong to ${files.certFile}.`, {code: 'MFC_CERT_INVALID', suggestions: [`Check certbot's archive of ${lineage.name}; nothing was imported for it.`]})
    }

    return {
      certPem: leaf.toString(), chainPem, keyPem,
      meta: {
        name: lineage.name, domains: sansOf(leaf), issuer: 'acme', keySpec: keySpecOf(key), acmeDirectory: lineage.params.server,
        ...(lineage.params.challenge ? {challenge: lineage.params.challenge} : {}),
        adoptedFrom: {tool: 'certbot', lineage: lineage.name, archiveVersion: number, directory: lineage.archiveDir},
        serial: leaf.serialNumber, notBefore: new Date(leaf.validFrom).toISOString(), notAfter: new Date(leaf.validTo).toISOString(), createdAt: this.clock.now().toISOString(),
      },
    }
  }

  private async storedSerials(name: string): Promise<Set<string> & {adopted?: boolean}> {
    const serials: Set<string> & {adopted?: boolean} = new Set()
    for (const version of await this.store.versions(name)) {
      const stored = await this.store.version(name, version)
      if (!stored) continue
      serials.add(stored.meta.serial)
      if (stored.meta.adoptedFrom?.tool === 'certbot') serials.adopted = true
    }

    return serials
  }

  /** certbot's account for `server` becomes mfc's, unless mfc has one already (then that one stays). */
  private async adoptAccount(dir: string, server: string, id: string | undefined, dryRun: boolean): Promise<AccountAdoption> {
    const accounts = new AccountStore(this.config.paths.acmeDir)
    const certbot = await readCertbotAccount(dir, server, id)
    if (!certbot) return {server, url: null, status: 'missing', reason: `certbot has no account ${id ?? ''} for ${server}; mfc registers one at the first renewal`}
    const mine = await accounts.record(server)
    if (mine?.url === certbot.url) return {server, url: certbot.url, status: 'unchanged', reason: 'already adopted'}
    if (mine) return {server, url: mine.url, status: 'kept-mfc', reason: `mfc has its own account for ${server} (${mine.url}); renewals use it, not certbot's ${certbot.url}`}
    if (dryRun) return {server, url: certbot.url, status: 'would-adopt', reason: `would adopt certbot's account ${certbot.id}`}
    const key = privateKeyFrom(certbot.privateJwk)
    // The CA is asked for the contact (certbot keeps it only at the CA); an unreachable CA is no reason to stop.
    const contact = await new AcmeAccountClient(server).account({key, kid: certbot.url}).then((a) => a.contact ?? [], () => [])
    const email = contact.find((c) => c.startsWith('mailto:'))?.slice(7) ?? ''
    await accounts.adopt({directory: server, url: certbot.url, email, createdAt: this.clock.now().toISOString()}, key.export({format: 'pem', type: 'pkcs8'}) as string)
    return {server, url: certbot.url, email, status: 'adopted', reason: `adopted certbot's account ${certbot.id}`}
  }

  /** Points ssl-config.json at one adopted lineage: the one it named in certbot's live dir, else its domain's, else the first. */
  private async configure(report: ImportReport, lineages: (CertbotLineage & {unmapped: string[]})[], dryRun: boolean): Promise<void> {
    const usable = report.lineages.filter((l) => l.status !== 'skipped')
    const certFile = resolve(this.config.settings.cert_file)
    const chosen = usable.find((l) => certFile.startsWith(resolve(lineages.find((x) => x.name === l.name)!.liveDir) + '/'))
      ?? usable.find((l) => l.domains.includes(this.config.settings.domain))
      ?? usable[0]
    if (!chosen) return
    const params = lineages.find((l) => l.name === chosen.name)!.params
    const live = livePaths(this.config.paths, chosen.name)
    const s = this.config.settings
    const settings: Partial<Settings> = {
      domain: chosen.domains[0], domains: chosen.domains, cert_file: live.certFile, key_file: live.keyFile, ca_file: null,
      use_letsencrypt: true, acme_directory: params.server,
      ...(params.keyType ? {key_type: params.keyType} : {}), ...(params.rsaKeySize ? {rsa_key_size: params.rsaKeySize} : {}),
      ...(params.ellipticCurve ? {elliptic_curve: params.ellipticCurve} : {}),
      ...(params.webroot ? {webroot: params.webroot} : {}), ...(params.http01Port ? {http_port: params.http01Port} : {}),
      ...(params.preHook && !s.pre_hook ? {pre_hook: params.preHook} : {}), ...(params.postHook && !s.post_hook ? {post_hook: params.postHook} : {}),
      ...(params.deployHook && !s.deploy_hook ? {deploy_hook: params.deployHook} : {}),
      ...(s.email ? {} : {email: report.accounts.find((a) => a.server === params.server)?.email || undefined}),
    }
    for (const key of Object.keys(settings) as (keyof Settings)[]) if (settings[key] === undefined) delete settings[key]
    // saveSettings leaves out nulls and a `domains` that says no more than `domain`: absent counts as equal.
    const raw = this.config.file.raw
    const same = (key: string, value: unknown) => JSON.stringify(raw[key]) === JSON.stringify(value)
      || (raw[key] === undefined && (value === null || (key === 'domains' && Array.isArray(value) && value.length === 1 && value[0] === settings.domain)))
    const unchanged = Object.entries(settings).every(([key, value]) => same(key, value))
    report.configured = chosen.name
    report.settings = settings
    if (dryRun || unchanged) return
    report.configFile = await saveSettings(this.config, settings)
  }
}

function lineageRenewal(params: CertbotRenewalParams, confFile: string): LineageRenewalSettings | null {
  if (params.authenticator === 'webroot' && params.webroot) return {webroot: params.webroot, from: confFile}
  if (params.authenticator === 'standalone' && params.http01Port) return {http_port: params.http01Port, from: confFile}
  return null
}

function sansOf(leaf: X509Certificate): string[] {
  return leaf.subjectAltName?.split(', ').map((s) => s.replace(/^(DNS|IP Address):/, '')) ?? []
}

function keySpecOf(key: ReturnType<typeof parsePrivateKey>): KeySpec {
  const details = key.asymmetricKeyDetails ?? {}
  if (key.asymmetricKeyType === 'rsa') {
    const size = details.modulusLength
    return {type: 'rsa', size: size === 3072 || size === 4096 ? size : 2048}
  }

  return {type: 'ecdsa', curve: details.namedCurve === 'secp384r1' ? 'P-384' : 'P-256'}
}

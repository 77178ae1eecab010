import {promises as fs} from 'node:fs'
import {resolve} from 'node:path'

import type {Clock} from '../../lib/clock.js'
import type {MfcConfig} from '../../lib/config.js'
import {NAGIOS, errnoCode} from '../../lib/errors.js'
import type {CertStore} from '../store/cert-store.js'
import {type CertInfo, describeCertificate, parseCertificates} from './inspect.js'
import {type RenewalDecision, decideRenewal} from './renewal-policy.js'

export type MonitorStatus = 'ok' | 'due' | 'critical' | 'expired' | 'missing' | 'unreadable'

/** One certificate's report line. */
export interface CertReport {
  name: string
  certFile: string
  keyFile: string | null
  source: 'store' | 'config' | 'argument'
  issuer: string | null
  status: MonitorStatus
  daysLeft: number | null
  renewal: Omit<RenewalDecision, 'renewAt'> & {renewAt: string} | null
  certificate: CertInfo | null
  keyMode: string | null
  warnings: string[]
  error: string | null
}

export interface MonitorReport {
  timestamp: string
  exitCode: number
  summary: string
  certificates: CertReport[]
}

interface Target {
  name: string
  certFile: string
  keyFile: string | null
  source: CertReport['source']
  issuer: string | null
}

const RANK: Record<MonitorStatus, number> = {ok: 0, due: 1, missing: 2, unreadable: 2, critical: 3, expired: 3}
const EXIT_OF: Record<MonitorStatus, number> = {
  ok: NAGIOS.OK, due: NAGIOS.WARNING, critical: NAGIOS.CRITICAL, expired: NAGIOS.CRITICAL, missing: NAGIOS.UNKNOWN, unreadable: NAGIOS.UNKNOWN,
}

/**
 * Reports on certificates: every lineage in the store plus the config's cert_file (or only
 * the files given). Exit code by the Nagios convention; when several certificates disagree,
 * the worst wins, with CRITICAL above UNKNOWN above WARNING.
 */
export class CertMonitor {
  /**
   * `maintained()`: whether a process renews these certificates by itself (a running `mfc serve`
   * with auto_renew); short-lived certificates without one get a warning.
   */
  constructor(private readonly config: MfcConfig, private readonly store: CertStore, private readonly clock: Clock, private readonly maintained: () => Promise<boolean> = async () => false) {}

  async report(files: string[] = []): Promise<MonitorReport> {
    const targets = files.length > 0
      ? files.map((file) => ({name: file, certFile: resolve(file), keyFile: null, source: 'argument' as const, issuer: null}))
      : await this.managedTargets()
    const certificates = await Promise.all(targets.map((target) => this.inspect(target)))
    const worst = certificates.reduce<MonitorStatus>((acc, c) => (RANK[c.status] > RANK[acc] ? c.status : acc), 'ok')
    const exitCode = certificates.length === 0 ? NAGIOS.UNKNOWN : EXIT_OF[worst]
    return {timestamp: this.clock.now().toISOString(), exitCode, summary: summarize(certificates), certificates}
  }

  private async managedTargets(): Promise<Target[]> {
    const {settings} = this.config
    const stored = await this.store.list()
    const targets: Target[] = stored.map((s) => ({
      name: s.name,
      certFile: resolve(this.config.paths.storeDir, s.name, 'live', 'fullchain.pem'),
      keyFile: resolve(this.config.paths.storeDir, s.name, 'live', 'privkey.pem'),
      source: 'store',
      issuer: s.meta.issuer,
    }))
    if (!targets.some((t) => t.certFile === resolve(settings.cert_file))) {
      targets.unshift({name: settings.domain, certFile: resolve(settings.cert_file), keyFile: resolve(settings.key_file), source: 'config', issuer: settings.use_letsencrypt ? 'acme' : null})
    }

    return targets
  }

  private async inspect(target: Target): Promise<CertReport> {
    const report: CertReport = {...target, status: 'ok', daysLeft: null, renewal: null, certificate: null, keyMode: null, warnings: [], error: null}
    let pem: string
    try {
      pem = await fs.readFile(target.certFile, 'utf8')
    } catch (error) {
      report.status = errnoCode(error) === 'ENOENT' ? 'missing' : 'unreadable'
      report.error = report.status === 'missing'
        ? `${target.certFile} not found.${target.source === 'argument' ? '' : ' Create the certificate with `mfc ssl init`.'}`
        : `${target.certFile} cannot be read: ${(error as Error).message}`
      return report
    }

    try {
      const [leaf] = parseCertificates(pem, target.certFile)
      report.certificate = describeCertificate(leaf)
    } catch (error) {
      report.status = 'unreadable'
      report.error = (error as Error).message
      return report
    }

    const decision = decideRenewal(
      {notBefore: new Date(report.certificate.notBefore), notAfter: new Date(report.certificate.notAfter)},
      this.clock.now(),
      {renewalDaysBefore: this.config.settings.renewal_days_before},
    )
    report.renewal = {...decision, renewAt: decision.renewAt.toISOString()}
    report.daysLeft = decision.daysLeft
    report.status = decision.state
    await this.checkShortLived(report)
    if (target.keyFile) await this.checkKey(target.keyFile, report)
    return report
  }

  /**
   * A certificate of 10 days or less (Let's Encrypt's 6-day `shortlived`) outlives no twice-a-day
   * cron hiccup: it needs serve's maintainer, or renew-if-needed far more often than usual.
   */
  private async checkShortLived(report: CertReport): Promise<void> {
    const cert = report.certificate!
    const lifetimeMs = Date.parse(cert.notAfter) - Date.parse(cert.notBefore)
    if (report.source === 'argument' || lifetimeMs > 10 * 86_400_000 || await this.maintained()) return
    const hours = Math.max(1, Math.floor(lifetimeMs / 3_600_000 / 12))
    report.warnings.push(`This certificate lives ${formatLifetime(lifetimeMs)} and no \`mfc serve\` with auto_renew runs here to renew it: start \`mfc serve --daemon\` (it renews by itself), or run \`mfc cert renew-if-needed\` at least every ${hours} hour${hours === 1 ? '' : 's'} (cron or a systemd timer).`)
  }

  private async checkKey(keyFile: string, report: CertReport): Promise<void> {
    try {
      const {mode} = await fs.stat(keyFile)
      report.keyMode = (mode & 0o777).toString(8).padStart(4, '0')
      if (mode & 0o004) report.warnings.push(`The private key ${keyFile} is world-readable (mode ${report.keyMode}): run \`chmod 600 ${keyFile}\`.`)
    } catch (error) {
      report.warnings.push(`The private key ${keyFile} cannot be checked: ${(error as Error).message}`)
    }
  }
}

function formatLifetime(ms: number): string {
  return ms >= 86_400_000 ? `${Math.round(ms / 86_400_000)} days` : ms >= 3_600_000 ? `${Math.round(ms / 3_600_000)} hours` : `${Math.round(ms / 1000)} seconds`
}

function summarize(certificates: CertReport[]): string {
  if (certificates.length === 0) return 'No certificates are managed yet: run `mfc ssl init`.'
  const counts = new Map<MonitorStatus, number>()
  for (const c of certificates) counts.set(c.status, (counts.get(c.status) ?? 0) + 1)
  return [...counts].map(([status, n]) => `${n} ${status}`).join(', ')
}

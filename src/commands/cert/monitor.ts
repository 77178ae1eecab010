import {Args, Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {facts, statusWord} from '../../cli/render.js'
import {notifyExpiring} from '../../cli/notify.js'
import {monitor} from '../../cli/services.js'
import type {CertReport, MonitorReport} from '../../services/certificates/monitor.js'
import type {ChannelResult} from '../../services/notifications/dispatcher.js'

const ICON: Record<CertReport['status'], string> = {ok: 'OK', due: 'WARNING', critical: 'CRITICAL', expired: 'CRITICAL', missing: 'UNKNOWN', unreadable: 'UNKNOWN'}

export default class CertMonitor extends MfcCommand {
  static override summary = 'Report on every certificate mfc manages: names, issuer, key, expiry, renewal due.'

  static override description = `Exit codes follow the Nagios plugin convention, so the command drops into any monitoring
system: 0 OK, 1 WARNING (inside the renewal window), 2 CRITICAL (7 days or less left, or
expired), 3 UNKNOWN (missing or unreadable). With several certificates the worst one decides.
Without arguments it checks the certificate store and the config's cert_file.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
    {description: 'Check any PEM file', command: '<%= config.bin %> <%= command.id %> --cert-file /etc/nginx/tls/site.crt'},
  ]

  static override args = {
    file: Args.string({description: 'A certificate file to check (same as --cert-file).'}),
  }

  static override flags = {
    'cert-file': Flags.string({description: 'Check this PEM certificate instead of the managed ones (repeatable).', multiple: true}),
    notify: Flags.boolean({description: 'Send expiry warnings through the channels of notification-config.json (`mfc notify setup`).'}),
  }

  static override nagios = true

  async run(): Promise<MonitorReport & {notifications?: ChannelResult[]}> {
    const {args, flags} = await this.parse(CertMonitor)
    const config = this.loadConfig(flags.config)
    const files = [...(args.file ? [args.file] : []), ...(flags['cert-file'] ?? [])]
    const report = await monitor(config).report(files)
    this.render(report)
    const notifications = flags.notify ? await notifyExpiring(config, report) : undefined
    // A failing channel is reported, never turned into the monitor's exit code.
    for (const failed of notifications?.filter((n) => !n.ok) ?? []) this.warn(`Notification via ${failed.channel} failed: ${failed.error}`)
    process.exitCode = report.exitCode
    return notifications ? {...report, notifications} : report
  }

  private render(report: MonitorReport): void {
    for (const cert of report.certificates) {
      const info = cert.certificate
      this.say(`${statusWord(ICON[cert.status])}  ${cert.name}  ${cert.status === 'ok' || cert.status === 'due' || cert.status === 'critical' ? `${cert.daysLeft} days left` : cert.status}`)
      if (cert.error) this.say(`  ${cert.error}`)
      if (info) {
        this.say(facts([
          ['File', cert.certFile], ['Subject', info.subject], ['Names', info.sans.join(', ')], ['Issuer', info.issuer],
          ['Key', `${info.keyType} ${info.curve ?? info.keySize ?? ''}`.trim()], ['Not before', info.notBefore], ['Not after', info.notAfter],
          ['Renewal', cert.renewal?.reason], ['Key file', cert.keyFile ? `${cert.keyFile} (mode ${cert.keyMode ?? '?'})` : null],
        ]))
      }

      for (const warning of cert.warnings) this.say(`  Warning: ${warning}`)
      this.say()
    }

    this.say(`Summary: ${report.summary}`)
  }
}

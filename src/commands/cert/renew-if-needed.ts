import {randomInt} from 'node:crypto'

import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {renewOptions} from '../../cli/acme-services.js'
import {notificationWarnings, notifyFrom} from '../../cli/notify.js'
import {renewFlags} from '../../cli/renew-flags.js'
import {failureParagraph, hookLines} from '../../cli/renewal-render.js'
import {ssl} from '../../cli/services.js'
import {EXIT} from '../../lib/errors.js'
import {sleep} from '../../lib/retry.js'
import type {RenewalReport} from '../../services/certificates/cert-manager.js'
import type {ChannelResult} from '../../services/notifications/dispatcher.js'

/** certbot and lego both spread cron renewals over 8 minutes so a CA is not hit on the hour. */
const MAX_RANDOM_SLEEP_MS = 8 * 60_000

export default class CertRenewIfNeeded extends MfcCommand {
  static override summary = 'Renew what is due, quietly: the entry point for cron and systemd timers.'

  static override description = `Silent with exit 0 when nothing is due, so cron sends no mail. When something is due it
waits a random 0-8 minutes first (only when stdin is not a terminal; --no-random-sleep skips it),
renews it, prints one line per renewed certificate, and runs the hooks. On failure it prints one
paragraph saying why and exits 1; the current certificate stays in place. Renewals and failures
go to notification-config.json's channels. Hook and notification failures are reported on
stderr but do not change the exit code. Exit 7 when another mfc run holds the lock.`

  static override examples = [
    {description: 'A crontab line (twice a day at a random minute)', command: '17 3,15 * * * <%= config.bin %> <%= command.id %>'},
    '<%= config.bin %> <%= command.id %> --no-random-sleep --deploy-hook "systemctl reload nginx"',
  ]

  static override flags = {
    ...renewFlags,
    'random-sleep': Flags.boolean({description: 'Wait 0-8 minutes before renewing when not on a terminal.', default: true, allowNo: true}),
  }

  async run(): Promise<RenewalReport & {notifications: ChannelResult[]}> {
    const {flags} = await this.parse(CertRenewIfNeeded)
    const config = this.loadConfig(flags.config, {http_port: flags['http-port'], webroot: flags.webroot})
    const services = await ssl(config)
    const jitter = flags['random-sleep'] && !flags['no-random-sleep-on-renew'] && !process.stdin.isTTY
    const notify = flags['dry-run'] ? undefined : await notifyFrom(config, services.events)
    const report = await services.manager.renew({
      ...renewOptions(config, services.localCa, flags, 'cert renew-if-needed'),
      beforeRenewing: jitter ? () => sleep(randomInt(MAX_RANDOM_SLEEP_MS)) : undefined,
    })
    for (const o of report.outcomes) {
      if (flags.quiet) continue
      if (o.status === 'renewed') this.say(`Renewed ${o.name} (${o.domains.join(', ')}): version ${o.version}, valid until ${o.notAfter}.`)
      if (o.status === 'dry-run-ok') this.say(`Dry run OK for ${o.name}: ${o.reason}.`)
    }

    for (const line of hookLines(report.hooks)) process.stderr.write(`${line}\n`)
    const notifications = await notify?.finish() ?? []
    // Nothing renewed or failed means nothing to say, even about a broken notification config: cron stays quiet.
    const renewing = report.outcomes.some((o) => o.status === 'renewed' || o.status === 'failed')
    for (const line of notify && renewing ? notificationWarnings(notify, notifications) : []) process.stderr.write(`Warning: ${line}\n`)
    if (report.outcomes.some((o) => o.status === 'failed')) {
      if (!this.jsonEnabled()) process.stderr.write(`${failureParagraph(report)}\n`)
      process.exitCode = EXIT.FAILURE
    }

    return {...report, notifications}
  }
}

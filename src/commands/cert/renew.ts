import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {renewOptions} from '../../cli/acme-services.js'
import {notificationWarnings, notifyFrom} from '../../cli/notify.js'
import {outputMode, runSteps} from '../../cli/render.js'
import {renewFlags} from '../../cli/renew-flags.js'
import {certbotArgv} from '../../cli/ssl-init-options.js'
import {renewalLines} from '../../cli/renewal-render.js'
import {ssl} from '../../cli/services.js'
import {EXIT} from '../../lib/errors.js'
import type {RenewalReport} from '../../services/certificates/cert-manager.js'
import type {ChannelResult} from '../../services/notifications/dispatcher.js'

export default class CertRenew extends MfcCommand {
  static override summary = 'Renew the certificates that are due now (all of them with --force).'

  static override description = `Renews every certificate in the store that the renewal policy says is due (a third of its
lifetime left, 1/2 for short-lived ones, or fewer than renewal_days_before days; earlier when the
CA's ARI window says so), from the CA that issued it: the ACME directory it came from, or the
local CA. The new version is written atomically next to the old ones and a running mfc serve is
told to reload. Renewals and failures are sent through notification-config.json's channels
(\`mfc notify setup\`); a failing channel is reported and never changes the exit code. Exit 0
when everything due was renewed (or nothing was due), 1 when a renewal failed, 7 when another
mfc run holds the lock.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {description: 'Renew one certificate now, even if it is not due', command: '<%= config.bin %> <%= command.id %> --cert-name mfc.example.org --force'},
    {description: 'Check that renewal would work, writing nothing', command: '<%= config.bin %> <%= command.id %> --dry-run'},
    {description: 'Reload nginx after each renewal', command: '<%= config.bin %> <%= command.id %> --deploy-hook "systemctl reload nginx"'},
  ]

  static override flags = {
    ...renewFlags,
    force: Flags.boolean({char: 'f', aliases: ['force-renewal', 'renew-by-default'], description: 'Renew even if not due (certbot\'s --force-renewal).'}),
  }

  async run(): Promise<RenewalReport & {notifications: ChannelResult[]}> {
    const {flags} = await this.parse(CertRenew, certbotArgv(this.argv))
    const config = this.loadConfig(flags.config, {http_port: flags['http-port'], webroot: flags.webroot})
    const services = await ssl(config)
    const options = renewOptions(config, services.localCa, flags, 'cert renew')
    const title = flags['dry-run'] ? 'Renewal dry run (nothing is saved)' : 'Renewing certificates'
    // A dry run is a rehearsal: nobody is told about it.
    const notify = flags['dry-run'] ? undefined : await notifyFrom(config, services.events)
    const report = await runSteps(outputMode(this.jsonEnabled() || flags.quiet), title, (step) => services.manager.renew({...options, onStep: (name, text) => step(`${name}: ${text}`)}))
    if (!flags.quiet) for (const line of renewalLines(report)) this.say(line)
    const notifications = await notify?.finish() ?? []
    for (const line of notify ? notificationWarnings(notify, notifications) : []) this.warn(line)
    if (report.outcomes.some((o) => o.status === 'failed')) process.exitCode = EXIT.FAILURE
    return {...report, notifications}
  }
}

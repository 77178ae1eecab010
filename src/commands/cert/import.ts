import {Args, Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {certbotImporter} from '../../cli/services.js'
import type {ImportReport} from '../../services/certbot/certbot-import.js'

export default class CertImport extends MfcCommand {
  static override summary = 'Adopt certbot\'s certificates, keys, renewal settings and ACME account.'

  static override description = `Reads certbot's directory (default /etc/letsencrypt; certbot's --config-dir) and copies each
lineage into mfc's store: every archive version (cert, chain, key), the live one last so it
becomes mfc's live version. The renewal settings with an mfc meaning come along (authenticator
standalone/webroot, webroot path, http-01 port, pre/deploy/post hooks, key type, server), and so
does certbot's ACME account for that server, so mfc renews on the same account. ssl-config.json
then points at mfc's live files. certbot's directory is only read, never changed: the report says
how to stop certbot renewing what mfc now renews. Running it again is a no-op (only versions
certbot made since are copied). --dry-run shows what would be adopted and writes nothing.`

  static override examples = [
    'sudo <%= config.bin %> <%= command.id %> --from-certbot --dry-run',
    'sudo <%= config.bin %> <%= command.id %> --from-certbot',
    '<%= config.bin %> <%= command.id %> --from-certbot /srv/letsencrypt --cert-name example.org --json',
  ]

  static override args = {
    dir: Args.string({description: 'certbot\'s configuration directory.', default: '/etc/letsencrypt'}),
  }

  static override flags = {
    'from-certbot': Flags.boolean({description: 'Import from certbot (the one source supported).', required: true}),
    'cert-name': Flags.string({description: 'Only this certbot lineage (repeatable).', multiple: true}),
    'dry-run': Flags.boolean({description: 'Show what would be adopted; write nothing.'}),
  }

  async run(): Promise<ImportReport> {
    const {args, flags} = await this.parse(CertImport)
    const config = this.loadConfig(flags.config)
    const report = await (await certbotImporter(config)).import({dir: args.dir, names: flags['cert-name'], dryRun: flags['dry-run'], command: 'cert import'})
    this.render(report)
    return report
  }

  private render(report: ImportReport): void {
    this.say(`${report.dryRun ? 'Dry run: nothing is written. ' : ''}certbot lineages in ${report.certbotDir}:`)
    for (const l of report.lineages) {
      this.say(`  ${l.status.padEnd(12)} ${l.name} (${l.domains.join(', ')}): ${l.reason}`)
      if (l.unmapped.length > 0) this.say(`               not mapped (mfc renews over HTTP-01 instead): ${l.unmapped.join(', ')}`)
    }

    for (const p of report.problems) this.say(`  unreadable   ${p.name}: ${p.reason}`)
    for (const a of report.accounts) this.say(`  account      ${a.server}: ${a.status} (${a.reason})`)
    if (report.configured) this.say(`${report.configFile ? `${report.configFile} now points at` : report.dryRun ? 'ssl-config.json would point at' : 'ssl-config.json already points at'} "${report.configured}".`)
    const adopted = report.lineages.filter((l) => l.status !== 'skipped')
    if (adopted.length === 0 || report.dryRun) return
    this.say('\nmfc now renews these certificates. To stop certbot renewing them too (certbot reads only renewal/*.conf):')
    for (const l of adopted) this.say(`  ${l.stopCertbot}`)
    this.say('  and, once certbot has no lineage left: systemctl disable --now certbot.timer (or remove /etc/cron.d/certbot).')
    this.say('Check that mfc can renew them: mfc cert renew --dry-run')
  }
}

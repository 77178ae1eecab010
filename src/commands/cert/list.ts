import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {facts} from '../../cli/render.js'
import {lifecycle} from '../../cli/services.js'
import type {CertListing} from '../../services/lifecycle/cert-lifecycle.js'

export default class CertList extends MfcCommand {
  static override summary = 'List the certificates mfc manages (certbot\'s `certificates`).'

  static override description = `One block per lineage in the store: names, expiry and days left, issuer, ACME profile, key,
the live paths to point a web server at, and the renewal plan (when it is due and why). Reads
only: no lock, no network. --json gives the same as a list of objects.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --cert-name mfc.example.org --json']

  static override flags = {
    'cert-name': Flags.string({description: 'Only this certificate (store name; repeatable).', multiple: true}),
  }

  async run(): Promise<{certificates: CertListing[]}> {
    const {flags} = await this.parse(CertList)
    const config = this.loadConfig(flags.config)
    const certificates = await (await lifecycle(config)).list(flags['cert-name'])
    if (certificates.length === 0) this.say(`No certificates in ${config.paths.storeDir}. Create one with \`mfc ssl init\` or adopt certbot's with \`mfc cert import --from-certbot\`.`)
    for (const c of certificates) {
      this.say(`Certificate Name: ${c.name}${c.configured ? '  (in ssl-config.json)' : ''}`)
      this.say(facts([
        ['Domains', c.domains.join(' ')], ['Expiry Date', `${c.notAfter} (${c.validity}: ${c.daysLeft} days)`],
        ['Issuer', `${c.issuer} [${c.issuerKind}]`], ['ACME directory', c.acmeDirectory], ['Profile', c.profile], ['Key Type', c.keyType],
        ['Serial', c.serial], ['Version', `${c.version} (${c.versions} kept)`],
        ['Certificate Path', c.paths.fullchainFile], ['Private Key Path', c.paths.keyFile],
        ['Renewal', c.renewal.renewable ? `${c.renewal.reason} (state: ${c.renewal.state})` : `manual: ${c.renewal.reason}`],
      ]))
      this.say()
    }

    return {certificates}
  }
}

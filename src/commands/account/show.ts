import {MfcCommand} from '../../cli/base-command.js'
import {accountDirectory, serverFlag} from '../../cli/account-flags.js'
import {facts} from '../../cli/render.js'
import {accounts} from '../../cli/services.js'
import type {AccountView} from '../../services/acme/account-service.js'

export default class AccountShow extends MfcCommand {
  static override summary = 'Show the ACME account mfc uses for a CA, as mfc and the CA see it.'

  static override description = `Prints the account URL, contact, key type and thumbprint from mfc's account directory, and asks
the CA for the account's status (valid, deactivated). The key itself is never printed. When the
CA cannot be asked the local facts are still shown, with the reason. Exit 4 when mfc has no
account for that CA.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --server https://acme-staging-v02.api.letsencrypt.org/directory --json']

  static override flags = {...serverFlag}

  async run(): Promise<AccountView> {
    const {flags} = await this.parse(AccountShow)
    const config = this.loadConfig(flags.config)
    const view = await (await accounts(config)).show(accountDirectory(config, flags.server))
    this.say(`ACME account at ${view.directory}`)
    this.say(facts([
      ['URL', view.url], ['Email', view.email || '(none)'], ['Created', view.createdAt], ['Key', `${view.keyType}, ${view.keyFile}`],
      ['Thumbprint', view.thumbprint], ['Status at CA', view.ca ? view.ca.status : `unknown (${view.caError})`],
      ['Contact at CA', view.ca?.contact.join(', ')], ['Key rollover', view.pendingRollover ? 'interrupted: run `mfc account rollover-key` again to finish it' : null],
    ]))
    return view
  }
}

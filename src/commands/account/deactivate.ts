import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {accountDirectory, serverFlag} from '../../cli/account-flags.js'
import {askConfirm} from '../../cli/prompts.js'
import {accounts} from '../../cli/services.js'
import {UsageError} from '../../lib/errors.js'

export default class AccountDeactivate extends MfcCommand {
  static override summary = 'Deactivate mfc\'s ACME account at a CA (certbot\'s `unregister`); cannot be undone.'

  static override description = `Tells the CA to deactivate the account (RFC 8555 §7.3.6): it can no longer order or revoke.
Certificates already issued stay valid. mfc's copy of the account is moved aside (kept, renamed
*.deactivated-<time>), so the next ACME certificate registers a new account. Asks on a terminal;
elsewhere --yes is the consent.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --server https://ca.internal/acme/directory --yes']

  static override flags = {
    ...serverFlag,
    yes: Flags.boolean({char: 'y', description: 'Do not ask (the consent for scripts).'}),
  }

  async run(): Promise<{url: string; status: string; movedTo: string}> {
    const {flags} = await this.parse(AccountDeactivate)
    const config = this.loadConfig(flags.config)
    const directory = accountDirectory(config, flags.server)
    if (this.canPrompt(flags.yes)) {
      if (!await askConfirm(`Deactivate the ACME account at ${directory}? This cannot be undone.`, false)) throw new UsageError('Nothing changed: the account stays active.', {code: 'MFC_USAGE', suggestions: []})
    } else if (!flags.yes) {
      throw new UsageError(`Deactivating the account at ${directory} needs consent: add --yes (no terminal to ask on).`, {code: 'MFC_USAGE', suggestions: ['mfc account deactivate --yes']})
    }

    const result = await (await accounts(config)).deactivate(directory, 'account deactivate')
    this.say(`Deactivated ${result.url} (the CA says "${result.status}"). mfc's copy moved to ${result.movedTo}.`)
    return result
  }
}

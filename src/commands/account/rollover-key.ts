import {MfcCommand} from '../../cli/base-command.js'
import {accountDirectory, serverFlag} from '../../cli/account-flags.js'
import {accounts} from '../../cli/services.js'

export default class AccountRolloverKey extends MfcCommand {
  static override summary = 'Replace the ACME account key with a new one (RFC 8555 keyChange), keeping the account.'

  static override description = `Generates a new ECDSA P-256 key, asks the CA to move the account to it, and only then makes
it mfc's account key (0600). The account URL, its certificates and its rate-limit history stay.
Crash-safe: an interrupted rollover is finished by running the command again. Do this when the
old key may have leaked.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --server https://ca.internal/acme/directory --json']

  static override flags = {...serverFlag}

  async run(): Promise<{url: string; oldThumbprint: string; newThumbprint: string; keyFile: string}> {
    const {flags} = await this.parse(AccountRolloverKey)
    const config = this.loadConfig(flags.config)
    const result = await (await accounts(config)).rolloverKey(accountDirectory(config, flags.server), 'account rollover-key')
    this.say(`Account ${result.url} now uses a new key (thumbprint ${result.newThumbprint}, was ${result.oldThumbprint}): ${result.keyFile}.`)
    return result
  }
}

import {MfcCommand} from '../../cli/base-command.js'
import {type ApiTokenReport, rotateToken} from '../../cli/api-token.js'

export default class ApiTokenRotate extends MfcCommand {
  static override summary = 'Replace the API token with a new random one where it lives (token file or cluster database).'

  static override description = `Writes a new 256-bit token where the current one lives: the token file (atomic, 0600), or in
cluster mode the cluster database, sealed with the storage key, for every node at once. A token
from MFC_API_TOKEN cannot be rotated here: change the variable. Running serves keep the token
they started with: restart each one (node by node in a cluster). The new token is not printed:
read it with \`mfc api-token show\`.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<ApiTokenReport> {
    const {flags} = await this.parse(ApiTokenRotate)
    const report = await rotateToken(this.loadConfig(flags.config))
    this.say(`Rotated the API token in ${report.where} (fingerprint ${report.fingerprint}). Read it with \`mfc api-token show\`; restart each running serve to use it.`)
    return report
  }
}

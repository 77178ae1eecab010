import {MfcCommand} from '../../cli/base-command.js'
import {type ApiTokenReport, showApiToken} from '../../cli/api-token.js'

export default class ApiTokenShow extends MfcCommand {
  static override summary = 'Print the API token that serve accepts, and where it lives.'

  static override description = `Resolves the token the way serve does: MFC_API_TOKEN, else api_token_file when configured,
else (cluster mode, "storage" set) the cluster database's sealed token, else the state
directory's api-token file. Prints the token alone on stdout (for $(mfc api-token show)) and
where it lives on stderr. With --json the token is left out: only its source, where it lives and
a fingerprint (to compare nodes). Exit 4 when no token exists yet.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {description: 'Use it for a request', command: 'curl -H "Authorization: Bearer $(<%= config.bin %> <%= command.id %>)" https://localhost:8443/status'},
    {description: 'Compare nodes without printing the secret', command: '<%= config.bin %> <%= command.id %> --json'},
  ]

  async run(): Promise<ApiTokenReport> {
    const {flags} = await this.parse(ApiTokenShow)
    const {token, ...report} = await showApiToken(this.loadConfig(flags.config))
    if (!this.jsonEnabled()) {
      this.log(token)
      process.stderr.write(`(from ${report.where}; fingerprint ${report.fingerprint})\n`)
    }

    return report
  }
}

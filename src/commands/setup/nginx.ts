import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {nginxOptions} from '../../services/deploy/from-config.js'
import {nginxSite} from '../../services/deploy/nginx.js'
import {writeGenerated} from '../../services/deploy/write-files.js'

export interface SetupNginxResult {
  path: string
  text: string
  written: boolean
  next: string[]
}

export default class SetupNginx extends MfcCommand {
  static override summary = 'Write the nginx reverse-proxy site for the API, dashboard and WSS streamer.'

  static override description = `The guide's nginx site, filled from the config: server_name from the certificate's names,
ssl_certificate/ssl_certificate_key from cert_file/key_file, upstream ports from the three
https/wss ports. Port 80 answers ACME HTTP-01 challenges (from "webroot", or proxied to mfc's
http_port) and redirects everything else to HTTPS; /api/ goes to the API, /ws/ to the streamer
(WebSocket upgrade), / to the dashboard. nginx verifies mfc's certificate against ca_file (the
local CA by default). Default output: /etc/nginx/sites-available/mfc-monitoring.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --dry-run',
    {description: 'Install and enable it', command: 'sudo <%= config.bin %> <%= command.id %> && sudo ln -s /etc/nginx/sites-available/mfc-monitoring /etc/nginx/sites-enabled/ && sudo nginx -t && sudo systemctl reload nginx'},
  ]

  static override flags = {
    'dry-run': Flags.boolean({description: 'Print the site to stdout; write nothing.'}),
    output: Flags.string({char: 'o', description: 'File to write.', default: '/etc/nginx/sites-available/mfc-monitoring'}),
    'listen-http': Flags.integer({description: 'Port nginx listens on for HTTP.', default: 80, min: 1, max: 65_535}),
    'listen-https': Flags.integer({description: 'Port nginx listens on for HTTPS.', default: 443, min: 1, max: 65_535}),
  }

  async run(): Promise<SetupNginxResult> {
    const {flags} = await this.parse(SetupNginx)
    const config = this.loadConfig(flags.config)
    const text = nginxSite(nginxOptions(config, {http: flags['listen-http'], https: flags['listen-https']}))
    const next = [`ln -s ${flags.output} /etc/nginx/sites-enabled/`, 'nginx -t', 'systemctl reload nginx']
    if (flags['dry-run']) {
      if (!this.jsonEnabled()) process.stdout.write(text)
      return {path: flags.output, text, written: false, next}
    }

    await writeGenerated([{path: flags.output, text, mode: 0o644}])
    this.say(`Wrote ${flags.output}.\nNext: ${next.join(' && ')}`)
    return {path: flags.output, text, written: true, next}
  }
}

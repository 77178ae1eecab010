import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {saveSettings} from '../../lib/config.js'
import {withLock} from '../../lib/lock.js'
import {nginxOptions, nodePorts, serveSettingsBehind} from '../../services/deploy/from-config.js'
import {nginxSite} from '../../services/deploy/nginx.js'
import {parseUpstreams} from '../../services/deploy/upstreams.js'
import {writeGenerated} from '../../services/deploy/write-files.js'

export interface SetupNginxResult {
  path: string
  text: string
  written: boolean
  /** Entries added to ssl-config.json's trusted_proxies / dashboard_origins (or that would be, with --dry-run). */
  serveSettingsAdded: string[]
  next: string[]
}

export default class SetupNginx extends MfcCommand {
  static override summary = 'Write the nginx reverse-proxy site for the API, dashboard and WSS streamer.'

  static override description = `The guide's nginx site, filled from the config: server_name from the certificate's names,
ssl_certificate/ssl_certificate_key from cert_file/key_file, upstream ports from the three
https/wss ports. Port 80 answers ACME HTTP-01 challenges (from "webroot", or proxied to mfc's
http_port) and redirects everything else to HTTPS; /api/ goes to the API, /ws/ to the streamer
(WebSocket upgrade), / to the dashboard. nginx verifies mfc's certificate against ca_file (the
local CA by default). Default output: /etc/nginx/sites-available/mfc-monitoring.

It also adds nginx to ssl-config.json's trusted_proxies (so serve sees each client's address in
X-Forwarded-For) and the proxy's https origins to dashboard_origins (so the streamer accepts
browsers coming through nginx); restart mfc serve afterwards.

--upstream host[:api-port],... puts N nodes behind it (cluster mode): one upstream group per
service, least connections for the stream. nginx OSS checks nodes passively only: a node that
fails twice in 10 s is skipped for 10 s, and the failed request is retried on the next node
(POST is never retried). Each node's ssl-config.json needs the settings the site's header
names (--proxy-address: the address the nodes see nginx connect from).`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --dry-run',
    {description: 'Install and enable it', command: 'sudo <%= config.bin %> <%= command.id %> && sudo ln -s /etc/nginx/sites-available/mfc-monitoring /etc/nginx/sites-enabled/ && sudo nginx -t && sudo systemctl reload nginx'},
  ]

  static override flags = {
    'dry-run': Flags.boolean({description: 'Print the site to stdout; write nothing.'}),
    output: Flags.string({char: 'o', description: 'File to write.', default: '/etc/nginx/sites-available/mfc-monitoring'}),
    'listen-http': Flags.integer({description: 'Port nginx listens on for HTTP.', default: 80, min: 1, max: 65_535}),
    'listen-https': Flags.integer({description: 'Port nginx listens on for HTTPS.', default: 443, min: 1, max: 65_535}),
    upstream: Flags.string({description: 'The nodes: host or host:api-port, comma-separated (default: this machine\'s serve on 127.0.0.1).'}),
    'proxy-address': Flags.string({description: 'The address the nodes see nginx connect from (their trusted_proxies entry).', default: '127.0.0.1'}),
  }

  async run(): Promise<SetupNginxResult> {
    const {flags} = await this.parse(SetupNginx)
    const config = this.loadConfig(flags.config)
    const upstreams = flags.upstream === undefined ? undefined : parseUpstreams(flags.upstream, nodePorts(config))
    const options = nginxOptions(config, {http: flags['listen-http'], https: flags['listen-https']}, {upstreams, proxyAddress: flags['proxy-address']})
    const text = nginxSite(options)
    const {added, ...serveSettings} = serveSettingsBehind(config, options)
    const next = [`ln -s ${flags.output} /etc/nginx/sites-enabled/`, 'nginx -t', 'systemctl reload nginx', ...(added.length > 0 ? ['mfc stop && mfc serve --daemon (or systemctl restart mfc)'] : [])]
    if (flags['dry-run']) {
      if (!this.jsonEnabled()) process.stdout.write(text)
      return {path: flags.output, text, written: false, serveSettingsAdded: added, next}
    }

    await writeGenerated([{path: flags.output, text, mode: 0o644}])
    if (added.length > 0) await withLock(config.paths.lockFile, 'setup nginx', () => saveSettings(config, serveSettings))
    this.say(`Wrote ${flags.output}.`)
    if (added.length > 0) this.say(`Added ${added.join(', ')} to ${config.paths.sslConfigFile} (trusted_proxies / dashboard_origins).`)
    this.say(`Next: ${next.join(' && ')}`)
    return {path: flags.output, text, written: true, serveSettingsAdded: added, next}
  }
}

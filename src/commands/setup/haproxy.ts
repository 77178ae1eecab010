import {dirname, join} from 'node:path'

import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {balancerOrigins, haproxyOptions, nodePorts} from '../../services/deploy/from-config.js'
import {type HaproxyTls, haproxyConfig} from '../../services/deploy/haproxy.js'
import {parseUpstreams} from '../../services/deploy/upstreams.js'
import {linkGenerated, writeGenerated} from '../../services/deploy/write-files.js'

export interface SetupHaproxyResult {
  path: string
  text: string
  written: boolean
  tls: HaproxyTls
  nodes: string[]
  /** terminate: the PEM haproxy serves, and whether it was linked to this machine's certificate. */
  crt: {file: string; linked: boolean} | null
  /** What every node's ssl-config.json needs (terminate mode). */
  nodeSettings: {trusted_proxies: string[]; dashboard_origins: string[]} | null
  next: string[]
}

export default class SetupHaproxy extends MfcCommand {
  static override summary = 'Write haproxy.cfg for N mfc serve nodes: API, dashboard, WSS streamer and port 80.'

  static override description = `Every node is health-checked on /health over verified TLS (a degraded node, whose database
is unreachable, is taken out; if all are, they stay reachable as backups). API and dashboard are
balanced round robin and the stream by least connections; no sticky sessions (sessions and the
API token are shared by the cluster). Port 80 sends ACME HTTP-01 challenges to any node and
redirects the rest to HTTPS.

--tls terminate (default): haproxy serves the certificate on one HTTPS port (--listen-https)
and routes /api/, /ws/ and / like \`setup nginx\`, re-encrypting to the nodes; nodes see each
client's address (add --proxy-address to their "trusted_proxies"). Without --crt it links
<output dir>/mfc.pem and mfc.pem.key to this machine's cert_file and key_file.
--tls passthrough: mode tcp on the three service ports; keys never leave the nodes, but the
nodes see haproxy as the only client (one per-IP rate limit budget for all).
An existing --output file is replaced only with --force. See docs/load-balancers.md.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --upstream 10.0.0.11,10.0.0.12,10.0.0.13 --proxy-address 10.0.0.10 --dry-run',
    {description: 'Keys stay on the nodes', command: 'sudo <%= config.bin %> <%= command.id %> --tls passthrough --upstream node1,node2,node3 --force && sudo haproxy -c -f /etc/haproxy/haproxy.cfg'},
  ]

  static override flags = {
    upstream: Flags.string({description: 'The nodes: host or host:api-port, comma-separated (default: this machine\'s serve on 127.0.0.1).'}),
    tls: Flags.string({description: 'terminate TLS at haproxy, or pass it through to the nodes.', options: ['terminate', 'passthrough'], default: 'terminate'}),
    'dry-run': Flags.boolean({description: 'Print the config to stdout; write nothing.'}),
    output: Flags.string({char: 'o', description: 'File to write.', default: '/etc/haproxy/haproxy.cfg'}),
    force: Flags.boolean({char: 'f', description: 'Replace the --output file if it exists (never done without this flag).'}),
    crt: Flags.string({description: 'terminate: PEM haproxy serves (cert + chain, key inside or in <crt>.key).'}),
    'proxy-address': Flags.string({description: 'The address the nodes see haproxy connect from (their trusted_proxies entry).', default: '127.0.0.1'}),
    'listen-http': Flags.integer({description: 'Port haproxy listens on for HTTP.', default: 80, min: 1, max: 65_535}),
    'listen-https': Flags.integer({description: 'terminate: the public HTTPS port.', default: 443, min: 1, max: 65_535}),
    'stats-socket': Flags.string({description: 'haproxy\'s admin socket (show servers state).', default: '/run/haproxy/admin.sock'}),
  }

  async run(): Promise<SetupHaproxyResult> {
    const {flags} = await this.parse(SetupHaproxy)
    const config = this.loadConfig(flags.config)
    const tls = flags.tls as HaproxyTls
    const ports = nodePorts(config)
    const upstreams = flags.upstream === undefined ? undefined : parseUpstreams(flags.upstream, ports)
    const crtFile = flags.crt ?? join(dirname(flags.output), 'mfc.pem')
    const listen = {http: flags['listen-http'], https: flags['listen-https'], api: ports.api, dashboard: ports.dashboard, streamer: ports.streamer}
    const options = haproxyOptions(config, {tls, upstreams, listen, crtFile, statsSocket: flags['stats-socket']})
    const text = haproxyConfig(options)
    const terminate = tls === 'terminate'
    const result: SetupHaproxyResult = {
      path: flags.output, text, written: false, tls, nodes: options.upstreams.map((u) => `${u.host}:${u.api}`),
      crt: terminate ? {file: crtFile, linked: false} : null,
      nodeSettings: terminate ? {trusted_proxies: [flags['proxy-address']], dashboard_origins: balancerOrigins(config, flags['listen-https'])} : null,
      next: [`haproxy -c -f ${flags.output}`, 'systemctl reload haproxy'],
    }
    if (flags['dry-run']) {
      if (!this.jsonEnabled()) process.stdout.write(text)
      return result
    }

    await writeGenerated([{path: flags.output, text, mode: 0o644}], {overwrite: flags.force === true})
    result.written = true
    if (terminate && flags.crt === undefined) {
      const linked = [await linkGenerated(crtFile, config.settings.cert_file), await linkGenerated(`${crtFile}.key`, config.settings.key_file)]
      result.crt = {file: crtFile, linked: linked.every((l) => l === 'linked')}
    }

    this.say(`Wrote ${flags.output} (TLS ${tls}, ${result.nodes.length} node(s): ${result.nodes.join(', ')}).`)
    if (result.crt) this.say(result.crt.linked ? `Linked ${crtFile}(.key) to ${config.settings.cert_file} and ${config.settings.key_file}; reload haproxy after each renewal.` : `haproxy serves ${crtFile}: put the certificate (and key, or ${crtFile}.key) there.`)
    if (result.nodeSettings) this.say(`On every node, add to ssl-config.json and restart serve: ${JSON.stringify(result.nodeSettings)}`)
    this.say(`Next: ${result.next.join(' && ')}`)
    return result
  }
}

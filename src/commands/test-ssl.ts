import {Args, Flags} from '@oclif/core'

import {currentApiToken} from '../cli/api-token.js'
import {MfcCommand} from '../cli/base-command.js'
import {systemClock} from '../lib/clock.js'
import {EXIT} from '../lib/errors.js'
import {runningServe} from '../services/daemon/reload.js'
import {type ProbeReport, TlsProbe, configuredPorts, configuredTargets, parseTarget, withApiToken} from '../services/probe/probe.js'

const MARK = {pass: 'PASS', fail: 'FAIL', warn: 'WARN', info: 'info', skip: 'skip'} as const

export default class TestSsl extends MfcCommand {
  static override summary = 'Check TLS on the three services (or any HOST:PORT): protocols, ciphers, chain, headers, WSS.'

  static override description = `Per target: TCP reachable, TLS handshake, protocols (TLS 1.0 and 1.1 must be refused, 1.2 and
1.3 accepted), weak cipher families refused (NULL/anonymous, EXPORT, RC4, 3DES, RSA key exchange,
CBC), chain trusted by the system store plus the configured CA (ca_file, --ca-file), hostname,
days to expiry, key type and size, session resumption; on HTTPS targets the security headers
(HSTS, CSP, nosniff, framing); on the streamer a WebSocket upgrade. Without arguments: the API,
dashboard and streamer of the running mfc serve (the ports in its pid file), else of the config.
The WSS upgrade presents mfc's API token to mfc's own names only. Exit 0 when nothing fails, 1
otherwise.
Deeper checks (Heartbleed, ROBOT, renegotiation...) need raw handshakes: use testssl.sh for those.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> mfc.example.org:443 --json',
    {description: 'An HTTPS service with headers, and a WSS endpoint', command: '<%= config.bin %> <%= command.id %> https://mfc.example.org/ wss://mfc.example.org/ws/'},
  ]

  static override strict = false

  static override args = {
    targets: Args.string({description: 'HOST:PORT (TLS only), https://HOST:PORT/path or wss://HOST:PORT/path. Repeatable.'}),
  }

  static override flags = {
    'ca-file': Flags.string({description: 'Also trust this CA (PEM) besides the system store and ca_file.', multiple: true}),
    servername: Flags.string({description: 'Name for SNI and the hostname check (default: the target host, or the config domain).'}),
    'ws-path': Flags.string({description: 'Path of the streamer\'s WebSocket endpoint (configured targets).', default: '/'}),
    verbose: Flags.boolean({char: 'v', description: 'Show every check, also those that passed and those that cannot run here.'}),
  }

  async run(): Promise<ProbeReport> {
    const {argv, flags} = await this.parse(TestSsl)
    const config = this.loadConfig(flags.config)
    const running = (await runningServe(config.paths.pidFile))?.ports
    const targets = argv.length > 0 ? (argv as string[]).map((t) => parseTarget(t, flags.servername)) : configuredTargets(config, flags['ws-path'], running)
    const ca = await TlsProbe.loadCa([config.settings.ca_file, ...(flags['ca-file'] ?? [])])
    const origin = `https://${config.settings.domain}:${configuredPorts(config, running).dashboard}`
    const report = await new TlsProbe(systemClock, ca, origin).run(withApiToken(targets, config, await currentApiToken(config)))
    this.render(report, flags.verbose)
    if (!report.ok) process.exitCode = EXIT.FAILURE
    return report
  }

  /** One line per target; below it only what failed or warned, unless --verbose (every check). */
  private render(report: ProbeReport, verbose: boolean): void {
    for (const target of report.targets) {
      const count = (status: string) => target.checks.filter((c) => c.status === status).length
      const tally = [`${count('pass')} passed`, ...(['fail', 'warn'] as const).filter((s) => count(s) > 0).map((s) => `${count(s)} ${s === 'fail' ? 'failed' : 'warned'}`)].join(', ')
      this.say(`${target.ok ? 'PASS' : 'FAIL'}  ${target.target} (${target.host}:${target.port}, ${target.kind}, ${target.durationMs} ms): ${tally}`)
      const shown = verbose ? target.checks : target.checks.filter((c) => c.status === 'fail' || c.status === 'warn')
      const width = Math.max(0, ...shown.map((c) => c.title.length))
      for (const c of shown) this.say(`  ${MARK[c.status]}  ${c.title.padEnd(width)}  ${c.detail}`)
    }

    if (!verbose) this.say('(--verbose shows every check.)')

    const failed = report.targets.filter((t) => !t.ok).length
    this.say(failed === 0 ? `All ${report.targets.length} target(s) passed in ${report.durationMs} ms.` : `${failed} of ${report.targets.length} target(s) failed (${report.durationMs} ms).`)
  }
}

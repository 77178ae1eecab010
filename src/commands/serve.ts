import {Flags} from '@oclif/core'
import {join} from 'node:path'

import {MfcCommand} from '../cli/base-command.js'
import {type Preparation, prepare, runServers, runSupervisor, startDaemon} from '../cli/serve-process.js'

export interface ServeEndpoint {
  name: string
  url: string
  port: number
}

export interface ServeResult {
  mode: 'foreground' | 'daemon'
  pid: number
  supervisorPid: number | null
  services: ServeEndpoint[]
  http: ServeEndpoint | null
  httpWarning: string | null
  bootstrappedCertificate: boolean
  tokenSource: string
  tokenFile: string | null
  logFile: string
}

const LABEL: Record<string, string> = {api: 'API', dashboard: 'Dashboard', streamer: 'Streamer', http: 'HTTP'}

export default class Serve extends MfcCommand {
  static override summary = 'Run the API (8443), dashboard (8444) and WSS streamer (8445) over TLS.'

  static override description = `All three servers run in this one process with the configured certificate (created through
the local CA when there is none yet). A plain-HTTP port (http_port, default 80) answers ACME
challenges and redirects to HTTPS; if it cannot be opened (not root) serve warns and goes on.
Every route but /health needs the API token (MFC_API_TOKEN, or the token file serve generates;
in cluster mode the one in the shared database; \`mfc api-token show\` prints it) or a dashboard login.
SIGHUP, or any change of the live certificate files, reloads the certificate without dropping
connections. Ctrl-C / SIGTERM stop gracefully.

With --daemon, serve returns once all three services answer their health checks and leaves a
supervisor that restarts the servers if they crash. Stop it with \`mfc stop\`, inspect it with
\`mfc status\`.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --daemon',
    {description: 'Other ports, no plain-HTTP port', command: '<%= config.bin %> <%= command.id %> --api-port 9443 --dashboard-port 9444 --stream-port 9445 --no-http'},
  ]

  static override flags = {
    daemon: Flags.boolean({char: 'd', description: 'Run in the background under a supervisor; return once healthy.'}),
    host: Flags.string({description: 'Address to listen on (default 0.0.0.0, or host / MFC_HOST).'}),
    'api-port': Flags.integer({description: 'API port (https_port_api, MFC_HTTPS_API_PORT).', min: 0, max: 65_535}),
    'dashboard-port': Flags.integer({description: 'Dashboard port (https_port_frontend, MFC_HTTPS_FRONTEND_PORT).', min: 0, max: 65_535}),
    'stream-port': Flags.integer({description: 'Streamer port (wss_port_streaming, MFC_WSS_STREAMING_PORT).', min: 0, max: 65_535}),
    'http-port': Flags.integer({description: 'Plain-HTTP port for ACME challenges and redirects (http_port).', min: 1, max: 65_535}),
    http: Flags.boolean({description: 'Open the plain-HTTP port (enable_http_port).', allowNo: true}),
    simulation: Flags.boolean({description: 'Start the default simulation with the servers (simulation_autostart, MFC_SIMULATION_AUTOSTART).', allowNo: true}),
    'start-timeout': Flags.integer({description: 'With --daemon: seconds to wait for the health checks.', default: 30}),
    supervisor: Flags.boolean({hidden: true, exclusive: ['daemon', 'worker']}),
    worker: Flags.boolean({hidden: true, exclusive: ['daemon', 'supervisor']}),
  }

  async run(): Promise<ServeResult | void> {
    const {flags} = await this.parse(Serve)
    const overrides = {
      host: flags.host, https_port_api: flags['api-port'], https_port_frontend: flags['dashboard-port'],
      wss_port_streaming: flags['stream-port'], http_port: flags['http-port'], enable_http_port: flags.http,
      simulation_autostart: flags.simulation,
    }
    const resolve = {configFile: flags.config, overrides}
    const passthrough = [
      ...(flags.config ? ['--config', flags.config] : []), ...(flags.debug ? ['--debug'] : []), ...(flags.host ? ['--host', flags.host] : []),
      ...(['api-port', 'dashboard-port', 'stream-port', 'http-port'] as const).flatMap((name) => flags[name] === undefined ? [] : [`--${name}`, String(flags[name])]),
      ...(flags.http === undefined ? [] : [flags.http ? '--http' : '--no-http']),
      ...(flags.simulation === undefined ? [] : [flags.simulation ? '--simulation' : '--no-simulation']),
    ]
    const bin = join(this.config.root, 'bin', 'run.js')
    if (flags.supervisor) {
      process.exitCode = await runSupervisor(this.loadConfig(flags.config, overrides), {version: this.config.version, bin, workerArgs: passthrough})
      return
    }

    const prep = await prepare(resolve, !flags.worker)
    if (flags.worker) {
      const session = await runServers(prep, {version: this.config.version, worker: true, pretty: false})
      await session.stopped
      // The IPC channel to the supervisor would keep this process alive.
      if (process.connected) process.disconnect()
      return
    }

    this.announce(prep)
    if (flags.daemon) return this.daemon(prep, bin, passthrough, flags['start-timeout'])
    const session = await runServers(prep, {version: this.config.version, worker: false, pretty: Boolean(process.stderr.isTTY) && !this.jsonEnabled()})
    const {info} = session
    const result: ServeResult = {
      mode: 'foreground', pid: process.pid, supervisorPid: null, services: info.services, http: info.http, httpWarning: info.httpWarning,
      bootstrappedCertificate: prep.bootstrapped !== null, tokenSource: prep.token.source, tokenFile: prep.token.file ?? null, logFile: prep.config.paths.logFile,
    }
    this.listening(result)
    this.say(`Certificate: serial ${info.certificate.serial}, ${info.certificate.daysLeft} days left (${prep.config.settings.cert_file}).`)
    this.say(`Logs: ${result.logFile}. Ctrl-C to stop.`)
    await session.stopped
    this.say('Stopped.')
    return result
  }

  private async daemon(prep: Preparation, bin: string, args: string[], timeoutSeconds: number): Promise<ServeResult> {
    const {record} = await startDaemon(prep, {bin, args, timeoutMs: timeoutSeconds * 1000})
    const domain = prep.config.settings.domain
    const endpoint = (name: string, scheme: string, port: number) => ({name, port, url: `${scheme}://${domain.includes(':') ? `[${domain}]` : domain}:${port}`})
    const result: ServeResult = {
      mode: 'daemon', pid: record.pid, supervisorPid: record.supervisorPid,
      services: [endpoint('api', 'https', record.ports.api), endpoint('dashboard', 'https', record.ports.dashboard), endpoint('streamer', 'wss', record.ports.streamer)],
      http: record.ports.http === null ? null : endpoint('http', 'http', record.ports.http),
      httpWarning: null,
      bootstrappedCertificate: prep.bootstrapped !== null, tokenSource: prep.token.source, tokenFile: prep.token.file ?? null, logFile: record.logFile,
    }
    this.listening(result)
    this.say(`Running in the background (pid ${record.pid}, supervisor ${record.supervisorPid}). Logs: ${record.logFile}`)
    this.say('`mfc status` shows it, `mfc stop` stops it.')
    return result
  }

  private announce(prep: Preparation): void {
    if (prep.bootstrapped) {
      this.say(`No certificate yet: created one for ${prep.bootstrapped.domains.join(', ')} through the local CA.`)
      this.say(`  Trust ${prep.bootstrapped.caFile} to avoid browser warnings (\`mfc ssl init --help\` shows how).`)
    }

    if (prep.token.source === 'generated') this.say(`Generated an API token (mode 0600). Read it with: cat ${prep.token.file}`)
    if (prep.token.source === 'cluster') this.say(`API token: the cluster's, from the shared database${prep.token.created ? ' (this node generated it)' : ''}. Read it with: mfc api-token show`)
    if (prep.token.warning) this.warn(prep.token.warning)
  }

  private listening(result: ServeResult): void {
    for (const service of [...result.services, ...(result.http ? [result.http] : [])]) {
      this.say(`${(LABEL[service.name] ?? service.name).padEnd(10)} ${service.url}${service.name === 'http' ? '  (ACME challenges, redirects to HTTPS)' : ''}`)
    }

    if (result.httpWarning) this.warn(result.httpWarning)
  }
}

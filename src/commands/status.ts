import {Flags} from '@oclif/core'

import {MfcCommand} from '../cli/base-command.js'
import {currentApiToken} from '../cli/api-token.js'
import {type ClusterStatusReport, clusterStatus} from '../cli/cluster-status.js'
import {facts, humanDuration, statusWord} from '../cli/render.js'
import {type StatusReport, collectStatus} from '../services/daemon/status.js'

const ICON = {healthy: 'OK', degraded: 'WARNING', down: 'CRITICAL'} as const

export default class Status extends MfcCommand {
  static override summary = 'Show whether the API, dashboard and streamer run and answer, and the certificate\'s days left.'

  static override description = `Reads the pid file and probes each service the way a client would: HTTPS GET /health on the
API and dashboard, an authenticated WSS handshake on the streamer, certificates verified against
the configured CA. Exit codes follow the Nagios convention: 0 all healthy, 1 degraded (some
service not answering, or /health reports a problem), 2 down, 3 unknown (status could not be
determined). A broken config file is a warning here: the pid file and the
ports it records are enough.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json',
    {description: 'Every node of a cluster (storage set): heartbeats, served serials, the renewal lock', command: '<%= config.bin %> <%= command.id %> --cluster'},
  ]

  static override flags = {
    cluster: Flags.boolean({description: 'Show every node of the cluster from the shared database (heartbeat, version, ports, served certificate serial; silent for cluster_lost_heartbeats heartbeats = lost) and who holds the renewal lock. Exit 0 all alive, 1 some lost, 2 none alive.'}),
  }

  static override nagios = true

  async run(): Promise<StatusReport | ClusterStatusReport> {
    const {flags} = await this.parse(Status)
    const config = this.loadConfig(flags.config, {}, {lenient: !flags.cluster})
    const report = flags.cluster ? await clusterStatus(config) : await collectStatus(config, {now: new Date(), token: await currentApiToken(config)})
    if ('nodes' in report) this.renderCluster(report)
    else this.render(report)
    process.exitCode = report.exitCode
    return report
  }

  private renderCluster(report: ClusterStatusReport): void {
    const alive = report.nodes.filter((n) => n.state === 'alive').length
    this.say(`${statusWord(alive === report.nodes.length && alive > 0 ? 'OK' : alive === 0 ? 'CRITICAL' : 'WARNING')}  ${alive} of ${report.nodes.length} node(s) alive in ${report.storage}`)
    for (const n of report.nodes) {
      const ports = `api ${n.ports.api}, dashboard ${n.ports.dashboard}, stream ${n.ports.streamer}${n.ports.http === null ? '' : `, http ${n.ports.http}`}`
      this.say(`  ${n.state === 'alive' ? '[up]  ' : '[lost]'} ${n.name}  mfc ${n.version}, pid ${n.pid} on ${n.host}; ${ports}; serial ${n.served?.serial ?? '-'}; last heartbeat ${n.silentSeconds} s ago`)
    }

    this.say(report.lock ? `  Renewal lock: held by ${report.lock.node ?? report.lock.holder} since ${report.lock.since}` : '  Renewal lock: free')
  }

  private render(report: StatusReport): void {
    this.say(`${statusWord(ICON[report.status])}  mfc serve is ${report.status === 'down' ? 'not running' : report.status}${report.mode ? ` (${report.mode})` : ''}`)
    this.say(facts([
      ['PID', report.pid ? `${report.pid}${report.supervisorPid ? ` (supervisor ${report.supervisorPid})` : ''}` : null],
      ['Uptime', report.uptimeSeconds === null ? null : humanDuration(report.uptimeSeconds)],
      ['Restarts', report.restarts > 0 ? report.restarts : null],
      ['Certificate', report.certificate.daysLeft === null ? report.certificate.error : `${report.certificate.daysLeft} days left (${report.certificate.file})`],
      ['Log', report.logFile],
    ]))
    for (const service of report.services) {
      const probe = service.healthy ? `healthy (${service.probe.latencyMs} ms)` : `not answering: ${service.probe.error}`
      this.say(`  ${service.healthy ? '[up]  ' : '[down]'} ${service.name.padEnd(9)} ${service.url}  ${probe}`)
    }

    if (report.mqtt) {
      const m = report.mqtt
      const as = m.username ? ` as ${m.username}` : ''
      const last = m.last_message_at ? `, last ${m.last_message_at}` : ''
      this.say(`  ${m.connected ? '[up]  ' : '[down]'} mqtt      ${m.url}${as} ${m.subscription}  ${m.connected ? 'connected' : 'not connected'}, ${m.messages} messages, ${m.rejected} rejected, ${m.reconnects} reconnects${last}`)
    }

    if (report.stalePidFile) this.say('  A stale pid file was found (its process is gone); the next `mfc serve` reclaims it.')
    for (const problem of report.problems) this.say(`  Problem: ${problem}`)
    for (const warning of report.warnings) this.say(`  Warning: ${warning}`)
    for (const cert of report.renewal?.certificates ?? []) {
      this.say(`  Renewal  ${cert.name}: last check ${cert.last_check ?? 'not yet'} (${cert.last_result ?? '-'}), next ${cert.next_renewal ?? 'at the next check'}, ${cert.consecutive_failures} failure(s) in a row`)
    }
  }
}

import {promises as fs} from 'node:fs'

import type {MfcConfig} from '../../lib/config.js'
import {NAGIOS, errnoCode} from '../../lib/errors.js'
import {parseCertificates} from '../certificates/inspect.js'
import {type ProbeResult, probeHttps, probeWss} from '../http-client.js'
import type {RenewalHealth} from '../servers/health.js'
import type {MqttStatus} from '../data/mqtt-subscriber.js'
import type {ServiceName} from '../servers/types.js'
import {PidFile, type PidRecord} from './pid-file.js'

export interface ServiceStatus {
  name: ServiceName
  url: string
  port: number
  healthy: boolean
  probe: ProbeResult
}

export interface StatusReport {
  status: 'healthy' | 'degraded' | 'down'
  /** Nagios: 0 all healthy, 1 degraded, 2 down (3 unknown is the command's, when this throws). */
  exitCode: number
  running: boolean
  mode: 'daemon' | 'foreground' | null
  pid: number | null
  supervisorPid: number | null
  startedAt: string | null
  uptimeSeconds: number | null
  restarts: number
  version: string | null
  logFile: string
  /** A pid file whose owner is gone was found (and left for the next serve to reclaim). */
  stalePidFile: boolean
  certificate: {file: string; daysLeft: number | null; notAfter: string | null; error: string | null}
  /**
   * Whether this machine trusts the served chain (system roots + ca_file). Services are probed
   * for liveness against the certificate itself, so an untrusted chain is a warning, not down.
   */
  trust: {trusted: boolean; error: string | null} | null
  services: ServiceStatus[]
  /** The running serve's MQTT subscription (GET /mqtt/status with the token); null when none is configured or it cannot be asked. */
  mqtt: MqttStatus | null
  problems: string[]
  /** Things to fix that do not stop the service (an untrusted chain, failing renewals). */
  warnings: string[]
  /** serve's certificate maintainer as /health reports it (null: not running, or auto_renew off). */
  renewal: RenewalHealth | null
}

/** The SHA-256 fingerprint of the leaf in a PEM file (undefined when unreadable). */
export async function leafFingerprint(file: string): Promise<string | undefined> {
  try {
    return parseCertificates(await fs.readFile(file, 'utf8'), file)[0]?.fingerprint256
  } catch {
    return undefined
  }
}

export interface StatusOptions {
  now: Date
  /** The API token, for the authenticated WSS handshake. */
  token?: string
  timeoutMs?: number
}

function probeHost(bindHost: string): string {
  if (bindHost === '0.0.0.0' || bindHost === '::' || bindHost === '') return '127.0.0.1'
  return bindHost.includes(':') ? `[${bindHost}]` : bindHost
}

async function certificateFacts(file: string, now: Date): Promise<StatusReport['certificate']> {
  try {
    const [leaf] = parseCertificates(await fs.readFile(file, 'utf8'), file)
    const notAfter = new Date(leaf.validTo)
    return {file, daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / 86_400_000), notAfter: notAfter.toISOString(), error: null}
  } catch (error) {
    return {file, daysLeft: null, notAfter: null, error: errnoCode(error) === 'ENOENT' ? 'no certificate yet' : (error as Error).message}
  }
}

/**
 * What `mfc status` reports: the pid file (daemon or foreground serve), a probe of each
 * service (HTTPS GET /health for the API and dashboard, an authenticated WSS handshake for the
 * streamer; certificates verified against the configured CA) and the certificate's days left.
 * Services are probed even without a pid file, so a serve started elsewhere is still seen.
 */
export async function collectStatus(config: MfcConfig, options: StatusOptions): Promise<StatusReport> {
  const {settings, paths} = config
  const state = await new PidFile(paths.pidFile).read()
  const record: PidRecord | undefined = state?.alive ? state.record : undefined
  const ports = record?.ports ?? {api: settings.https_port_api, dashboard: settings.https_port_frontend, streamer: settings.wss_port_streaming, http: null}
  const ca = settings.ca_file ? await fs.readFile(settings.ca_file, 'utf8').catch(() => null) : null
  const host = probeHost(settings.host)
  const pin = await leafFingerprint(settings.cert_file)
  const trustProbe = {ca, servername: settings.domain, timeoutMs: options.timeoutMs ?? 5000}
  // Liveness against the configured certificate itself; trust is judged by a separate probe.
  const common = pin ? {pin, servername: settings.domain, timeoutMs: options.timeoutMs ?? 5000} : trustProbe
  const shown = (scheme: string, port: number) => `${scheme}://${settings.domain.includes(':') ? `[${settings.domain}]` : settings.domain}:${port}`
  const [api, dashboard, streamer] = await Promise.all([
    probeHttps(`https://${host}:${ports.api}/health`, common),
    probeHttps(`https://${host}:${ports.dashboard}/health`, common),
    probeWss(`wss://${host}:${ports.streamer}/`, {...common, headers: options.token ? {authorization: `Bearer ${options.token}`} : undefined}),
  ])
  const services: ServiceStatus[] = [
    {name: 'api', url: shown('https', ports.api), port: ports.api, healthy: api.ok, probe: api},
    {name: 'dashboard', url: shown('https', ports.dashboard), port: ports.dashboard, healthy: dashboard.ok, probe: dashboard},
    {name: 'streamer', url: shown('wss', ports.streamer), port: ports.streamer, healthy: streamer.ok, probe: streamer},
  ]
  const problems = services.filter((s) => !s.healthy).map((s) => `${s.name}: ${s.probe.error ?? 'no answer'}`)
  const trust = pin && api.ok ? await trustOf(`https://${host}:${ports.api}/health`, trustProbe) : null
  const renewal = (api.body as {renewal?: RenewalHealth} | null)?.renewal ?? null
  const warnings = [
    ...(trust && !trust.trusted ? [`The certificate chain is not trusted on this machine (${trust.error}): clients without its root will refuse it. Fine for Let's Encrypt staging or a test CA; for production, issue from a trusted CA, or set ca_file to the private CA's root.`] : []),
    ...(renewal?.certificates ?? []).filter((c) => c.consecutive_failures > 0).map((c) => `Renewing "${c.name}" failed ${c.consecutive_failures} time(s) in a row; next try ${c.next_renewal ?? 'unknown'} (see the log).`),
  ]
  const report = (api.body as {problems?: string[]} | null)?.problems
  if (api.status === 503 && report) problems.push(...report)
  const mqtt = api.ok && options.token ? await mqttFacts(`https://${host}:${ports.api}/mqtt/status`, {...common, headers: {authorization: `Bearer ${options.token}`}}) : null
  if (mqtt && !mqtt.connected) problems.push(`mqtt: not connected to ${mqtt.url}${mqtt.last_error ? ` (${mqtt.last_error})` : ''}`)
  const healthyCount = services.filter((s) => s.healthy).length
  // Down: nothing accepts connections. A TLS or auth failure means something runs, but wrong.
  const unreachable = (probe: ProbeResult) => probe.status === null && /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|CONNECT_TIMEOUT|timed out|aborted/i.test(probe.error ?? '')
  const status = healthyCount === 3 && problems.length === 0 ? 'healthy' : healthyCount === 0 && unreachable(api) && unreachable(dashboard) ? 'down' : 'degraded'
  const startedAt = record?.startedAt ?? null
  return {
    status,
    exitCode: status === 'healthy' ? NAGIOS.OK : status === 'degraded' ? NAGIOS.WARNING : NAGIOS.CRITICAL,
    running: record !== undefined || healthyCount > 0,
    mode: record ? (record.supervisorPid ? 'daemon' : 'foreground') : null,
    pid: record?.pid ?? null,
    supervisorPid: record?.supervisorPid ?? null,
    startedAt,
    uptimeSeconds: startedAt ? Math.round((options.now.getTime() - new Date(startedAt).getTime()) / 1000) : null,
    restarts: record?.restarts ?? 0,
    version: record?.version ?? null,
    logFile: record?.logFile || paths.logFile,
    stalePidFile: state !== undefined && !state.alive,
    certificate: await certificateFacts(settings.cert_file, options.now),
    trust,
    services,
    mqtt,
    problems,
    warnings,
    renewal,
  }
}

async function trustOf(url: string, options: {ca: string | null; servername: string; timeoutMs: number}): Promise<NonNullable<StatusReport['trust']>> {
  const probe = await probeHttps(url, options)
  return probe.status === null ? {trusted: false, error: probe.error} : {trusted: true, error: null}
}

async function mqttFacts(url: string, options: Parameters<typeof probeHttps>[1]): Promise<MqttStatus | null> {
  const probe = await probeHttps(url, options)
  const body = probe.body as (MqttStatus & {configured?: boolean}) | null
  if (!probe.ok || !body?.configured) return null
  const {configured: _configured, ...status} = body
  return status
}

import {readFile} from 'node:fs/promises'
import {connect} from 'node:net'

import type {Clock} from '../../lib/clock.js'
import type {MfcConfig} from '../../lib/config.js'
import {UsageError} from '../../lib/errors.js'
import {type Check, type ProbeTarget, type TargetKind, check} from './check.js'
import {headerChecks, wssCheck} from './http-checks.js'
import {type CertificateFacts, certificateChecks, cipherChecks, defaultHandshakeCheck, protocolChecks} from './tls-checks.js'

export interface TargetReport {
  target: string
  host: string
  port: number
  servername: string
  kind: TargetKind
  ok: boolean
  durationMs: number
  facts: CertificateFacts | null
  checks: Check[]
}

export interface ProbeReport {
  ok: boolean
  durationMs: number
  targets: TargetReport[]
}

/** Where the three services listen: a running serve's actual ports (its pid file), else the config's. */
export interface ServicePorts {
  api: number
  dashboard: number
  streamer: number
}

export function configuredPorts(config: MfcConfig, running?: ServicePorts): ServicePorts {
  const {settings} = config
  return running ?? {api: settings.https_port_api, dashboard: settings.https_port_frontend, streamer: settings.wss_port_streaming}
}

/** The three configured services: the API and dashboard over HTTPS, the streamer over WSS. */
export function configuredTargets(config: MfcConfig, wsPath = '/', running?: ServicePorts): ProbeTarget[] {
  const {settings} = config
  const host = ['0.0.0.0', '::', ''].includes(settings.host) ? '127.0.0.1' : settings.host
  const ports = configuredPorts(config, running)
  return [
    {label: 'api', host, port: ports.api, servername: settings.domain, kind: 'https', path: '/health'},
    {label: 'dashboard', host, port: ports.dashboard, servername: settings.domain, kind: 'https', path: '/'},
    {label: 'streamer', host, port: ports.streamer, servername: settings.domain, kind: 'wss', path: wsPath},
  ]
}

/**
 * Gives mfc's API token to the WSS targets that are mfc's own (SNI name among the
 * certificate's names, loopback included for localhost), never to anyone else's server.
 */
export function withApiToken(targets: ProbeTarget[], config: MfcConfig, token: string | undefined): ProbeTarget[] {
  if (!token) return targets
  const {domains} = config.settings
  const own = new Set(domains.includes('localhost') ? [...domains, '127.0.0.1', '::1'] : domains)
  return targets.map((t) => (t.kind === 'wss' && own.has(t.servername) ? {...t, token} : t))
}

/**
 * `HOST:PORT` (TLS checks only), `https://HOST:PORT/path` (plus headers) or `wss://HOST:PORT/path`
 * (plus the upgrade). `[::1]:8443` for IPv6.
 */
export function parseTarget(text: string, servername?: string): ProbeTarget {
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `tls://${text}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw badTarget(text)
  }

  const kind = url.protocol.replace(':', '') as TargetKind
  if (!['tls', 'https', 'wss'].includes(kind) || !url.hostname) throw badTarget(text)
  const port = Number(url.port || (kind === 'tls' ? Number.NaN : 443))
  if (!Number.isInteger(port)) throw badTarget(text)
  const host = url.hostname.replace(/^\[|\]$/g, '')
  return {label: text, host, port, servername: servername ?? host, kind, path: kind === 'tls' ? '/' : `${url.pathname}${url.search}`}
}

function badTarget(text: string): UsageError {
  return new UsageError(`"${text}" is not a target.`, {code: 'MFC_USAGE', suggestions: ['Write HOST:PORT, https://HOST:PORT/path or wss://HOST:PORT/path.']})
}

function tcpCheck(target: ProbeTarget): Promise<Check> {
  return new Promise((resolve) => {
    const started = performance.now()
    const socket = connect({host: target.host, port: target.port, timeout: 5000})
    socket.once('connect', () => {
      socket.destroy()
      resolve(check('tcp', 'TCP reachable', 'pass', `${target.host}:${target.port} in ${(performance.now() - started).toFixed(1)} ms`))
    })
    socket.once('timeout', () => socket.destroy(new Error('timed out')))
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(check('tcp', 'TCP reachable', 'fail', `${target.host}:${target.port}: ${error.code ?? error.message}`)))
  })
}

/** Runs every check of every target, all targets at once; checks of one target run in parallel too. */
export class TlsProbe {
  constructor(private readonly clock: Clock, private readonly extraCa: string[], private readonly origin: string) {}

  static async loadCa(files: (string | null | undefined)[]): Promise<string[]> {
    const wanted = files.filter((f): f is string => Boolean(f))
    return Promise.all(wanted.map((file) => readFile(file, 'utf8').catch((error: Error) => {
      throw new UsageError(`Cannot read the CA file ${file}: ${error.message}`, {code: 'MFC_USAGE', suggestions: ['Pass an existing PEM file with --ca-file, or fix "ca_file" in ssl-config.json.']})
    })))
  }

  async run(targets: ProbeTarget[]): Promise<ProbeReport> {
    const started = performance.now()
    const reports = await Promise.all(targets.map((t) => this.probe(t)))
    return {ok: reports.every((r) => r.ok), durationMs: Math.round(performance.now() - started), targets: reports}
  }

  private async probe(target: ProbeTarget): Promise<TargetReport> {
    const started = performance.now()
    const tcp = await tcpCheck(target)
    let checks: Check[] = [tcp]
    let facts: CertificateFacts | null = null
    if (tcp.status === 'pass') {
      const [handshake, protocols, ciphers, cert, http] = await Promise.all([
        defaultHandshakeCheck(target), protocolChecks(target), cipherChecks(target), certificateChecks(target, this.extraCa, this.clock.now()),
        target.kind === 'https' ? headerChecks(target, this.extraCa) : target.kind === 'wss' ? wssCheck(target, this.extraCa, this.origin).then((c) => [c]) : Promise.resolve([]),
      ])
      facts = cert.facts
      checks = [tcp, handshake, ...protocols, ...ciphers, ...cert.checks, ...http]
    }

    return {
      target: target.label, host: target.host, port: target.port, servername: target.servername, kind: target.kind,
      ok: !checks.some((c) => c.status === 'fail'), durationMs: Math.round(performance.now() - started), facts, checks,
    }
  }
}

import {type Clock, systemClock} from '../../lib/clock.js'
import type {MfcConfig} from '../../lib/config.js'
import {NetworkError, errnoCode} from '../../lib/errors.js'
import {MfcEventBus} from '../../lib/events.js'
import type {Logger} from '../../lib/logger.js'
import type {ApiToken, SessionReplica} from './auth.js'
import {HealthRegistry} from './health.js'
import {SecurityContext} from './security.js'
import {type ReloadOutcome, TlsContextManager} from './tls-context.js'
import type {ManagedServer, ServerPlugin, ServiceName, StreamHub} from './types.js'

export interface ServeRuntimeOptions {
  config: MfcConfig
  logger: Logger
  apiToken: ApiToken
  /** mfc's version (shown to authenticated callers only). */
  version: string
  clock?: Clock
  /** `cert:renewed` on this bus reloads the certificate (an in-process renewal). */
  events?: MfcEventBus
  apiPlugins?: readonly ServerPlugin[]
  dashboardPlugins?: readonly ServerPlugin[]
  dashboardAssetsDir?: string | null
  hub?: StreamHub
  /** Cluster mode: dashboard sessions shared with the other nodes. */
  sessions?: SessionReplica
  /** Cluster mode: the shared HTTP-01 tokens the plain-HTTP port answers from (see buildHttpRedirectServer). */
  challengeTokens?: {lookup(token: string): Promise<string | undefined>}
  /** Listening ports instead of the config's (tests pass 0); http null: no plain-HTTP port. */
  ports?: Partial<{api: number; dashboard: number; streamer: number; http: number | null}>
}

export interface Endpoint {
  name: ServiceName | 'http'
  port: number
  /** The URL to open (the certificate's primary name, not the bind address). */
  url: string
}

export interface ServeInfo {
  services: Endpoint[]
  /** The plain-HTTP port (ACME challenges + redirect), or null when disabled or not bindable. */
  http: Endpoint | null
  /** Why the plain-HTTP port is not open, when it was wanted. */
  httpWarning: string | null
  certificate: {serial: string; notAfter: string; daysLeft: number; file: string}
}

const FLAG_OF: Record<Endpoint['name'], string> = {api: '--api-port', dashboard: '--dashboard-port', streamer: '--stream-port', http: '--http-port'}

function urlHost(name: string): string {
  return name.includes(':') ? `[${name}]` : name
}

/**
 * The three servers of `mfc serve` (plus the plain-HTTP port) in one process, sharing one
 * TLS manager and one security context. `start()` listens on all of them or none;
 * `reload()` swaps the certificate everywhere (SIGHUP, file change, `cert:renewed`);
 * `close()` stops accepting, lets in-flight requests finish (up to shutdown_timeout_ms) and is
 * idempotent.
 */
export class ServeRuntime {
  readonly tls: TlsContextManager
  readonly health: HealthRegistry
  security?: SecurityContext
  private readonly servers: ManagedServer[] = []
  private http?: ManagedServer
  private unsubscribe?: () => void
  private closing?: Promise<void>

  constructor(private readonly options: ServeRuntimeOptions) {
    const {config, logger} = options
    const clock = options.clock ?? systemClock
    this.tls = new TlsContextManager({
      certFile: config.settings.cert_file, keyFile: config.settings.key_file, ciphers: config.settings.ciphers,
      sslVersion: config.settings.ssl_version, logger: logger.child({component: 'tls'}), clock, events: options.events,
      ticketRotationMs: config.settings.tls_ticket_rotation_seconds * 1000,
    })
    this.health = new HealthRegistry(clock, () => (this.tlsLoaded ? this.tls.current : undefined))
  }

  private tlsLoaded = false

  async start(): Promise<ServeInfo> {
    const {config, logger, options} = {config: this.options.config, logger: this.options.logger, options: this.options}
    await this.tls.load()
    this.tlsLoaded = true
    const names = config.settings.domains.includes('localhost') ? [...new Set([...config.settings.domains, '127.0.0.1', '::1'])] : config.settings.domains
    const security = await SecurityContext.create(config, options.apiToken, logger.child({component: 'security'}), names)
    this.security = security
    if (options.sessions) security.sessions.share(options.sessions)
    const [{buildApiServer}, {buildDashboardServer}, {buildStreamServer}] = await Promise.all([
      import('./api-server.js'), import('./dashboard-server.js'), import('./stream-server.js'),
    ])
    const common = {config, tls: this.tls, security, health: this.health}
    const built: ManagedServer[] = [
      await buildApiServer({...common, logger: logger.child({service: 'api'}), version: options.version, plugins: options.apiPlugins}),
      await buildDashboardServer({...common, logger: logger.child({service: 'dashboard'}), assetsDir: options.dashboardAssetsDir, plugins: options.dashboardPlugins}),
      await buildStreamServer({...common, logger: logger.child({service: 'streamer'}), hub: options.hub}),
    ]
    this.servers.push(...built)

    const wanted = {api: options.ports?.api ?? config.settings.https_port_api, dashboard: options.ports?.dashboard ?? config.settings.https_port_frontend, streamer: options.ports?.streamer ?? config.settings.wss_port_streaming}
    const endpoints = await this.listenAll(built, wanted)
    const port = (name: ServiceName) => endpoints.find((e) => e.name === name)!.port
    security.setPorts({api: port('api'), dashboard: port('dashboard'), streamer: port('streamer')})
    for (const endpoint of endpoints) this.health.set(endpoint.name as ServiceName, 'running')

    const {http, httpWarning} = await this.startHttp(port('dashboard'))
    await this.tls.watch()
    this.tls.startTicketRotation()
    this.unsubscribe = options.events?.on('cert:renewed', () => void this.reload('in-process renewal'))
    const material = this.tls.current
    return {
      services: endpoints,
      http,
      httpWarning,
      certificate: {serial: material.serial, notAfter: material.notAfter.toISOString(), daysLeft: this.tls.daysLeft(), file: material.certPath},
    }
  }

  reload(reason: string): Promise<ReloadOutcome> {
    return this.tls.reload(reason)
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.unsubscribe?.()
      this.tls.close()
      for (const server of this.servers) if (server.name !== 'http') this.health.set(server.name, 'stopping')
      const grace = this.options.config.settings.shutdown_timeout_ms
      await Promise.all([...this.servers.map((server) => server.close(grace)), this.http?.close()])
      for (const server of this.servers) if (server.name !== 'http') this.health.set(server.name, 'stopped')
    })()
    return this.closing
  }

  private async listenAll(built: ManagedServer[], wanted: Record<ServiceName, number>): Promise<Endpoint[]> {
    const {settings} = this.options.config
    const results = await Promise.allSettled(built.map((server) => server.listen(wanted[server.name as ServiceName], settings.host)))
    const failed = results.findIndex((r) => r.status === 'rejected')
    if (failed >= 0) {
      await Promise.all(built.map((server) => server.close(0)))
      const name = built[failed].name
      throw this.bindError(name, wanted[name as ServiceName], (results[failed] as PromiseRejectedResult).reason)
    }

    return results.map((r, i) => {
      const {port} = (r as PromiseFulfilledResult<{port: number}>).value
      const scheme = built[i].name === 'streamer' ? 'wss' : 'https'
      return {name: built[i].name, port, url: `${scheme}://${urlHost(settings.domain)}:${port}`}
    })
  }

  /** The plain-HTTP port is a convenience: failing to bind it (not root, taken) is a warning. */
  private async startHttp(dashboardPort: number): Promise<{http: Endpoint | null; httpWarning: string | null}> {
    const {config, logger} = this.options
    const port = this.options.ports?.http === undefined ? config.settings.http_port : this.options.ports.http
    if (!config.settings.enable_http_port || port === null) return {http: null, httpWarning: null}
    const {buildHttpRedirectServer} = await import('./http-redirect-server.js')
    const server = buildHttpRedirectServer({
      challengeDir: config.paths.challengeDir, tokens: this.options.challengeTokens, httpsPort: dashboardPort, fallbackHost: config.settings.domain,
      ipFilter: this.security!.ipFilter, headersTimeoutMs: config.settings.headers_timeout_ms,
    })
    try {
      const {port: actual} = await server.listen(port, config.settings.host)
      this.http = server
      return {http: {name: 'http', port: actual, url: `http://${urlHost(config.settings.domain)}:${actual}`}, httpWarning: null}
    } catch (error) {
      await server.close()
      const why = errnoCode(error) === 'EACCES' ? 'needs root or CAP_NET_BIND_SERVICE' : errnoCode(error) === 'EADDRINUSE' ? 'is in use' : (error as Error).message
      const warning = `HTTP port ${port} ${why}: no HTTP->HTTPS redirect and no ACME challenge answers (set http_port, or enable_http_port false).`
      logger.warn({port, err: (error as Error).message}, warning)
      return {http: null, httpWarning: warning}
    }
  }

  private bindError(name: Endpoint['name'], port: number, error: unknown): NetworkError {
    const code = errnoCode(error)
    const reason = code === 'EADDRINUSE' ? 'is already in use' : code === 'EACCES' ? 'needs root (or CAP_NET_BIND_SERVICE)' : `cannot be opened (${(error as Error).message})`
    return new NetworkError(`The ${name} port ${port} ${reason}.`, {
      code: code === 'EADDRINUSE' ? 'MFC_PORT_IN_USE' : code === 'EACCES' ? 'MFC_PORT_DENIED' : 'MFC_LISTEN_FAILED',
      cause: error,
      suggestions: [code === 'EADDRINUSE' ? `Stop what listens there (\`ss -ltnp 'sport = :${port}'\`), or pick another port with ${FLAG_OF[name]}.` : `Pick another port with ${FLAG_OF[name]} (or in ${this.options.config.paths.sslConfigFile}).`],
    })
  }
}

import type {MfcConfig} from '../../lib/config.js'
import type {Logger} from '../../lib/logger.js'
import {type HealthRegistry, isoAt} from './health.js'
import {JSON_TYPE} from './health-route.js'
import {createHttpsApp, managed, registerPlugins} from './http-app.js'
import type {SecurityContext} from './security.js'
import type {TlsContextManager} from './tls-context.js'
import type {ManagedServer, ServerPlugin} from './types.js'

export interface ApiServerOptions {
  config: MfcConfig
  tls: TlsContextManager
  security: SecurityContext
  health: HealthRegistry
  logger: Logger
  /** mfc's version, shown to authenticated callers only. */
  version: string
  /**
   * Extra routes (the monitoring endpoints). Registered after the security layer: every
   * route they add needs auth and gets the headers, limits and JSON errors. Stable contract.
   */
  plugins?: readonly ServerPlugin[]
}

const ENDPOINT_KEYS = [['health', '/health'], ['system_info', '/system/info'], ['simulation', '/simulation'], ['data', '/data'], ['metrics', '/metrics'], ['alerts', '/alerts']] as const

/**
 * Builds the API server (unstarted): `GET /health` (public; 503 when degraded; see
 * createHttpsApp), `GET /` (the
 * service index) and `GET /system/info` behind auth, then the plugins' routes.
 */
export async function buildApiServer(options: ApiServerOptions): Promise<ManagedServer> {
  const {config, health, tls} = options
  // `routes`: every route the API ends up with (the plugins' included), for the index at `GET /`.
  const {app, server, routes} = await createHttpsApp({...options, service: 'api'})
  const listeningPort = () => {
    const address = server.address()
    return typeof address === 'object' && address ? address.port : config.settings.https_port_api
  }

  // The original's keys, each naming a route that exists (its prefixes answered 404). Routes
  // are fixed once the server is ready, so the index is built on the first request.
  let endpoints: Record<string, string> | undefined
  const endpointIndex = () => endpoints ??= Object.fromEntries(ENDPOINT_KEYS.flatMap(([key, prefix]) => {
    const gets = routes.filter((r) => r.startsWith('GET ')).map((r) => r.slice(4))
    const found = gets.find((url) => url === prefix) ?? gets.find((url) => url.startsWith(prefix + '/'))
    return found ? [[key, found]] : []
  }))
  // The index changes only with the clock: its JSON text is built at most once per millisecond.
  let index: {at: number; body: string} | undefined
  // A hot route: a sync handler (no promise per request) sending memoized JSON text.
  app.get('/', (_request, reply) => {
    const now = Date.now()
    if (index?.at !== now) {
      index = {at: now, body: JSON.stringify({
        service: 'MFC Monitoring Dashboard API',
        version: options.version,
        status: 'running',
        ssl_enabled: true,
        timestamp: isoAt(now),
        endpoints: endpointIndex(),
        routes,
      })}
    }

    reply.type(JSON_TYPE).send(index.body)
  })

  app.get('/system/info', async () => ({
    system: {node_version: process.version, platform: process.platform, arch: process.arch, api_version: options.version, ssl_enabled: true, pid: process.pid},
    ssl_config: {
      domain: config.settings.domain,
      domains: config.settings.domains,
      https_port: listeningPort(),
      certificate_file: config.settings.cert_file,
      certificate_serial: tls.current.serial,
      certificate_not_after: tls.current.notAfter.toISOString(),
      auto_renewal: config.settings.auto_renew,
      hsts: config.settings.enable_hsts,
      csp: config.settings.enable_csp,
    },
    health: health.report(),
    timestamp: new Date().toISOString(),
  }))

  await registerPlugins(app, options.plugins ?? [], 'API')
  return managed('api', app, server)
}

import type {MfcConfig} from '../../lib/config.js'
import type {Logger} from '../../lib/logger.js'
import {type HealthRegistry, isoAt} from './health.js'
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

const JSON_TYPE = 'application/json; charset=utf-8'

const SERVICE_INDEX_SCHEMA = {
  type: 'object',
  properties: {
    service: {type: 'string'},
    version: {type: 'string'},
    status: {type: 'string'},
    ssl_enabled: {type: 'boolean'},
    timestamp: {type: 'string'},
    endpoints: {type: 'object', properties: {health: {type: 'string'}, system_info: {type: 'string'}}, required: ['health', 'system_info']},
  },
  required: ['service', 'version', 'status', 'ssl_enabled', 'timestamp', 'endpoints'],
} as const

/**
 * Builds the API server (unstarted): `GET /health` (public; 503 when degraded), `GET /` (the
 * service index) and `GET /system/info` behind auth, then the plugins' routes.
 */
export async function buildApiServer(options: ApiServerOptions): Promise<ManagedServer> {
  const {config, health, tls} = options
  const {app, server} = await createHttpsApp({...options, service: 'api'})

  // Hot routes: sync handlers (no promise per request); /health sends the registry's JSON text,
  // / has a compiled serializer.
  app.get('/health', {config: {public: true}}, (_request, reply) => {
    const answer = health.answer()
    reply.code(answer.statusCode).type(JSON_TYPE).send(answer.body)
  })

  const endpoints = {health: '/health', system_info: '/system/info'}
  app.get('/', {schema: {response: {200: SERVICE_INDEX_SCHEMA}}}, (_request, reply) => {
    reply.send({
      service: 'MFC Monitoring Dashboard API',
      version: options.version,
      status: 'running',
      ssl_enabled: true,
      timestamp: isoAt(Date.now()),
      endpoints,
    })
  })

  app.get('/system/info', async () => ({
    system: {node_version: process.version, platform: process.platform, arch: process.arch, api_version: options.version, ssl_enabled: true, pid: process.pid},
    ssl_config: {
      domain: config.settings.domain,
      domains: config.settings.domains,
      https_port: config.settings.https_port_api,
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

import {type Server as HttpsServer, createServer} from 'node:https'
import type {IncomingMessage} from 'node:http'
import type {Socket} from 'node:net'

// The only importer of fastify: the API and dashboard servers are built here.
import Fastify, {type FastifyError, type FastifyInstance, type FastifyReply, LogController} from 'fastify'

import type {MfcConfig} from '../../lib/config.js'
import type {Logger} from '../../lib/logger.js'
import type {ErrorCode} from '../../lib/errors.js'
import {CAN_PREPEND_HEADERS, type HeaderBlock, responseClassWithHeaders} from './header-block.js'
import {SESSION_COOKIE, readCookie} from './auth.js'
import type {HealthRegistry} from './health.js'
import {HEALTH_PATH, JSON_TYPE, PUBLIC_POLICY, withHealthFastPath} from './health-route.js'
import {type JsonBodyParser, withFastRoutes} from './fast-route.js'
import type {Admission, SecurityContext} from './security.js'
import type {TlsContextManager} from './tls-context.js'
import type {FastJsonRoute, ManagedServer, ResponseObserver, ServerPlugin} from './types.js'

export interface HttpsAppOptions {
  service: 'api' | 'dashboard'
  config: MfcConfig
  tls: TlsContextManager
  security: SecurityContext
  logger: Logger
  /** Answers the public `GET /health` of this server (see health-route.ts for its fast path). */
  health: HealthRegistry
  /** Where an unauthenticated browser page load is sent instead of a 401 (the dashboard's /login). */
  loginRedirect?: string
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'MFC_BAD_REQUEST', 404: 'MFC_NOT_FOUND', 405: 'MFC_METHOD_NOT_ALLOWED', 413: 'MFC_BODY_TOO_LARGE', 414: 'MFC_URI_TOO_LONG',
  415: 'MFC_UNSUPPORTED_MEDIA_TYPE', 429: 'MFC_RATE_LIMITED', 503: 'MFC_UNAVAILABLE',
}

/**
 * `https.createServer` with the TLS hardening and the slowloris / connection limits. With
 * `headers`, every response carries that block (see header-block.ts); when this Node cannot do
 * that, the caller must set the headers per response: check `presetsHeaders(server)`.
 */
export function createHardenedHttpsServer(
  config: MfcConfig, tls: TlsContextManager, handler?: Parameters<typeof createServer>[1], headers?: () => HeaderBlock,
): HttpsServer {
  const {headers_timeout_ms: headersTimeout, request_timeout_ms: requestTimeout, max_connections: maxConnections} = config.settings
  const server = createServer({
    ...tls.serverOptions(),
    ...(headers && presetsHeaders(config) ? {ServerResponse: responseClassWithHeaders(headers)} : {}),
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: 5000,
    // Node checks the two timeouts above only this often (default 30 s).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 2))),
  }, handler)
  server.maxConnections = maxConnections
  return server
}

/**
 * False when the security headers must be set per response: this Node lacks the hook the
 * header block needs, or `security_header_block` is off (an escape hatch, should a Node release
 * change that internal; same headers, slower).
 */
export function presetsHeaders(config: MfcConfig): boolean {
  return CAN_PREPEND_HEADERS && config.settings.security_header_block
}

/**
 * Calls `observer` for every response `app` sends, /health's fast-path answers included. `app`
 * is the server's root instance (a plugin marked skip-override gets that one; see
 * registerPlugins): the fast path skips fastify's hooks, so an onSend hook alone would miss it.
 */
export function onEveryResponse(app: FastifyInstance, observer: ResponseObserver): void {
  // onSend, not onResponse: that would cost 'finish'/'error' listeners on every response.
  app.addHook('onSend', (request, reply, payload, done) => {
    observer(request.method, request.routeOptions.url, reply.statusCode)
    done(null, payload)
  })
  // A decoration, not a module-level map: the app carries its list wherever this module is loaded from.
  app.mfcResponseObservers.push(observer)
}

/**
 * Lets the server answer `route` before fastify when it can (see fast-route.ts); the plugin's
 * fastify route for the same URL stays and answers every other request. Call it while plugins
 * register; one route per URL.
 */
export function addFastJsonRoute(app: FastifyInstance, route: FastJsonRoute): void {
  app.mfcFastRoutes.set(route.url, route)
}

/**
 * A fastify app on a hardened node:https server with the security layer in front of every
 * route: headers, CORS for the dashboard origins, IP lists, rate limits, auth, CSRF, JSON
 * errors, and the public `GET /health`. Other routes are registered by the caller; then
 * `plugins`. `routes`: every route the app ends up with ("GET /health", ...; no HEAD).
 */
export async function createHttpsApp(options: HttpsAppOptions): Promise<{app: FastifyInstance; server: HttpsServer; routes: readonly string[]}> {
  const {config, tls, security, logger, service, health} = options
  let server!: HttpsServer
  const observers: ResponseObserver[] = []
  const refused = new WeakMap<IncomingMessage, Admission>()
  const fastRoutes = new Map<string, FastJsonRoute>()
  // Set once the app exists (the parser comes from it); the fast routes call it per request.
  let parseJson: JsonBodyParser = () => undefined
  let closing = false
  const app = Fastify({
    logger: false,
    // Not even a no-op log call with a fresh object per request.
    logController: new LogController({disableRequestLogging: true}),
    bodyLimit: config.settings.body_limit_bytes,
    return503OnClosing: true,
    // A malformed URL or an over-long path parameter is answered before any hook runs: give it
    // mfc's error shape (and the headers, when they are set per response) like every other 4xx.
    frameworkErrors(error, _request, reply: FastifyReply) {
      if (!presetsHeaders(config)) reply.headers(security.securityHeaders(service))
      const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
      const message = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'A URL path segment is too long' : 'The URL is not valid'
      void reply.code(status).send({error: {code: CODE_BY_STATUS[status] ?? 'MFC_BAD_REQUEST', message}})
    },
    serverFactory(handler) {
      const perResponseHeaders = !presetsHeaders(config)
      const routed = withFastRoutes(handler, {service, security, routes: fastRoutes, parseJson: (text, done) => parseJson(text, done), perResponseHeaders, observers, refused, closing: () => closing})
      const fast = config.settings.health_fast_path ? withHealthFastPath(routed, {service, security, health, perResponseHeaders, observers, refused, closing: () => closing}) : routed
      server = createHardenedHttpsServer(config, tls, fast, () => security.securityHeaderBlock(service))
      return server
    },
  })
  app.decorate('mfcResponseObservers', observers)
  app.decorate('mfcFastRoutes', fastRoutes)
  // fastify answers 503 from here on (return503OnClosing); the fast path steps aside for it.
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  tls.register(service, server)
  // Denied addresses never get a TLS handshake (unless they come through a trusted proxy).
  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress
    if (peer && !security.ipFilter.isTrustedProxy(peer) && security.ipFilter.isBlocked(peer)) socket.destroy()
  })

  // The route registry: every route this server ends up with (plugins' and static files'
  // included), logged once when ready, so tests and operators see the whole surface.
  const routes: string[] = []
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push(`${method} ${route.url}`)
  })
  app.addHook('onReady', (done) => {
    logger.info({service, routes}, 'Routes')
    done()
  })

  // JSON bodies deeper than MAX_JSON_DEPTH are a 400 before anything walks them: JSON.parse
  // copes, but JSON.stringify (an error echoing the input) and every recursive check overflow
  // the stack on a few kB of brackets, which would be a 500. fastify's own parser does the rest
  // (prototype-poisoning checks included).
  const defaultJson = app.getDefaultJsonParser('error', 'error')
  // One function for fastify's parser and the fast routes' (fast-route.ts): the same checks, the same errors.
  parseJson = (text, done) => {
    // fastify's default parser never reads its request argument; it calls back synchronously.
    void defaultJson(undefined as never, text, ((error: Error | null, value: unknown) => {
      if (error) return done(error, undefined)
      if (nestedDeeperThan(value, MAX_JSON_DEPTH)) {
        return done(Object.assign(new Error(`The JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`), {statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY'}), undefined)
      }

      done(null, value)
    }) as never)
  }

  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', {parseAs: 'string'}, (_request, body, done) => parseJson(body as string, done))

  app.decorateRequest('mfcAuth', null)
  app.decorateRequest('mfcProxyOrigin', null)
  const perResponseHeaders = !presetsHeaders(config)
  // Sync hook: no promise per request. The security headers come with every response from the
  // server's ServerResponse class, not from here; a dashboard page through a trusted proxy
  // sets its own CSP (its headers replace the block's).
  // Cluster mode only: a session cookie this node has not seen is looked up in the shared
  // storage first (once), so a login on one node works on all.
  if (security.sessions.shared) {
    app.addHook('onRequest', (request, _reply, done) => {
      const unknown = request.headers.authorization === undefined ? security.sessions.unknownShared(readCookie(request.headers.cookie, SESSION_COOKIE)) : undefined
      if (unknown === undefined) return done()
      void security.sessions.adoptShared(unknown).then(() => done())
    })
  }

  app.addHook('onRequest', (request, reply, done) => {
    const proxied = service === 'dashboard' ? security.proxiedOrigin(request.raw) : undefined
    request.mfcProxyOrigin = proxied ?? null
    if (perResponseHeaders || proxied !== undefined) reply.headers(security.securityHeaders(service, proxied))
    const origin = request.headers.origin
    const allowedOrigin = security.isAllowedOrigin(origin)
    const cors = () => {
      if (allowedOrigin) reply.header('access-control-allow-origin', origin).header('access-control-allow-credentials', 'true').header('vary', 'Origin')
    }
    if (request.method === 'OPTIONS' && origin && request.headers['access-control-request-method']) {
      // A preflight carries no credentials by design (the real request is checked next), but it
      // passes the IP lists and the rate limit like any other request.
      const client = security.admitClient(request.raw, service)
      if (!client.ok) return void deny(reply, client)
      if (!allowedOrigin) return void reply.code(403).send({error: {code: 'MFC_ORIGIN_DENIED', message: 'Origin not allowed'}})
      cors()
      return void reply.code(204).headers({
        'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE',
        'access-control-allow-headers': 'Authorization, Content-Type, X-CSRF-Token',
        'access-control-max-age': '600',
      }).send()
    }

    // /health's fast path already ran the gate on a request it refused: answer that decision.
    const admission = refused.get(request.raw) ?? security.admit(request.raw, request.routeOptions.config?.public === true ? PUBLIC_POLICY : PRIVATE_POLICY, service)
    if (admission.ok) {
      cors()
      request.mfcAuth = admission.auth
      return done()
    }

    // A client the lists refuse learns nothing, not even which origins are allowed.
    if (admission.status !== 403 || admission.code === 'MFC_CSRF') cors()
    if (admission.status === 401 && options.loginRedirect && request.method === 'GET' && request.headers.accept?.includes('text/html')) {
      return void reply.redirect(options.loginRedirect, 303)
    }

    deny(reply, admission)
  })
  if (service === 'dashboard') {
    // The API's headers carry no-store for every answer; the dashboard's cannot (its pages and
    // scripts may be cached), so its JSON answers (the CSRF token, data routes) get it here.
    app.addHook('onSend', (_request, reply, payload, done) => {
      if (String(reply.getHeader('content-type')).startsWith('application/json')) reply.header('cache-control', 'no-store')
      done(null, payload)
    })
  }

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    if (status >= 500) {
      logger.error({service, method: request.method, url: request.url, err: error.message, stack: error.stack}, 'Request failed')
      return reply.code(status).send({error: {code: CODE_BY_STATUS[status] ?? 'MFC_INTERNAL', message: 'Internal server error'}})
    }

    return reply.code(status).send({error: {code: CODE_BY_STATUS[status] ?? 'MFC_BAD_REQUEST', message: error.message}})
  })
  app.setNotFoundHandler((_request, reply) => {
    reply.code(404).send({error: {code: 'MFC_NOT_FOUND', message: 'Not found'}})
  })
  // Sync handler (no promise per request). With health_fast_path this route answers only what
  // the fast path hands on (a refusal, a proxied dashboard request, the app closing).
  app.get(HEALTH_PATH, {config: {public: true}}, (_request, reply) => {
    const answer = health.answer()
    reply.code(answer.statusCode).type(JSON_TYPE).send(answer.body)
  })
  return {app, server, routes}
}

const PRIVATE_POLICY = Object.freeze({public: false})

/** Far above any body mfc accepts (ingest batches are 3 levels deep). */
const MAX_JSON_DEPTH = 32

/**
 * True when a parsed JSON value nests arrays/objects deeper than `max` (the value itself is level
 * 1). Iterative, so it cannot overflow the stack itself; it stops at the first path too deep and
 * otherwise visits each array/object once (a fraction of what scanning the text costs).
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false
  const stack: object[] = [value]
  const depths: number[] = [1]
  while (stack.length > 0) {
    const node = stack.pop()!
    const depth = depths.pop()!
    if (depth > max) return true
    const children = Array.isArray(node) ? node as unknown[] : Object.values(node)
    for (const child of children) {
      if (child !== null && typeof child === 'object') {
        stack.push(child)
        depths.push(depth + 1)
      }
    }
  }

  return false
}

function deny(reply: FastifyReply, admission: Extract<Admission, {ok: false}>): void {
  if (admission.retryAfterSeconds !== undefined) reply.header('retry-after', String(admission.retryAfterSeconds))
  reply.code(admission.status).send({error: {code: admission.code, message: admission.message}})
}

const SKIP_OVERRIDE = Symbol.for('skip-override')

/**
 * Registers extension plugins after the core routes, naming the failing one. A plugin marked
 * with fastify's skip-override symbol (what fastify-plugin sets) keeps it, so its hooks apply to
 * the whole server (the data side's request counter) rather than to an empty scope of its own.
 */
export async function registerPlugins(app: FastifyInstance, plugins: readonly ServerPlugin[], service: string): Promise<void> {
  for (const [index, plugin] of plugins.entries()) {
    const wrapper = async (scope: FastifyInstance) => plugin(scope)
    if ((plugin as unknown as Record<symbol, unknown>)[SKIP_OVERRIDE]) Object.assign(wrapper, {[SKIP_OVERRIDE]: true})
    try {
      await app.register(wrapper)
    } catch (error) {
      throw new Error(`Plugin #${index + 1} (${plugin.name || 'anonymous'}) of the ${service} server failed: ${(error as Error).message}`, {cause: error})
    }
  }
}

/** Wraps a fastify app as a ManagedServer with bounded graceful close. */
export function managed(name: 'api' | 'dashboard', app: FastifyInstance, server: HttpsServer): ManagedServer {
  let closing: Promise<void> | undefined
  return {
    name,
    async listen(port, host) {
      await app.listen({port, host})
      const address = server.address()
      const actual = typeof address === 'object' && address ? address.port : port
      return {port: actual, url: `https://${host.includes(':') ? `[${host}]` : host}:${actual}`}
    },
    close(graceMs = 10_000) {
      closing ??= (async () => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs)
        try {
          await app.close()
        } finally {
          clearTimeout(timer)
        }
      })()
      return closing
    },
  }
}

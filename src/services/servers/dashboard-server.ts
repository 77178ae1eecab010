import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {MfcConfig} from '../../lib/config.js'
import type {Logger} from '../../lib/logger.js'
import {CSRF_HEADER, SESSION_COOKIE, readCookie, sessionCookie} from './auth.js'
import {APP_JS, BUILTIN_CSS, INDEX_HTML, LOGIN_HTML, LOGIN_JS} from './dashboard-builtin.js'
import type {HealthRegistry} from './health.js'
import {createHttpsApp, managed, registerPlugins} from './http-app.js'
import type {SecurityContext} from './security.js'
import type {TlsContextManager} from './tls-context.js'
import type {ManagedServer, ServerPlugin} from './types.js'

/**
 * `<package>/dist/dashboard`, where the dashboard build goes. The package is the nearest
 * directory above this module with a package.json: this file runs from src/ (tests), dist/
 * (tsc) and dist/bundle/ (the CLI bundle) at different depths.
 */
export const DEFAULT_ASSETS_DIR = join(packageRoot(dirname(fileURLToPath(import.meta.url))), 'dist', 'dashboard')

function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) return from
  }
}

export interface DashboardServerOptions {
  config: MfcConfig
  tls: TlsContextManager
  security: SecurityContext
  health: HealthRegistry
  logger: Logger
  /**
   * Static files served at `/` behind auth (index.html for `/`). Undefined: DEFAULT_ASSETS_DIR
   * if it exists; null or a missing directory: the built-in status page.
   */
  assetsDir?: string | null
  /** Extra routes, registered after the security layer (same contract as the API's plugins). */
  plugins?: readonly ServerPlugin[]
}

const PUBLIC = {config: {public: true}}

/**
 * Builds the dashboard server (unstarted). Public: `/health`, the login page (`GET /login`,
 * `/login.js`, `/builtin.css`) and `POST /login` ({"token": "..."} -> session cookie, HttpOnly
 * Secure SameSite=Strict, plus the CSRF token for state-changing requests). Everything else
 * needs the cookie or a bearer token; an unauthenticated page load is redirected to /login.
 * `GET /session` returns the caller's CSRF token again; `POST /logout` ends the session (and
 * closes its WebSockets). A login ends the session the browser presented. JSON answers carry
 * `Cache-Control: no-store`.
 */
export async function buildDashboardServer(options: DashboardServerOptions): Promise<ManagedServer> {
  const {security} = options
  // `GET /health` comes with the app (see createHttpsApp).
  const {app, server} = await createHttpsApp({...options, service: 'dashboard', loginRedirect: '/login'})
  app.get('/login', PUBLIC, async (_request, reply) => reply.type('text/html; charset=utf-8').send(LOGIN_HTML))
  app.get('/login.js', PUBLIC, async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(LOGIN_JS))
  app.get('/builtin.css', PUBLIC, async (_request, reply) => reply.type('text/css; charset=utf-8').send(BUILTIN_CSS))

  app.post<{Body: {token?: unknown}}>('/login', PUBLIC, async (request, reply) => {
    const token = request.body?.token
    const ip = security.clientIp(request.raw)
    if (typeof token !== 'string' || token === '' || !security.verifyToken(ip, token)) {
      return reply.code(401).send({error: {code: 'MFC_UNAUTHORIZED', message: 'Invalid token'}})
    }

    // The session the browser still presents (if any) ends: one login, one live session.
    const presented = readCookie(request.headers.cookie, SESSION_COOKIE)
    if (presented) security.sessions.destroy(presented)
    const session = await security.sessions.createShared()
    return reply.header('set-cookie', sessionCookie(session)).send({csrf_token: session.csrfToken, csrf_header: CSRF_HEADER, expires_at: new Date(session.expiresAt).toISOString()})
  })

  app.get('/session', async (request) => {
    const session = request.mfcAuth?.sessionId ? security.sessions.get(request.mfcAuth.sessionId) : undefined
    return {method: request.mfcAuth?.method, csrf_token: session?.csrfToken ?? null, expires_at: session ? new Date(session.expiresAt).toISOString() : null}
  })

  app.post('/logout', async (request, reply) => {
    if (request.mfcAuth?.sessionId) security.sessions.destroy(request.mfcAuth.sessionId)
    return reply.header('set-cookie', sessionCookie(null)).send({status: 'logged_out'})
  })

  const assetsDir = options.assetsDir === undefined ? DEFAULT_ASSETS_DIR : options.assetsDir
  if (assetsDir && existsSync(assetsDir)) {
    // The only importer of @fastify/static.
    const {default: fastifyStatic} = await import('@fastify/static')
    // The dashboard build writes .br/.gz siblings: send those, not a compression pass per request.
    // `index` must be an array: with preCompressed, @fastify/static 10 finds no index for `/` otherwise.
    await app.register(fastifyStatic, {root: assetsDir, prefix: '/', index: ['index.html'], dotfiles: 'deny', preCompressed: true})
  } else {
    app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(INDEX_HTML))
    app.get('/app.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(APP_JS))
  }

  await registerPlugins(app, options.plugins ?? [], 'dashboard')
  return managed('dashboard', app, server)
}

import {randomBytes} from 'node:crypto'
import {execFileSync} from 'node:child_process'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'

import fastifyStatic from '@fastify/static'
import Fastify, {type FastifyInstance} from 'fastify'

import {ROOT} from './cli.js'
import {type DataStack, startDataStack} from './data-server.js'

export const DASHBOARD_DIR = join(ROOT, 'dist', 'dashboard')
export const TEST_TOKEN = 'test-token-' + randomBytes(8).toString('hex')

/** Builds dist/dashboard with the real build script (esbuild + uPlot from node_modules). */
export function buildDashboard(): void {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-dashboard.mjs')], {stdio: 'pipe'})
}

/**
 * The dashboard server as the serve branch builds it, reduced to what the SPA relies on, until
 * the two branches meet: static assets, the strict CSP, POST /login {token} -> session cookie,
 * GET /session -> CSRF token, CSRF on writes, /health, and the data plugins behind the cookie.
 */
export async function startDashboard(stack: DataStack, extra?: (app: FastifyInstance) => void): Promise<{url: string; app: FastifyInstance}> {
  const sessions = new Map<string, string>()
  const app = Fastify({https: {cert: stack.tls.cert, key: stack.tls.key}, logger: false})
  const streamOrigin = new URL(stack.stream.url).origin.replace('https:', 'wss:')
  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ${streamOrigin}; frame-ancestors 'none'`)
    reply.header('x-content-type-options', 'nosniff')
  })
  const cookieOf = (header: string | undefined) => /(?:^|;\s*)mfc_session=([^;]+)/.exec(header ?? '')?.[1]
  const PUBLIC = new Set(['/', '/index.html', '/app.js', '/app.css', '/login', '/health', '/favicon.ico'])
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0]
    if (PUBLIC.has(path)) return
    const session = cookieOf(request.headers.cookie)
    const csrf = session && sessions.get(session)
    if (!csrf) return reply.code(401).send({error: {code: 'MFC_UNAUTHORIZED', message: 'Log in first'}})
    if (request.method !== 'GET' && request.headers['x-csrf-token'] !== csrf) return reply.code(403).send({error: {code: 'MFC_CSRF', message: 'Missing CSRF token'}})
  })
  app.post<{Body: {token?: string}}>('/login', async (request, reply) => {
    if (request.body?.token !== TEST_TOKEN) return reply.code(401).send({error: {code: 'MFC_UNAUTHORIZED', message: 'Invalid token'}})
    const id = randomBytes(16).toString('hex')
    const csrf = randomBytes(16).toString('hex')
    sessions.set(id, csrf)
    return reply.header('set-cookie', `mfc_session=${id}; Path=/; HttpOnly; Secure; SameSite=Strict`).send({csrf_token: csrf})
  })
  app.get('/session', async (request) => ({method: 'session', csrf_token: sessions.get(cookieOf(request.headers.cookie)!)}))
  app.post('/logout', async (request, reply) => {
    sessions.delete(cookieOf(request.headers.cookie)!)
    return reply.header('set-cookie', 'mfc_session=; Path=/; Max-Age=0').send({status: 'logged_out'})
  })
  app.get('/health', async () => ({status: 'healthy', certificate: {days_left: Math.floor((stack.tls.notAfter.getTime() - Date.now()) / 86_400_000), not_after: stack.tls.notAfter.toISOString()}, services: {api: 'running', dashboard: 'running', streamer: 'running'}}))
  await app.register(fastifyStatic, {root: DASHBOARD_DIR, prefix: '/', index: 'index.html'})
  for (const plugin of stack.wiring.dashboardPlugins) await app.register(plugin)
  extra?.(app)
  await app.listen({port: 0, host: '127.0.0.1'})
  return {url: `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`, app}
}

/** Page-side predicate (a function, not a string: the page's CSP forbids eval). No DOM types here. */
export function morePoints({id, n}: {id: string; n: number}): boolean {
  const page = globalThis as unknown as {document: {querySelector(s: string): {getAttribute(a: string): string | null} | null}}
  return Number(page.document.querySelector(id)?.getAttribute('data-points') ?? 0) > n
}

export {startDataStack}

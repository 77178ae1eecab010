import type {IncomingMessage, ServerResponse} from 'node:http'

import type {HealthAnswer, HealthRegistry} from './health.js'
import type {Admission, AdmitPolicy, SecurityContext} from './security.js'
import type {ResponseObserver} from './types.js'

export const HEALTH_PATH = '/health'
export const JSON_TYPE = 'application/json; charset=utf-8'

/** The gate's policy for /health (one object, not one per request). */
export const PUBLIC_POLICY: AdmitPolicy = Object.freeze({public: true})

/** What every answer-before-fastify path (this one, fast-route.ts) shares with the app. */
export interface FastPathOptions {
  service: 'api' | 'dashboard'
  security: SecurityContext
  /** The security headers are set on each response (no header block): set them here too. */
  perResponseHeaders: boolean
  /** Called for every answer the fast path writes, like fastify's onSend hooks for the rest. */
  observers: readonly ResponseObserver[]
  /**
   * A request the gate refused goes on to fastify with its admission here: the gate ran once
   * (its rate-limit token is spent), and fastify's security hook answers it from this entry.
   */
  refused: WeakMap<IncomingMessage, Admission>
  /** True once the app is closing: fastify then answers everything (503, Connection: close). */
  closing: () => boolean
}

export interface HealthFastPathOptions extends FastPathOptions {
  health: HealthRegistry
}

/** node:https's 'request' listener, which a fast path wraps. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => void

/**
 * Why this exists: keep-alive `GET /health` (load balancers, uptime probes, `mfc status`) is the
 * hottest request a node answers, and fastify's per-request work (router, Request and Reply
 * objects, hook runners, payload checks) cost more than everything mfc itself does for it. So
 * `GET`/`HEAD /health` (exactly that URL: no query, no trailing slash) is answered here, in the
 * node:https 'request' handler, before fastify: the same gate (`SecurityContext.admit`, so the
 * IP lists, forwarded-address check, lockout and rate limit, with their logs), the same headers
 * in the same order (the security block or per-response set, CORS for allowed origins, the
 * dashboard's no-store), the same status and JSON text from `HealthRegistry.answer()`, and the
 * same observers (the request counter). A refused request, a dashboard request through a trusted
 * proxy (its own CSP), and everything else go to fastify's `handler` unchanged.
 * test/integration/serve-health-fast-path.test.ts checks both paths byte for byte.
 */
export function withHealthFastPath(handler: Handler, options: HealthFastPathOptions): Handler {
  const {service, security, health, perResponseHeaders, observers, refused, closing} = options
  // The headers of the last answer without CORS, kept while the answer (one per millisecond at
  // most) and the security headers (rebuilt when the ports change) stay the same.
  let plain: {answer: HealthAnswer; security: Record<string, string> | undefined; headers: Record<string, string>} | undefined

  /** The headers fastify's route and hooks would set, in their order (see http-app.ts). */
  const headersFor = (answer: HealthAnswer, origin: string | undefined): Record<string, string> => {
    const headers: Record<string, string> = perResponseHeaders ? {...security.securityHeaders(service)} : {}
    if (origin !== undefined) {
      headers['access-control-allow-origin'] = origin
      headers['access-control-allow-credentials'] = 'true'
      headers.vary = 'Origin'
    }

    headers['content-type'] = JSON_TYPE
    if (service === 'dashboard') headers['cache-control'] = 'no-store'
    headers['content-length'] = String(Buffer.byteLength(answer.body))
    return headers
  }

  return (req, res) => {
    const {method} = req
    if (req.url !== HEALTH_PATH || (method !== 'GET' && method !== 'HEAD') || closing()) return handler(req, res)
    if (service === 'dashboard' && security.proxiedOrigin(req) !== undefined) return handler(req, res)
    const admission = security.admit(req, PUBLIC_POLICY, service)
    if (!admission.ok) {
      refused.set(req, admission)
      return handler(req, res)
    }

    const answer = health.answer()
    const origin = req.headers.origin
    let headers: Record<string, string>
    if (origin !== undefined && security.isAllowedOrigin(origin)) {
      headers = headersFor(answer, origin)
    } else {
      const current = perResponseHeaders ? security.securityHeaders(service) : undefined
      if (plain?.answer !== answer || plain.security !== current) plain = {answer, security: current, headers: headersFor(answer, undefined)}
      headers = plain.headers
    }

    for (const observer of observers) observer(method, HEALTH_PATH, answer.statusCode)
    res.writeHead(answer.statusCode, headers)
    res.end(method === 'HEAD' ? undefined : answer.body)
  }
}

import type {IncomingMessage, ServerResponse} from 'node:http'

import {type FastPathOptions, type Handler, JSON_TYPE} from './health-route.js'
import type {AdmitPolicy} from './security.js'
import type {FastJsonRoute} from './types.js'

/** The gate's policy for the fast routes: credentials needed, as for every plugin route. */
const PRIVATE_POLICY: AdmitPolicy = Object.freeze({public: false})
/** The Content-Type values the fast path takes, exactly as sent; any other goes to fastify. */
const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8'])

/** Parses a request body as the app's `application/json` content-type parser does (the same function). */
export type JsonBodyParser = (text: string, done: (error: Error | null, value?: unknown) => void) => void

export interface FastRoutesOptions extends FastPathOptions {
  /** The routes by URL (the app's `mfcFastRoutes`, filled while plugins register). */
  routes: ReadonlyMap<string, FastJsonRoute>
  parseJson: JsonBodyParser
}

/**
 * Why this exists: a rig posting one reading per request pays fastify's per-request machinery
 * (router, Request and Reply objects, hook runners, an AsyncResource and stream listeners for the
 * body parser, promise chains of the reply) several times over what storing the reading costs
 * mfc. So a `POST` to a registered route's exact URL is answered here, in the node:https
 * 'request' handler, when fastify would do nothing more than this: the same gate
 * (`SecurityContext.admit`: IP lists, forwarded-address check, lockout, rate limit, the
 * constant-time token check), the same body parser function (depth limit and
 * prototype-poisoning checks), the same handler work and error answers (the route gives both),
 * the same headers in the same order and the same observers (the request counter).
 * Taken only with a bearer token (a cookie needs the session and CSRF steps and, in cluster mode,
 * the shared-session lookup), without Origin (CORS), with `Content-Type` exactly
 * `application/json` (optionally `; charset=utf-8`), a Content-Length from 1 to the route's
 * `maxBytes` and no Transfer-Encoding or Content-Encoding. Everything else, a refusal of the
 * gate (answered by fastify from its decision), a dashboard request through a trusted proxy and
 * a closing app go to fastify's `handler` unchanged.
 * test/integration/serve-ingest-fast-path.test.ts checks both paths byte for byte.
 */
export function withFastRoutes(handler: Handler, options: FastRoutesOptions): Handler {
  const {service, security, routes, parseJson, perResponseHeaders, observers, refused, closing} = options

  const answer = (req: IncomingMessage, res: ServerResponse, route: FastJsonRoute, status: number, body: unknown, extra?: Record<string, string>): void => {
    const text = JSON.stringify(body)
    // fastify's order: the security headers (onRequest), the route's own, content-type, the
    // dashboard's no-store (onSend), content-length.
    const headers: Record<string, string> = perResponseHeaders ? {...security.securityHeaders(service), ...extra} : {...extra}
    headers['content-type'] = JSON_TYPE
    if (service === 'dashboard') headers['cache-control'] = 'no-store'
    headers['content-length'] = String(Buffer.byteLength(text))
    for (const observer of observers) observer('POST', route.url, status)
    res.writeHead(status, headers)
    res.end(text)
  }

  const fail = (req: IncomingMessage, res: ServerResponse, route: FastJsonRoute, error: Error, fromParser: boolean): void => {
    const {status, headers, body} = route.errorAnswer(error)
    // fastify closes the connection after a body it could not parse (the client may send more).
    answer(req, res, route, status, body, fromParser ? {connection: 'close', ...headers} : headers)
  }

  const takes = (req: IncomingMessage, route: FastJsonRoute): boolean => {
    const {headers} = req
    if (headers.authorization === undefined || headers.origin !== undefined) return false
    if (!JSON_TYPES.has(headers['content-type'] ?? '') || headers['transfer-encoding'] !== undefined || headers['content-encoding'] !== undefined) return false
    const length = Number(headers['content-length'])
    return length >= 1 && length <= route.maxBytes && (service !== 'dashboard' || security.proxiedOrigin(req) === undefined)
  }

  return (req, res) => {
    const route = routes.size === 0 || req.method !== 'POST' ? undefined : routes.get(req.url ?? '')
    if (route === undefined || closing() || !takes(req, route)) return handler(req, res)
    const admission = security.admit(req, PRIVATE_POLICY, service)
    if (!admission.ok) {
      refused.set(req, admission)
      return handler(req, res)
    }

    readBody(req, (error, text) => {
      if (error) return fail(req, res, route, error, true)
      parseJson(text!, (parseError, value) => {
        if (parseError) return fail(req, res, route, parseError, true)
        route.handle(value).then((result) => answer(req, res, route, 200, result), (handlerError: Error) => fail(req, res, route, handlerError, false))
      })
    })
  }
}

/** The body as fastify's raw-body reader decodes it: whole, then UTF-8 once (400 on a stream error). */
function readBody(req: IncomingMessage, done: (error: Error | null, text?: string) => void): void {
  const chunks: Buffer[] = []
  let received = 0
  const onData = (chunk: Buffer) => {
    chunks.push(chunk)
    received += chunk.length
  }

  const onEnd = (error?: Error & {statusCode?: number}) => {
    req.removeListener('data', onData)
    req.removeListener('end', onEnd)
    req.removeListener('error', onEnd)
    if (error) {
      if (!(typeof error.statusCode === 'number' && error.statusCode >= 400)) error.statusCode = 400
      return done(error)
    }

    done(null, chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks, received).toString('utf8'))
  }

  req.on('data', onData)
  req.on('end', onEnd)
  req.on('error', onEnd)
}

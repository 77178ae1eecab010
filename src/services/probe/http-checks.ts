import {createHash, randomBytes} from 'node:crypto'
import type {IncomingHttpHeaders, IncomingMessage} from 'node:http'
import {request as httpsRequest} from 'node:https'
import {isIP} from 'node:net'
import {rootCertificates} from 'node:tls'

import {type Check, type ProbeTarget, check} from './check.js'

const TIMEOUT_MS = 5000
/** One year: the config's default hsts_max_age; Mozilla recommends two. */
const MIN_HSTS_SECONDS = 31_536_000
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

type Reply = {kind: 'response'; res: IncomingMessage} | {kind: 'upgrade'; res: IncomingMessage} | {kind: 'error'; error: string}

function send(target: ProbeTarget, extraCa: string[], headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve) => {
    const req = httpsRequest({
      host: target.host, port: target.port, path: target.path, method: 'GET', servername: isIP(target.servername) ? '' : target.servername,
      // Trust is judged by the chain check; here only the answer matters.
      rejectUnauthorized: false, ca: [...rootCertificates, ...extraCa], headers: {host: `${target.servername}:${target.port}`, ...headers}, timeout: TIMEOUT_MS,
      agent: false,
    })
    req.on('response', (res) => {
      res.resume()
      resolve({kind: 'response', res})
    })
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve({kind: 'upgrade', res})
    })
    req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000} s`)))
    req.on('error', (error: NodeJS.ErrnoException) => resolve({kind: 'error', error: error.code ?? error.message}))
    req.end()
  })
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

/** HSTS, CSP, nosniff and framing protection on one HTTPS answer. */
export async function headerChecks(target: ProbeTarget, extraCa: string[]): Promise<Check[]> {
  const reply = await send(target, extraCa, {})
  if (reply.kind !== 'response') {
    const detail = reply.kind === 'error' ? `no HTTPS answer: ${reply.error}` : 'the server switched protocols'
    return ['headers.hsts', 'headers.csp', 'headers.nosniff', 'headers.frame_options'].map((id) => check(id, id.replace('headers.', 'Header '), 'fail', detail))
  }

  const {headers} = reply.res
  const hsts = header(headers, 'strict-transport-security')
  const maxAge = Number(/max-age=(\d+)/i.exec(hsts ?? '')?.[1] ?? Number.NaN)
  const csp = header(headers, 'content-security-policy')
  const nosniff = header(headers, 'x-content-type-options')
  const xfo = header(headers, 'x-frame-options')
  const framing = /^(deny|sameorigin)$/i.test(xfo ?? '') || /frame-ancestors/i.test(csp ?? '')
  return [
    check('headers.hsts', 'Strict-Transport-Security', hsts === undefined ? 'fail' : maxAge >= MIN_HSTS_SECONDS ? 'pass' : 'warn', hsts === undefined ? 'missing' : maxAge >= MIN_HSTS_SECONDS ? hsts : `${hsts} (max-age under one year)`),
    check('headers.csp', 'Content-Security-Policy', csp ? 'pass' : 'fail', csp ? truncate(csp) : 'missing'),
    check('headers.nosniff', 'X-Content-Type-Options: nosniff', /^nosniff$/i.test(nosniff ?? '') ? 'pass' : 'fail', nosniff ?? 'missing'),
    check('headers.frame_options', 'Framing protection', framing ? 'pass' : 'fail', xfo ? `X-Frame-Options: ${xfo}` : framing ? 'CSP frame-ancestors' : 'missing (X-Frame-Options or CSP frame-ancestors)'),
  ]
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/**
 * A real WebSocket opening handshake (RFC 6455 §4): 101 and the right Sec-WebSocket-Accept.
 * With mfc's token it goes as a non-browser client (bearer, no Origin); without one it sends
 * the dashboard's Origin as a browser would, and an endpoint that wants credentials is a
 * warning: its TLS and upgrade path work, the probe just may not enter.
 */
export async function wssCheck(target: ProbeTarget, extraCa: string[], origin: string): Promise<Check> {
  const key = randomBytes(16).toString('base64')
  const identity: Record<string, string> = target.token ? {authorization: `Bearer ${target.token}`} : {origin}
  const reply = await send(target, extraCa, {connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': key, ...identity})
  const title = 'WSS upgrade'
  if (reply.kind === 'error') return check('wss.upgrade', title, 'fail', reply.error)
  const status = reply.res.statusCode
  if (reply.kind === 'response' && !target.token && (status === 401 || status === 403)) {
    return check('wss.upgrade', title, 'warn', `HTTP ${status}: the endpoint wants credentials (mfc sends its API token only to its own names)`)
  }

  if (reply.kind === 'response') return check('wss.upgrade', title, 'fail', `HTTP ${status} instead of 101 Switching Protocols`)
  const expected = createHash('sha1').update(key + WS_GUID).digest('base64')
  const accept = header(reply.res.headers, 'sec-websocket-accept')
  return accept === expected
    ? check('wss.upgrade', title, 'pass', `101 Switching Protocols on ${target.path}`)
    : check('wss.upgrade', title, 'fail', 'wrong Sec-WebSocket-Accept')
}


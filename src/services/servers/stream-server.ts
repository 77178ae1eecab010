import {randomUUID} from 'node:crypto'
import type {IncomingMessage, ServerResponse} from 'node:http'
import type {Server as HttpsServer} from 'node:https'
import type {Socket} from 'node:net'
import type {Duplex} from 'node:stream'

// The only importer of ws.
import {type RawData, WebSocket, WebSocketServer} from 'ws'

import type {MfcConfig} from '../../lib/config.js'
import type {Logger} from '../../lib/logger.js'
import type {ErrorCode} from '../../lib/errors.js'
import {SESSION_COOKIE, readCookie} from './auth.js'
import type {HealthRegistry} from './health.js'
import {createHardenedHttpsServer, presetsHeaders} from './http-app.js'
import {RateLimiter} from './rate-limiter.js'
import type {Admission, SecurityContext} from './security.js'
import {DefaultStreamHub} from './stream-hub.js'
import type {TlsContextManager} from './tls-context.js'
import type {AuthInfo, ManagedServer, StreamClient, StreamHub} from './types.js'

export interface StreamServerOptions {
  config: MfcConfig
  tls: TlsContextManager
  security: SecurityContext
  health: HealthRegistry
  logger: Logger
  /** The application logic; DefaultStreamHub (heartbeat, ping/pong, errors) when omitted. */
  hub?: StreamHub
  /** Protocol-level ping period (default `ws_ping_interval_ms`); a client that misses one pong is dropped. */
  pingIntervalMs?: number
}

export interface StreamServer extends ManagedServer {
  readonly hub: StreamHub
  clientCount(): number
}

/**
 * Close codes of the streamer (RFC 6455 leaves 4000-4999 to applications; documented in
 * docs): the dashboard session behind the socket ended (logout, expiry, a new login), so the
 * page goes back to its login; and the client sent more messages than its budget.
 */
export const WS_CLOSE_SESSION_ENDED = 4401
export const WS_CLOSE_RATE_LIMITED = 4429

const STATUS_TEXT: Record<number, string> = {401: 'Unauthorized', 403: 'Forbidden', 429: 'Too Many Requests'}

/** One JSON encoding per broadcast object, not per client. */
let lastObject: object | undefined
let lastFrame: Buffer | undefined
function encode(obj: object): Buffer {
  if (obj !== lastObject) {
    lastFrame = Buffer.from(JSON.stringify(obj))
    lastObject = obj
  }

  return lastFrame!
}

function refuse(socket: Duplex, status: number, code: ErrorCode, message: string, retryAfter?: number): void {
  const body = JSON.stringify({error: {code, message}})
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\n`
    + `Content-Length: ${Buffer.byteLength(body)}\r\n${retryAfter === undefined ? '' : `Retry-After: ${retryAfter}\r\n`}\r\n${body}`)
}

/**
 * Builds the WSS streamer (unstarted) on its own hardened node:https server. The handshake
 * passes the same gate as the HTTPS routes (IP lists, rate limit, bearer token or dashboard
 * session cookie); a browser's Origin must be a dashboard origin, and a client without Origin
 * must use a token. Frames over `ws_max_message_bytes` close the connection (1009); a client
 * whose unsent data exceeds `ws_send_buffer_bytes` is dropped. Plain HTTPS requests get
 * `GET /health` (public) or 426. A socket opened with a dashboard session is closed (4401)
 * when that session ends; each ping tick also ends expired sessions. A client over its
 * `ws_messages_per_minute` budget gets an error message, then a 4429 close.
 */
export async function buildStreamServer(options: StreamServerOptions): Promise<StreamServer> {
  const {config, security, logger, health} = options
  const hub = options.hub ?? new DefaultStreamHub()
  const sendLimit = config.settings.ws_send_buffer_bytes
  const bySession = new Map<string, Set<WebSocket>>()
  const stopWatchingSessions = security.sessions.onEnd((id) => {
    for (const ws of bySession.get(id) ?? []) ws.close(WS_CLOSE_SESSION_ENDED, 'Session ended')
    bySession.delete(id)
  })
  const wss = new WebSocketServer({noServer: true, maxPayload: config.settings.ws_max_message_bytes, perMessageDeflate: false, clientTracking: true})
  const server: HttpsServer = createHardenedHttpsServer(config, options.tls, (req, res) => answerPlain(req, res), () => security.securityHeaderBlock('api'))
  const perResponseHeaders = !presetsHeaders(config)
  options.tls.register('streamer', server)
  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress
    if (peer && !security.ipFilter.isTrustedProxy(peer) && security.ipFilter.isBlocked(peer)) socket.destroy()
  })

  function answerPlain(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('content-type', 'application/json')
    if (perResponseHeaders) for (const [name, value] of Object.entries(security.securityHeaders('api'))) res.setHeader(name, value)
    if (req.url === '/health' && req.method === 'GET') {
      const admission = security.admit(req, {public: true}, 'streamer')
      if (!admission.ok) return void res.writeHead(admission.status).end(JSON.stringify({error: {code: admission.code, message: admission.message}}))
      const answer = health.answer()
      return void res.writeHead(answer.statusCode).end(answer.body)
    }

    res.writeHead(426, {upgrade: 'websocket'}).end(JSON.stringify({error: {code: 'MFC_UPGRADE_REQUIRED', message: 'This port speaks WebSocket (wss://) only'}}))
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    // Cluster mode: a session cookie this node has not seen (a login on another node) is looked
    // up in the shared storage first, once, as the HTTPS routes do (http-app.ts).
    const unknown = req.headers.authorization === undefined ? security.sessions.unknownShared(readCookie(req.headers.cookie, SESSION_COOKIE)) : undefined
    if (unknown === undefined) return upgrade(req, socket, head)
    void security.sessions.adoptShared(unknown).then(() => upgrade(req, socket, head))
  })

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const admission: Admission = security.admit(req, {public: false, websocket: true}, 'streamer')
    if (!admission.ok) return refuse(socket, admission.status, admission.code, admission.message, admission.retryAfterSeconds)
    const origin = req.headers.origin
    if (origin !== undefined && !security.isAllowedOrigin(origin)) {
      logger.warn({ip: admission.ip, origin}, 'WebSocket handshake refused: origin not allowed')
      return refuse(socket, 403, 'MFC_ORIGIN_DENIED', 'Origin not allowed')
    }

    if (origin === undefined && admission.auth?.method !== 'token') return refuse(socket, 401, 'MFC_UNAUTHORIZED', 'Clients without an Origin must send a bearer token')
    wss.handleUpgrade(req, socket, head, (ws) => attach(ws, admission.auth!))
  }

  function track(ws: WebSocket, sessionId: string): void {
    const sockets = bySession.get(sessionId) ?? new Set()
    bySession.set(sessionId, sockets.add(ws))
    ws.once('close', () => {
      sockets.delete(ws)
      if (sockets.size === 0 && bySession.get(sessionId) === sockets) bySession.delete(sessionId)
    })
  }

  function attach(ws: WebSocket, auth: AuthInfo): void {
    let alive = true
    let closed = false
    if (auth.sessionId) {
      // The session may have ended during the handshake.
      if (!security.sessions.get(auth.sessionId)) return ws.close(WS_CLOSE_SESSION_ENDED, 'Session ended')
      track(ws, auth.sessionId)
    }

    const budget = new RateLimiter(config.settings.ws_messages_per_minute)
    const client: StreamClient = {
      id: randomUUID(),
      auth,
      send(obj) {
        if (closed || ws.readyState !== WebSocket.OPEN) return false
        if (ws.bufferedAmount > sendLimit) {
          logger.warn({client: client.id, buffered: ws.bufferedAmount}, 'Dropped a slow WebSocket consumer')
          ws.terminate()
          return false
        }

        ws.send(encode(obj), {binary: false})
        return true
      },
      close(code = 1000, reason = '') {
        if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code, reason)
      },
    }
    const call = (what: string, fn: () => void) => {
      try {
        fn()
      } catch (error) {
        logger.error({client: client.id, err: (error as Error).message, stack: (error as Error).stack}, `Stream hub failed in ${what}`)
        client.send({type: 'error', message: 'Internal server error', timestamp: new Date().toISOString()})
      }
    }

    Object.assign(ws, {mfcPing: () => {
      if (!alive) return ws.terminate()
      alive = false
      ws.ping()
    }})
    ws.on('pong', () => {
      alive = true
    })
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (closed || ws.readyState !== WebSocket.OPEN) return
      if (!budget.take('messages').allowed) {
        logger.warn({client: client.id, perMinute: budget.perMinute}, 'Closed a WebSocket client over its message budget')
        client.send({type: 'error', code: 'MFC_RATE_LIMITED', message: `Too many messages: at most ${budget.perMinute} a minute`, timestamp: new Date().toISOString()})
        return client.close(WS_CLOSE_RATE_LIMITED, 'Message rate limit exceeded')
      }

      let msg: unknown
      try {
        if (isBinary) throw new Error('binary')
        msg = JSON.parse(data.toString())
      } catch {
        client.send({type: 'error', message: 'Invalid JSON message', timestamp: new Date().toISOString()})
        return
      }

      call('onMessage', () => hub.onMessage(client, msg))
    })
    ws.on('error', (error) => logger.debug({client: client.id, err: error.message}, 'WebSocket error'))
    ws.on('close', () => {
      closed = true
      call('onClose', () => hub.onClose(client))
    })
    call('onConnect', () => hub.onConnect(client))
  }

  const pinger = setInterval(() => {
    // Ends expired sessions, whose listener above closes their sockets.
    security.sessions.sweep()
    for (const ws of wss.clients) (ws as WebSocket & {mfcPing?: () => void}).mfcPing?.()
  }, options.pingIntervalMs ?? config.settings.ws_ping_interval_ms)
  pinger.unref()

  let closing: Promise<void> | undefined
  return {
    name: 'streamer',
    hub,
    clientCount: () => wss.clients.size,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          const address = server.address()
          const actual = typeof address === 'object' && address ? address.port : port
          resolve({port: actual, url: `wss://${host.includes(':') ? `[${host}]` : host}:${actual}`})
        })
      })
    },
    close(graceMs = 10_000) {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(pinger)
        stopWatchingSessions()
        hub.close?.()
        for (const ws of wss.clients) ws.close(1001, 'Server shutting down')
        const timer = setTimeout(() => {
          for (const ws of wss.clients) ws.terminate()
          server.closeAllConnections()
        }, graceMs)
        server.close(() => {
          clearTimeout(timer)
          wss.close()
          resolve()
        })
        server.closeIdleConnections()
        if (!server.listening) {
          clearTimeout(timer)
          resolve()
        }
      })
      return closing
    },
  }
}

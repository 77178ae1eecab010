/**
 * Extension points of the three servers `mfc serve` runs, kept stable for the services that
 * plug into them (monitoring data, alerts, dashboard). Only types live here, so importing this
 * module loads neither fastify nor ws.
 */
import type {FastifyInstance} from 'fastify'

/**
 * Adds routes (or hooks) to the API or dashboard server. Plugins are registered after the
 * security layer, so every route they add is behind IP filtering, rate limiting, auth (bearer
 * token or session cookie, CSRF on state-changing methods), the security headers, body limits
 * and the JSON error handler, with nothing to do on their side. `/health` is the only public
 * route; its `GET`/`HEAD` are answered before fastify, so plugin hooks do not see them (use
 * `onEveryResponse` from http-app.ts to observe every response). A plugin that throws makes the server fail to start (the error says which).
 *
 * Inside a plugin, `request.mfcAuth` (see `AuthInfo`) says how the caller authenticated.
 */
export type ServerPlugin = (app: FastifyInstance) => Promise<void> | void

/**
 * Sees every response of one server: the method, the matched route's pattern (undefined when no
 * route matched) and the status, just before it is written. Must not throw or block: it runs on
 * the request path (the data side's request counter is one).
 */
export type ResponseObserver = (method: string, route: string | undefined, status: number) => void

/** What a route's error handler sends for an error: status, headers set before the content type, JSON body. */
export interface ErrorAnswer {
  status: number
  headers?: Record<string, string>
  body: unknown
}

/**
 * A JSON `POST` route that the server may answer before fastify (see fast-route.ts), for
 * requests where that gives the same answer as the fastify route of the same URL. The plugin
 * registering it keeps its fastify route: every request the fast path does not take goes there.
 */
export interface FastJsonRoute {
  /** Exactly this URL (no query string). */
  readonly url: string
  /** Largest body (Content-Length, bytes) the fast path takes; larger ones go to fastify. */
  readonly maxBytes: number
  /** The fastify handler's work on the parsed body: resolves with the value it returns (sent as JSON), rejects with what it throws. */
  handle(body: unknown): Promise<unknown>
  /** The answer of the route's fastify error handler for `error` (body-parser errors included); must not throw. */
  errorAnswer(error: Error): ErrorAnswer
}

/** How a request or WebSocket client proved who it is. */
export interface AuthInfo {
  method: 'token' | 'session'
  /** Present for session-cookie callers: the id of their dashboard session. */
  sessionId?: string
}

/**
 * One connected WebSocket client of the streamer, as a hub sees it.
 *
 * `send` serializes `obj` as one JSON text frame. It never throws: it returns false (and the
 * client is being closed) when the client is gone or too slow, i.e. when its unsent data is
 * over `ws_send_buffer_bytes`. Slow consumers are dropped, never buffered without bound.
 * `close` is idempotent.
 */
export interface StreamClient {
  readonly id: string
  /** How the client authenticated (token or dashboard session). */
  readonly auth: AuthInfo
  send(obj: object): boolean
  close(code?: number, reason?: string): void
}

/**
 * The streamer's application logic. The streamer owns TLS, auth, Origin checks, size limits,
 * JSON parsing and protocol pings; the hub owns what is said. Calls for one client are serial:
 * `onConnect` first, then `onMessage` per parsed JSON message, then exactly one `onClose`.
 * A text frame that is not JSON is answered by the streamer with
 * `{"type":"error","message":"Invalid JSON message"}` and never reaches the hub.
 * A hub that throws is logged; the client gets `{"type":"error","message":"Internal server error"}`.
 * `close()` (optional) is called once when the streamer shuts down (clear timers there).
 */
export interface StreamHub {
  onConnect(client: StreamClient): void
  onMessage(client: StreamClient, msg: unknown): void
  onClose(client: StreamClient): void
  close?(): void
}

export type ServiceName = 'api' | 'dashboard' | 'streamer'

export const SERVICE_NAMES: readonly ServiceName[] = ['api', 'dashboard', 'streamer']

export type ServiceState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed'

/** A server built but not yet listening: tests start it on port 0. `close()` is idempotent. */
export interface ManagedServer {
  readonly name: ServiceName | 'http'
  listen(port: number, host: string): Promise<{port: number; url: string}>
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts the rest. */
  close(graceMs?: number): Promise<void>
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the security layer before any plugin route runs; null only on public routes. */
    mfcAuth: AuthInfo | null
    /**
     * Dashboard server only: the public origin (`https://host[:port]`) when the request came
     * through a trusted reverse proxy (see proxy.ts), else null.
     */
    mfcProxyOrigin: string | null
  }

  interface FastifyInstance {
    /** The observers of every response (see onEveryResponse in http-app.ts); the /health fast path calls them too. */
    mfcResponseObservers: ResponseObserver[]
    /** JSON POST routes answered before fastify when they can be (see addFastJsonRoute in http-app.ts). */
    mfcFastRoutes: Map<string, FastJsonRoute>
  }

  interface FastifyContextConfig {
    /** Route needs no credentials (IP lists and rate limits still apply). Core routes only. */
    public?: boolean
  }
}

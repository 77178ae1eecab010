import {timingSafeEqual} from 'node:crypto'
import type {IncomingMessage} from 'node:http'
import {isIP} from 'node:net'

import type {MfcConfig} from '../../lib/config.js'
import type {Logger} from '../../lib/logger.js'
import type {ErrorCode} from '../../lib/errors.js'
import {type ApiToken, CSRF_HEADER, SESSION_COOKIE, SessionStore, constantTimeEqual, readCookie, sha256} from './auth.js'
import {IpFilter} from './ip-filter.js'
import {proxiedOrigin} from './proxy.js'
import {RateLimiter} from './rate-limiter.js'
import {type HeaderBlock, buildHeaderBlock} from './header-block.js'
import {buildSecurityHeaders} from './security-headers.js'
import type {AuthInfo, ServiceName} from './types.js'

export type Admission =
  | {ok: true; ip: string; auth: AuthInfo | null}
  | {ok: false; ip: string; status: number; code: ErrorCode; message: string; retryAfterSeconds?: number}

export interface AdmitPolicy {
  /** No credentials needed (only /health and the login page). */
  public: boolean
  /** The WebSocket handshake: a browser (Origin) must be an allowed origin; no CSRF. */
  websocket?: boolean
}

export interface ListeningPorts {
  api: number
  dashboard: number
  streamer: number
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const TOKEN_AUTH: AuthInfo = Object.freeze({method: 'token'})

function hostForUrl(name: string): string {
  return isIP(name) === 6 ? `[${name}]` : name
}

function origin(scheme: string, name: string, port: number): string {
  const defaultPort = scheme === 'https' || scheme === 'wss' ? 443 : 80
  return `${scheme}://${hostForUrl(name)}${port === defaultPort ? '' : `:${port}`}`
}

/**
 * Everything the three servers share to decide who may do what: IP lists, rate limits, the
 * API token, dashboard sessions, allowed browser origins and the security headers. One per
 * `serve` process, so a session cookie from the dashboard login works on the API and the
 * streamer too (cookies are per host, not per port), and a client's request budget covers
 * all three ports.
 */
export class SecurityContext {
  readonly sessions: SessionStore
  readonly limiter: RateLimiter
  /** Per dashboard session: a signed-in browser does not spend its address's anonymous budget. */
  readonly sessionLimiter: RateLimiter
  readonly authFailures: RateLimiter
  private origins = new Set<string>()
  /** The token's digest, computed once; candidates are hashed and compared in constant time. */
  private readonly tokenDigest: Buffer
  private headers: Record<'api' | 'dashboard', Record<string, string>> = {api: {}, dashboard: {}}
  private blocks!: Record<'api' | 'dashboard', HeaderBlock>
  /**
   * Per connection, the Authorization value that already passed the constant-time check: a
   * keep-alive client presenting it again skips the hash. Only a connection that proved it
   * knows the token ever has an entry, so the plain comparison leaks nothing to others.
   */
  private readonly verifiedAuthorization = new WeakMap<object, string>()
  private readonly refusalsLogged = new Map<string, number>()
  /** Dashboard headers per public proxy origin (only allowed origins get here: a handful). */
  private proxiedHeaders = new Map<string, Record<string, string>>()

  private constructor(
    private readonly config: MfcConfig,
    readonly ipFilter: IpFilter,
    apiToken: ApiToken,
    private readonly logger: Logger,
    private readonly names: string[],
  ) {
    this.tokenDigest = sha256(apiToken.token)
    this.sessions = new SessionStore(config.settings.session_ttl_seconds * 1000)
    this.limiter = new RateLimiter(config.settings.rate_limit_per_minute)
    this.sessionLimiter = new RateLimiter(config.settings.session_rate_limit_per_minute)
    this.authFailures = new RateLimiter(config.settings.auth_failures_per_minute)
    const {https_port_api: api, https_port_frontend: dashboard, wss_port_streaming: streamer} = config.settings
    this.setPorts({api, dashboard, streamer})
  }

  /** `names`: the host names browsers use (the certificate's names). */
  static async create(config: MfcConfig, apiToken: ApiToken, logger: Logger, names: string[]): Promise<SecurityContext> {
    const {paths, settings} = config
    const filter = await IpFilter.load(paths.allowedIpsFile, paths.blockedIpsFile, settings.trusted_proxies)
    for (const source of [filter.sources.allowed, filter.sources.blocked]) {
      if (source.invalid.length > 0) logger.warn({file: source.file, invalid: source.invalid}, 'Ignoring lines that are not IP addresses or CIDRs')
    }

    return new SecurityContext(config, filter, apiToken, logger, names)
  }

  /** Recomputes origins and CSP once the real ports are known (tests listen on port 0). */
  setPorts(ports: ListeningPorts): void {
    const dashboards = this.names.map((name) => origin('https', name, ports.dashboard))
    this.origins = new Set([...dashboards, ...this.config.settings.dashboard_origins])
    // CSP host-sources cannot be IPv6 literals (Chromium logs an error and drops `https://[::1]:…`).
    const connect = this.names.filter((name) => isIP(name) !== 6).flatMap((name) => [origin('https', name, ports.api), origin('wss', name, ports.streamer)])
    this.headers = {api: this.buildHeaders(connect, true), dashboard: this.buildHeaders(connect, false)}
    this.blocks = {api: buildHeaderBlock(this.headers.api), dashboard: buildHeaderBlock(this.headers.dashboard)}
    this.proxiedHeaders.clear()
  }

  /**
   * The headers for a response. A dashboard page served through a trusted proxy (`proxied`,
   * from proxiedOrigin) talks to its own origin only, its stream included: its CSP allows
   * `'self'` and that origin's `wss://` (CSP 3 lets `'self'` match wss, but not every browser
   * does), and none of the direct ports the page does not use.
   */
  securityHeaders(kind: 'api' | 'dashboard', proxied?: string): Record<string, string> {
    if (kind === 'api' || proxied === undefined) return this.headers[kind]
    let headers = this.proxiedHeaders.get(proxied)
    if (!headers) {
      headers = this.buildHeaders([proxied.replace(/^https:/, 'wss:')], false)
      this.proxiedHeaders.set(proxied, headers)
    }

    return headers
  }

  private buildHeaders(connectSources: string[], noStore: boolean): Record<string, string> {
    const {enable_hsts: enableHsts, hsts_max_age: hstsMaxAge, enable_csp: enableCsp} = this.config.settings
    return buildSecurityHeaders({enableHsts, hstsMaxAge, enableCsp, noStore, connectSources})
  }

  /** The public origin of a request that came through a trusted reverse proxy (see proxy.ts). */
  proxiedOrigin(req: Pick<IncomingMessage, 'headers' | 'socket'>): string | undefined {
    return proxiedOrigin(req, (ip) => this.ipFilter.isTrustedProxy(ip), (value) => this.origins.has(value))
  }

  /** The same headers, serialized once per port change (see header-block.ts). */
  securityHeaderBlock(kind: 'api' | 'dashboard'): HeaderBlock {
    return this.blocks[kind]
  }

  isAllowedOrigin(value: string | undefined): boolean {
    return value !== undefined && this.origins.has(value)
  }

  allowedOrigins(): string[] {
    return [...this.origins]
  }

  clientIp(req: IncomingMessage): string {
    return this.ipFilter.clientIp(req.socket.remoteAddress, req.headers['x-forwarded-for'])
  }

  /** Checks a presented token (the dashboard login), counting failures against the IP. */
  verifyToken(ip: string, candidate: string): boolean {
    if (timingSafeEqual(sha256(candidate), this.tokenDigest)) return true
    this.authFailures.take(ip)
    this.logger.warn({ip}, 'Authentication failed: wrong token')
    return false
  }

  /**
   * Refused addresses are not rate limited (the lists are checked first), so a keep-alive
   * client outside the allow list could otherwise write a log line per request.
   */
  private shouldLogRefusal(ip: string): boolean {
    const now = Date.now()
    const last = this.refusalsLogged.get(ip)
    if (last !== undefined && now - last < 60_000) return false
    if (this.refusalsLogged.size >= 10_000) this.refusalsLogged.clear()
    this.refusalsLogged.set(ip, now)
    return true
  }

  /**
   * The client part of the gate, which every request passes (CORS preflights included, so a
   * client outside the allow list learns nothing and has no unlimited endpoint): a forwarded
   * address that cannot be parsed, IP lists, failed-auth lockout, then the rate limit (per
   * dashboard session when `sessionId` names a live one, else per client IP).
   */
  admitClient(req: IncomingMessage, service: ServiceName, sessionId?: string): Admission {
    const ip = this.clientIp(req)
    const deny = (status: number, code: ErrorCode, message: string, retryAfterSeconds?: number): Admission => ({ok: false, ip, status, code, message, retryAfterSeconds})
    // The socket peer is always an address: only a trusted proxy's X-Forwarded-For can give
    // something else, and then the real client is unknown (never fall back to the proxy).
    if (isIP(ip) === 0) {
      if (this.shouldLogRefusal(req.socket.remoteAddress ?? '')) this.logger.warn({proxy: req.socket.remoteAddress, service, forwardedFor: ip}, 'Request refused: the trusted proxy forwarded a client address that is not an IP address')
      return deny(403, 'MFC_FORWARDED_INVALID', 'Access denied: the X-Forwarded-For client address is not an IP address')
    }

    if (!this.ipFilter.isAllowed(ip)) {
      if (this.shouldLogRefusal(ip)) this.logger.warn({ip, service, url: req.url}, 'Request refused by the IP allow/block lists (logged at most once a minute per address)')
      return deny(403, 'MFC_IP_DENIED', 'Access denied')
    }

    const lockout = this.authFailures.check(ip)
    if (!lockout.allowed) return deny(429, 'MFC_RATE_LIMITED', 'Too many failed authentication attempts', lockout.retryAfterSeconds)
    const session = sessionId ? this.sessions.get(sessionId) : undefined
    // Only the token opens a session (POST /login, itself on the IP budget), so a session's own
    // budget gives nothing to anonymous clients; a forged or expired cookie stays on the IP's.
    const rate = session ? this.sessionLimiter.take(session.id) : this.limiter.take(ip)
    if (!rate.allowed) return deny(429, 'MFC_RATE_LIMITED', 'Rate limit exceeded', rate.retryAfterSeconds)
    return {ok: true, ip, auth: null}
  }

  /**
   * The gate in front of every route and WebSocket handshake: `admitClient`, then credentials
   * (bearer token, else session cookie), CSRF for cookie-authenticated state-changing requests.
   */
  admit(req: IncomingMessage, policy: AdmitPolicy, service: ServiceName): Admission {
    const authorization = req.headers.authorization
    const sessionId = authorization === undefined ? readCookie(req.headers.cookie, SESSION_COOKIE) : undefined
    const client = this.admitClient(req, service, sessionId)
    if (!client.ok || policy.public) return client
    const {ip} = client
    const deny = (status: number, code: ErrorCode, message: string): Admission => ({ok: false, ip, status, code, message})
    const session = sessionId ? this.sessions.get(sessionId) : undefined

    if (authorization !== undefined) {
      if (this.verifiedAuthorization.get(req.socket) === authorization) return {ok: true, ip, auth: TOKEN_AUTH}
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
      if (match && this.verifyToken(ip, match[1])) {
        this.verifiedAuthorization.set(req.socket, authorization)
        return {ok: true, ip, auth: TOKEN_AUTH}
      }

      if (!match) this.authFailures.take(ip)
      return deny(401, 'MFC_UNAUTHORIZED', 'Invalid authentication credentials')
    }

    if (!session) return deny(401, 'MFC_UNAUTHORIZED', 'Authentication required')
    if (!policy.websocket && STATE_CHANGING.has(req.method ?? 'GET')) {
      const presented = req.headers[CSRF_HEADER]
      if (typeof presented !== 'string' || !constantTimeEqual(presented, session.csrfToken)) {
        return deny(403, 'MFC_CSRF', 'CSRF validation failed: send the X-CSRF-Token header from the login response')
      }
    }

    return {ok: true, ip, auth: {method: 'session', sessionId: session.id}}
  }
}

import {promises as fs} from 'node:fs'
import {type IncomingMessage, type ServerResponse, createServer} from 'node:http'
import {isIP} from 'node:net'
import {join} from 'node:path'

import type {IpFilter} from './ip-filter.js'
import type {ManagedServer} from './types.js'

export interface HttpRedirectOptions {
  /** Where `mfc cert renew` (HTTP-01) writes `<token>` files. */
  challengeDir: string
  /**
   * Cluster mode: tokens in the shared storage, asked first (any node answers the CA); a token
   * it does not have (or a database error) falls back to the challenge directory.
   */
  tokens?: {lookup(token: string): Promise<string | undefined>}
  /** The HTTPS port plain-HTTP visitors are sent to (the dashboard). */
  httpsPort: number
  /** Used when the request's Host header is missing or not a plain host name. */
  fallbackHost: string
  ipFilter: IpFilter
  headersTimeoutMs: number
}

const TOKEN_RE = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]{1,256})$/

function redirectHost(host: string | undefined, fallback: string): string {
  const name = (host ?? '').replace(/:\d+$/, '')
  if (/^[a-z0-9.-]{1,253}$/i.test(name) || /^\[[0-9a-f:.]+\]$/i.test(name)) return name
  return isIP(fallback) === 6 ? `[${fallback}]` : fallback
}

/**
 * The plain-HTTP port: answers `/.well-known/acme-challenge/<token>` from the challenge
 * directory (so `cert renew` never needs port 80 while serve holds it), and redirects
 * everything else to HTTPS with 301. Never sends HSTS (RFC 6797 §7.2: not over HTTP). Only the
 * block list applies: an ACME CA validates from addresses nobody can list in advance.
 */
export function buildHttpRedirectServer(options: HttpRedirectOptions): ManagedServer {
  const server = createServer({headersTimeout: options.headersTimeoutMs, requestTimeout: options.headersTimeoutMs * 2}, (req, res) => {
    void handle(req, res)
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('x-content-type-options', 'nosniff')
    if (options.ipFilter.isBlocked(req.socket.remoteAddress ?? '')) return void res.writeHead(403).end()
    const path = (req.url ?? '/').split('?')[0]
    const challenge = TOKEN_RE.exec(path)
    if (challenge) {
      try {
        const body = await options.tokens?.lookup(challenge[1]).catch(() => undefined) ?? await fs.readFile(join(options.challengeDir, challenge[1]))
        res.writeHead(200, {'content-type': 'text/plain', 'cache-control': 'no-store'}).end(body)
      } catch {
        res.writeHead(404, {'content-type': 'text/plain'}).end('Not found\n')
      }

      return
    }

    const host = redirectHost(req.headers.host, options.fallbackHost)
    const port = options.httpsPort === 443 ? '' : `:${options.httpsPort}`
    res.writeHead(301, {location: `https://${host}${port}${req.url?.startsWith('/') ? req.url : '/'}`, 'content-type': 'text/plain'}).end('Moved to HTTPS\n')
  }

  let closing: Promise<void> | undefined
  return {
    name: 'http',
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          const address = server.address()
          const actual = typeof address === 'object' && address ? address.port : port
          resolve({port: actual, url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}`})
        })
      })
    },
    close() {
      closing ??= new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    },
  }
}

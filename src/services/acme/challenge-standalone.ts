import {type Server, createServer} from 'node:http'

import {NetworkError, errnoCode} from '../../lib/errors.js'
import {CHALLENGE_PATH, type ChallengeResponder} from './challenge-responder.js'

/**
 * certbot's `--standalone`: a plain HTTP listener on `port` (all interfaces, IPv6 and IPv4)
 * that answers only `/.well-known/acme-challenge/<token>` and 404s everything else. It lives
 * from prepare() to close(), i.e. only while an order is being validated.
 */
export class StandaloneResponder implements ChallengeResponder {
  readonly description: string
  private readonly answers = new Map<string, string>()
  private server?: Server

  constructor(private readonly port: number, private readonly challengeDir: string) {
    this.description = `a listener on port ${port}`
  }

  async prepare(): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0]
      const answer = req.method === 'GET' && path.startsWith(CHALLENGE_PATH) ? this.answers.get(path.slice(CHALLENGE_PATH.length)) : undefined
      res.writeHead(answer === undefined ? 404 : 200, {'Content-Type': 'text/plain', Connection: 'close'})
      res.end(answer ?? 'Not found')
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => reject(this.bindError(error)))
      server.listen({port: this.port}, () => resolve())
    })
    this.server = server
  }

  async add(token: string, keyAuthorization: string): Promise<void> {
    this.answers.set(token, keyAuthorization)
  }

  async remove(token: string): Promise<void> {
    this.answers.delete(token)
  }

  async close(): Promise<void> {
    const {server} = this
    this.server = undefined
    if (!server) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
    })
  }

  private bindError(error: Error): NetworkError {
    const code = errnoCode(error)
    const ways = [
      `Stop the program on port ${this.port} for a moment (e.g. \`sudo systemctl stop nginx\`), then run again.`,
      `Let that web server answer instead: --webroot DIR (its document root for this domain; mfc writes .well-known/acme-challenge/ there).`,
      `Run \`mfc serve\`: it answers challenges from ${this.challengeDir} on its HTTP port, so renewals never need the port themselves.`,
    ]
    if (code === 'EACCES') {
      return new NetworkError(`mfc may not listen on port ${this.port} (ports below 1024 need root) to answer the HTTP-01 challenge.`, {
        code: 'MFC_PORT_DENIED',
        cause: error,
        suggestions: ['Run as root (sudo), or give node the capability: `sudo setcap cap_net_bind_service=+ep $(command -v node)`.', ...ways.slice(1)],
      })
    }

    const inUse = code === undefined || code === 'EADDRINUSE'
    return new NetworkError(`Port ${this.port} ${inUse ? 'is already in use by another program' : `cannot be opened (${code})`}, so mfc cannot answer the HTTP-01 challenge there.`, {
      code: inUse ? 'MFC_PORT_IN_USE' : 'MFC_LISTEN_FAILED',
      cause: error,
      suggestions: ways,
    })
  }
}

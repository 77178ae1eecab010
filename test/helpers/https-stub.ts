import {type IncomingMessage, type ServerResponse} from 'node:http'
import {type Server, createServer} from 'node:https'

import type {ListenerTls} from './pebble.js'

export interface StubRequest {
  method: string
  path: string
  at: number
}

/** A small HTTPS server on a random loopback port, for CA behaviour Pebble 2.4 cannot show. */
export interface HttpsStub {
  url: string
  requests: StubRequest[]
  close(): Promise<void>
}

export type StubHandler = (req: IncomingMessage, res: ServerResponse, url: string) => void | Promise<void>

export async function startHttpsStub(tls: ListenerTls, handler: StubHandler): Promise<HttpsStub> {
  const requests: StubRequest[] = []
  let base = ''
  const server: Server = createServer({cert: tls.cert, key: tls.key}, (req, res) => {
    requests.push({method: req.method ?? '', path: req.url ?? '', at: Date.now()})
    req.resume()
    req.on('end', () => {
      Promise.resolve(handler(req, res, base)).catch((error: Error) => {
        res.writeHead(500)
        res.end(error.message)
      })
    })
  })
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve())
  })
  base = `https://127.0.0.1:${(server.address() as {port: number}).port}`
  let closed = false
  return {
    url: base,
    requests,
    async close() {
      if (closed) return
      closed = true
      server.closeAllConnections()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
      })
    },
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, {'Content-Type': status >= 400 ? 'application/problem+json' : 'application/json', ...headers})
  res.end(JSON.stringify(body))
}

import {type IncomingMessage, type ServerResponse} from 'node:http'
import {type Server, createServer} from 'node:https'

import {WebSocketServer} from 'ws'

import {MOZILLA_INTERMEDIATE_CIPHERS} from '../../src/services/deploy/nginx.js'

/**
 * Stand-ins for `mfc serve`'s three services (API, dashboard, WSS streamer) with the TLS
 * settings and headers serve is specified to use. Tests that need "the three services" get
 * them from here; once serve is merged, `startServices` can start `mfc serve` instead and
 * return the same shape.
 */
export interface Services {
  ports: {api: number; frontend: number; streamer: number}
  /** Requests the API saw (path and forwarding headers), for proxy assertions. */
  apiRequests: {path: string; forwardedProto?: string; host?: string}[]
  close(): Promise<void>
}

export const SECURITY_HEADERS = {
  'strict-transport-security': 'max-age=63072000; includeSubDomains',
  'content-security-policy': "default-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
}

export function tlsOptions(tls: {cert: string; key: string}) {
  return {...tls, minVersion: 'TLSv1.2' as const, ciphers: MOZILLA_INTERMEDIATE_CIPHERS, honorCipherOrder: false}
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as {port: number}).port)))
}

export async function startServices(tls: {cert: string; key: string}, host = '127.0.0.1'): Promise<Services> {
  const apiRequests: Services['apiRequests'] = []
  const send = (res: ServerResponse, status: number, type: string, body: string) => {
    res.writeHead(status, {...SECURITY_HEADERS, 'content-type': type})
    res.end(body)
  }

  const api = createServer(tlsOptions(tls), (req: IncomingMessage, res) => {
    apiRequests.push({path: req.url ?? '', forwardedProto: req.headers['x-forwarded-proto'] as string | undefined, host: req.headers.host})
    if (req.url === '/health') send(res, 200, 'application/json', JSON.stringify({status: 'healthy'}))
    else send(res, 404, 'application/json', JSON.stringify({error: 'not found', path: req.url}))
  })
  const frontend = createServer(tlsOptions(tls), (req, res) => send(res, 200, 'text/html', '<!doctype html><title>MFC dashboard</title><h1>MFC dashboard</h1>'))
  const streamer = createServer(tlsOptions(tls), (req, res) => send(res, 426, 'text/plain', 'WebSocket only'))
  const wss = new WebSocketServer({server: streamer})
  wss.on('connection', (socket, req) => {
    socket.send(JSON.stringify({type: 'hello', path: req.url}))
    socket.on('message', (data) => socket.send(JSON.stringify({type: 'echo', data: data.toString()})))
  })

  const ports = {api: await listen(api, host), frontend: await listen(frontend, host), streamer: await listen(streamer, host)}
  let closed = false
  return {
    ports,
    apiRequests,
    async close() {
      if (closed) return
      closed = true
      for (const client of wss.clients) client.terminate()
      wss.close()
      await Promise.all([api, frontend, streamer].map((s) => new Promise((resolve) => {
        s.closeAllConnections()
        s.close(resolve)
      })))
    },
  }
}

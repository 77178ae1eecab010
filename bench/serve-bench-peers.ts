/**
 * Child processes of bench/serve-bench.ts, one role per process so each server has its own
 * event loop and CPU accounting:
 *   bare-https <cert> <key>                 node:https hello-world (JSON), the throughput baseline
 *   bare-tls <cert> <key>                   node:tls server that ends each connection, the handshake baseline
 *                                           (both with mfc's TLS settings, see tlsOptions)
 *   fanout mfc|bare <clients> <seconds>     WSS broadcast server: mfc's streamer, or a bare ws loop
 *   fanout-clients <url> <clients> <token>  WSS clients measuring delivery latency
 * Servers print "READY <port>" when listening; fan-out servers print a JSON CPU line at the end.
 */
import {constants as cryptoConstants, randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {createServer as createHttpsServer} from 'node:https'
import {createServer as createTlsServer} from 'node:tls'
import WebSocket, {WebSocketServer} from 'ws'

import {resolveConfig} from '../src/lib/config.js'
import {silentLogger} from '../src/lib/logger.js'
import {ServeRuntime} from '../src/services/servers/runtime.js'
import {MOZILLA_INTERMEDIATE_CIPHERS, MOZILLA_INTERMEDIATE_CURVES} from '../src/services/servers/tls-context.js'
import type {StreamClient, StreamHub} from '../src/services/servers/types.js'

const [role, ...args] = process.argv.slice(2)

/**
 * The baselines speak TLS exactly as mfc does (tls-context.ts): same certificate, protocol
 * range, cipher list, curves, renegotiation off, session tickets; Node's default keep-alive
 * timeout (5 s), as mfc's. Only the application differs.
 */
function tlsOptions(cert: string, key: string) {
  return {
    cert: readFileSync(cert), key: readFileSync(key), minVersion: 'TLSv1.2' as const, maxVersion: 'TLSv1.3' as const,
    ciphers: MOZILLA_INTERMEDIATE_CIPHERS, ecdhCurve: MOZILLA_INTERMEDIATE_CURVES, honorCipherOrder: false,
    secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION, sessionTimeout: 3600, ticketKeys: randomBytes(48),
  }
}

function ready(port: number): void {
  process.stdout.write(`READY ${port}\n`)
}

/** Broadcasts {type, t, seq, payload} 10 times a second for `seconds` once `clients` are connected. */
function broadcaster(clients: number, seconds: number, count: () => number, send: (obj: object) => void, done: () => void): void {
  const waiting = setInterval(() => {
    if (count() < clients) return
    clearInterval(waiting)
    const cpuStart = process.cpuUsage()
    const started = performance.now()
    let seq = 0
    const payload = Array.from({length: 10}, (_, i) => ({cell: i, voltage: 0.7, power: 2.1e-5}))
    const timer = setInterval(() => {
      send({type: 'data_update', t: Date.now(), seq: seq++, data: payload})
      if (seq >= seconds * 10) {
        clearInterval(timer)
        const cpu = process.cpuUsage(cpuStart)
        const wallMs = performance.now() - started
        setTimeout(() => {
          send({type: 'end'})
          process.stdout.write(JSON.stringify({cpuPercent: ((cpu.user + cpu.system) / 1000 / wallMs) * 100, broadcasts: seq}) + '\n')
          setTimeout(done, 500)
        }, 500)
      }
    }, 100)
  }, 50)
}

async function main(): Promise<void> {
  switch (role) {
    case 'bare-https': {
      const server = createHttpsServer(tlsOptions(args[0], args[1]), (_req, res) => {
        res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify({status: 'healthy'}))
      })
      server.listen(0, '127.0.0.1', () => ready((server.address() as {port: number}).port))
      break
    }

    case 'bare-tls': {
      const server = createTlsServer(tlsOptions(args[0], args[1]), (socket) => socket.end())
      server.listen(0, '127.0.0.1', () => ready((server.address() as {port: number}).port))
      break
    }

    case 'fanout': {
      const [mode, clients, seconds] = [args[0], Number(args[1]), Number(args[2])]
      if (mode === 'bare') {
        const server = createHttpsServer(tlsOptions(process.env.BENCH_CERT!, process.env.BENCH_KEY!))
        const wss = new WebSocketServer({server, perMessageDeflate: false})
        server.listen(0, '127.0.0.1', () => ready((server.address() as {port: number}).port))
        broadcaster(clients, seconds, () => wss.clients.size, (obj) => {
          const text = JSON.stringify(obj)
          for (const ws of wss.clients) ws.send(text)
        }, () => process.exit(0))
        return
      }

      const connected = new Set<StreamClient>()
      const hub: StreamHub = {onConnect: (c) => connected.add(c), onMessage() {}, onClose: (c) => connected.delete(c)}
      const config = resolveConfig({isRoot: false})
      const runtime = new ServeRuntime({config, logger: silentLogger, apiToken: {token: process.env.MFC_API_TOKEN!, source: 'env'}, version: 'bench', hub, ports: {api: 0, dashboard: 0, streamer: 0, http: null}, dashboardAssetsDir: null})
      const info = await runtime.start()
      ready(info.services.find((s) => s.name === 'streamer')!.port)
      broadcaster(clients, seconds, () => connected.size, (obj) => {
        for (const client of connected) client.send(obj)
      }, () => void runtime.close().then(() => process.exit(0)))
      break
    }

    case 'fanout-clients': {
      const [url, clients, token] = [args[0], Number(args[1]), args[2]]
      const latencies: number[] = []
      let ended = 0
      let dropped = 0
      const ca = readFileSync(process.env.BENCH_CA!)
      for (let i = 0; i < clients; i++) {
        const ws = new WebSocket(url, {ca, servername: 'localhost', headers: {authorization: `Bearer ${token}`}, perMessageDeflate: false} as WebSocket.ClientOptions)
        ws.on('message', (data) => {
          const msg = JSON.parse(data.toString())
          if (msg.type === 'data_update') latencies.push(Date.now() - msg.t)
          if (msg.type === 'end' && ++ended === clients) {
            latencies.sort((a, b) => a - b)
            const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]
            process.stdout.write(JSON.stringify({messages: latencies.length, p50: at(0.5), p99: at(0.99), max: latencies.at(-1), dropped}) + '\n')
            process.exit(0)
          }
        })
        ws.on('close', () => dropped++)
        ws.on('error', () => {})
        if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 50))
      }

      break
    }

    default:
      throw new Error(`unknown role ${role}`)
  }
}

await main()

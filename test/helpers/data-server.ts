import {randomUUID} from 'node:crypto'
import {mkdtemp, rm} from 'node:fs/promises'
import {createServer} from 'node:https'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import Fastify, {type FastifyInstance} from 'fastify'
import {WebSocketServer} from 'ws'

import {systemClock} from '../../src/lib/clock.js'
import {MfcEventBus} from '../../src/lib/events.js'
import {silentLogger} from '../../src/lib/logger.js'
import type {DataSettings} from '../../src/services/data/data-settings.js'
import {type MonitoringWiring, createMonitoring} from '../../src/services/data/monitoring.js'
import type {ApiPlugin, StreamHub} from '../../src/services/data/server-types.js'
import {createCaCertificate, createLeafCertificate, generatePrivateKey} from '../../src/services/certificates/x509-builder.js'

export interface TlsMaterial {
  cert: string
  key: string
  ca: string
  notAfter: Date
}

/** A local CA and a localhost/127.0.0.1 leaf, minted now. */
export async function mintTls(): Promise<TlsMaterial> {
  const notBefore = new Date(Date.now() - 60_000)
  const notAfter = new Date(Date.now() + 30 * 86_400_000)
  const caKey = await generatePrivateKey({type: 'ecdsa', curve: 'P-256'})
  const ca = await createCaCertificate({commonName: 'mfc test CA', notBefore, notAfter, keyPem: caKey})
  const key = await generatePrivateKey({type: 'ecdsa', curve: 'P-256'})
  const cert = await createLeafCertificate({domains: ['localhost', '127.0.0.1'], notBefore, notAfter, keyPem: key, caCertPem: ca, caKeyPem: caKey})
  return {cert, key, ca, notAfter}
}

/**
 * A stand-in for serve's streamer until it lands: `ws` on node:https, handing each connection
 * to the hub with send() reporting backpressure like the agreed StreamClient contract.
 */
export async function startStreamer(hub: StreamHub, tls: TlsMaterial, maxBuffered = 1 << 20): Promise<{url: string; close(): Promise<void>}> {
  const server = createServer({cert: tls.cert, key: tls.key})
  const wss = new WebSocketServer({server, maxPayload: 1 << 20})
  wss.on('connection', (socket) => {
    const client = {
      auth: {method: 'token' as const},
      id: randomUUID(),
      send(obj: object) {
        if (socket.readyState !== socket.OPEN || socket.bufferedAmount > maxBuffered) return false
        socket.send(JSON.stringify(obj))
        return true
      },
      close: (code?: number, reason?: string) => socket.close(code ?? 1000, reason),
    }
    hub.onConnect(client)
    socket.on('message', (data) => hub.onMessage(client, data.toString()))
    socket.on('close', () => hub.onClose(client))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `wss://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    async close() {
      for (const c of wss.clients) c.terminate()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** A plain fastify app on node:https registering the given plugins, as serve's builder will. */
export async function startApi(plugins: ApiPlugin[], tls: TlsMaterial, extra?: (app: FastifyInstance) => Promise<void> | void): Promise<{url: string; app: FastifyInstance}> {
  const app = Fastify({https: {cert: tls.cert, key: tls.key}, logger: false})
  if (extra) await app.register(async (scope) => extra(scope))
  for (const plugin of plugins) await app.register(plugin)
  await app.listen({port: 0, host: '127.0.0.1'})
  return {url: `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`, app}
}

export interface DataStack {
  dir: string
  tls: TlsMaterial
  wiring: MonitoringWiring
  api: {url: string; app: FastifyInstance}
  stream: {url: string; close(): Promise<void>}
  events: MfcEventBus
  close(): Promise<void>
}

/** History + simulator + alerts + hub on real TLS servers, in a temp dir. */
export async function startDataStack(settings: Partial<DataSettings> = {}, options: {heartbeatMs?: number} = {}): Promise<DataStack> {
  const dir = await mkdtemp(join(tmpdir(), 'mfc-data-'))
  const tls = await mintTls()
  const events = new MfcEventBus()
  const wiring = await createMonitoring({
    historyDb: join(dir, 'state', 'history.sqlite'), clock: systemClock, events, logger: silentLogger, heartbeatMs: options.heartbeatMs,
    settings: {simulation_autostart: false, ...settings}, certificates: () => [{name: 'localhost', notAfter: tls.notAfter}],
  })
  const stream = await startStreamer(wiring.hub, tls)
  const api = await startApi(wiring.plugins, tls)
  wiring.monitoring.start()
  return {
    dir, tls, wiring, api, stream, events,
    async close() {
      await stream.close()
      await api.app.close()
      wiring.close()
      await rm(dir, {recursive: true, force: true})
    },
  }
}

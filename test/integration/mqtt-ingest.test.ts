import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import mqtt from 'mqtt'
import {Agent, fetch} from 'undici'

import {collectStatus} from '../../src/services/daemon/status.js'
import {type Mosquitto, startMosquitto} from '../helpers/mosquitto.js'
import {freePort} from '../helpers/ports.js'
import {type ServeProcess, spawnServe, writeDataSettings} from '../helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../helpers/serve.js'

type Json = any

const reading = (ts: number, overrides: Record<string, unknown> = {}) => ({
  timestamp: ts, time_hours: 0, reservoir_concentration: 25, outlet_concentration: 24.9, total_power: 0.002, cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5], ...overrides,
})

/** Recent enough to survive the retention prune at each serve start. */
const HOUR_AGO = Math.floor(Date.now() / 1000) * 1000 - 3_600_000

async function until<T>(what: string, probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T
  do {
    last = await probe()
    if (ok(last)) return last
    await new Promise((resolve) => setTimeout(resolve, 50))
  } while (Date.now() < deadline)
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last).slice(0, 500)}`)
}

describe('MQTT ingest from a real Mosquitto into a real `mfc serve`', function () {
  this.timeout(120_000)
  let dir: string
  let site: TestSite
  let broker: Mosquitto
  let serve: ServeProcess
  let dispatcher: Agent
  let publisher: mqtt.MqttClient
  let port: number

  const call = async (path: string) => {
    const response = await fetch(serve.url('api') + path, {dispatcher, headers: {authorization: `Bearer ${TEST_TOKEN}`}})
    const text = await response.text()
    return {status: response.status, text, json: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) as Json : undefined}
  }

  const rows = async (source: string) => (await call(`/data/range?source=${source}&limit=10000`)).json as Json[]
  const publish = (topic: string, payload: string | object) => publisher.publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), {qos: 1})

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-mqtt-'))
    port = await freePort()
    broker = await startMosquitto(dir, port)
    site = await testSite()
    writeDataSettings(site, {simulation_autostart: false, rate_limit_per_minute: 0, mqtt_url: `mqtt://127.0.0.1:${port}`, mqtt_topic: 'lab/<source>/readings', mqtt_client_id: `mfc-test-${port}`})
    serve = await spawnServe(site)
    dispatcher = new Agent({connect: {ca: site.caPem}})
    publisher = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {clientId: `pub-${port}`, reconnectPeriod: 200})
    await until('the subscription', () => call('/mqtt/status'), (s) => s.json?.connected === true)
  })
  after(async () => {
    await publisher?.endAsync(true)
    await dispatcher?.close()
    if (serve) await serve.stop()
    await broker?.stop()
    await site?.temp.cleanup()
    await rm(dir, {recursive: true, force: true})
  })

  it('stores QoS 1 messages under the topic\'s source, in every payload shape, and shows the subscription', async () => {
    const t = HOUR_AGO
    await publish('lab/rig-m/readings', reading(t))
    await publish('lab/rig-m/readings', [reading(t + 1000), reading(t + 2000)])
    await publish('lab/rig-m/readings', {readings: [reading(t + 3000)]})
    const stored = await until('4 readings', () => rows('rig-m'), (r) => r?.length === 4)
    expect(stored.map((r) => r.source)).to.deep.equal(['rig-m', 'rig-m', 'rig-m', 'rig-m'])
    const status = (await call('/mqtt/status')).json
    expect(status).to.include({configured: true, connected: true, url: `mqtt://127.0.0.1:${port}`, subscription: 'lab/+/readings', messages: 3, rejected: 0})
    expect((await call('/sources/rig-m')).json).to.include({readings: 4, state: 'online'})
    // `mfc status` asks the running serve for its subscription.
    const report = await collectStatus(site.config, {now: new Date(), token: TEST_TOKEN})
    expect(report.mqtt).to.include({connected: true, url: `mqtt://127.0.0.1:${port}`, subscription: 'lab/+/readings', messages: 3})
  })

  it('logs, counts and acknowledges bad payloads without blocking the subscription', async () => {
    const t = HOUR_AGO + 60_000
    await publish('lab/rig-m/readings', 'not json {')
    await publish('lab/rig-m/readings', reading(t, {total_power: 'high'}))
    await publish('lab/rig-m/readings', {source: 'rig-other', readings: [reading(t)]})
    await publish('lab/bad$name/readings', reading(t))
    await publish('lab/rig-m/readings', reading(t + 1000))
    await until('the good message after the bad ones', () => rows('rig-m'), (r) => r?.length === 5)
    expect((await call('/mqtt/status')).json).to.include({rejected: 4, connected: true})
    expect((await call('/metrics')).text).to.match(/^mfc_mqtt_rejected_messages_total 4$/m)
    expect(readFileSync(serve.logFile, 'utf8')).to.match(/mqtt message rejected/)
  })

  it('reconnects with backoff after a broker restart and goes on storing', async () => {
    await broker.stop()
    await until('the lost connection', () => call('/mqtt/status'), (s) => s.json?.connected === false)
    const report = await collectStatus(site.config, {now: new Date(), token: TEST_TOKEN})
    expect(report.status, 'status says so while the broker is away').to.equal('degraded')
    expect(report.problems.join('; ')).to.match(/mqtt: not connected to mqtt:\/\/127\.0\.0\.1/)
    broker = await startMosquitto(dir, port)
    await until('the reconnect', () => call('/mqtt/status'), (s) => s.json?.connected === true)
    expect((await call('/mqtt/status')).json.reconnects).to.be.greaterThan(0)
    await until('the publisher', async () => publisher.connected, (c) => c)
    await publish('lab/rig-m/readings', reading(HOUR_AGO + 120_000))
    await until('the message after the restart', () => rows('rig-m'), (r) => r?.length === 6)
  })

  it('loses nothing and stores nothing twice when serve is killed -9 between PUBLISH and PUBACK', async () => {
    const t = HOUR_AGO + 180_000
    const total = 400
    const sends = Array.from({length: total}, (_, i) => publish('lab/rig-k/readings', reading(t + i * 1000)))
    await until('some of the readings', () => rows('rig-k'), (r) => (r?.length ?? 0) >= 40)
    serve.child.kill('SIGKILL')
    await new Promise((resolve) => serve.child.once('exit', resolve))
    const before = (await Promise.all(sends)).length
    expect(before).to.equal(total)
    serve = await spawnServe(site)
    const stored = await until(`all ${total} readings`, () => rows('rig-k'), (r) => (r?.length ?? 0) >= total)
    // Give a late redelivery the chance to show up as a duplicate before counting.
    await new Promise((resolve) => setTimeout(resolve, 500))
    const again = await rows('rig-k')
    expect(again).to.have.length(total)
    expect(new Set(again.map((r) => r.timestamp)).size).to.equal(total)
    expect(stored[0].timestamp).to.equal(new Date(t).toISOString())
  })
})

import {expect} from 'chai'
import {connect as tlsConnect} from 'node:tls'
import {Agent, fetch} from 'undici'
import WebSocket from 'ws'

import {type ServeProcess, spawnServe, writeDataSettings} from '../helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../helpers/serve.js'

type Json = any

/** A WSS client that queues messages so a test can wait for the next one of a type. */
class StreamClient {
  readonly messages: Json[] = []
  private waiters: {type: string; resolve: (m: Json) => void}[] = []
  readonly socket: WebSocket
  readonly closed: Promise<void>

  constructor(url: string, options: WebSocket.ClientOptions) {
    this.socket = new WebSocket(url, options)
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()))
    this.socket.on('error', () => {})
    this.socket.on('message', (data) => {
      const message = JSON.parse(data.toString())
      const index = this.waiters.findIndex((w) => w.type === message.type)
      if (index === -1) this.messages.push(message)
      else this.waiters.splice(index, 1)[0].resolve(message)
    })
  }

  next(type: string): Promise<Json> {
    const index = this.messages.findIndex((m) => m.type === type)
    if (index !== -1) return Promise.resolve(this.messages.splice(index, 1)[0])
    return new Promise((resolve) => this.waiters.push({type, resolve}))
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  close(): Promise<void> {
    this.socket.close()
    return this.closed
  }
}

/** The handshake's HTTP status (101 when it was accepted). */
function handshake(url: string, options: WebSocket.ClientOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options)
    socket.once('open', () => {
      socket.terminate()
      resolve(101)
    })
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0)
      socket.terminate()
    })
    socket.once('error', reject)
  })
}

const reading = (i: number, overrides: Record<string, unknown> = {}) => ({
  timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), time_hours: i * 0.1, reservoir_concentration: 25, outlet_concentration: 24.9,
  total_power: 0.002, cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5], biofilm_thicknesses: [10, 10, 10, 10, 10], q_action: 3, ...overrides,
})

describe('data API and stream of a real `mfc serve` process', function () {
  this.timeout(60_000)
  let site: TestSite
  let serve: ServeProcess
  let dispatcher: Agent
  const clients: StreamClient[] = []

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {authorization: `Bearer ${TEST_TOKEN}`}) => {
    const response = await fetch(serve.url('api') + path, {
      method, dispatcher, headers: body === undefined ? headers : {...headers, 'content-type': 'application/json'},
      body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
    })
    const text = await response.text()
    let json: Json
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }

    return {status: response.status, headers: response.headers, text, json}
  }

  const connect = (options: WebSocket.ClientOptions = {}) => {
    const client = new StreamClient(serve.url('streamer') + '/', {ca: site.caPem, headers: {authorization: `Bearer ${TEST_TOKEN}`}, ...options})
    clients.push(client)
    return client
  }

  const metric = async (name: string) => {
    const text = (await call('GET', '/metrics')).text
    return new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]
  }

  before(async () => {
    site = await testSite()
    // This file checks the data side, with many quick calls from one address: no rate limit here
    // (dashboard-browser.test.ts runs with the default limits).
    writeDataSettings(site, {simulation_autostart: false, simulation_speed: 50, simulation_sample_ms: 100, rate_limit_per_minute: 0, source_stale_after_s: 1, source_offline_after_s: 2})
    serve = await spawnServe(site)
    dispatcher = new Agent({connect: {ca: site.caPem}})
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await dispatcher?.close()
    if (serve) expect(await serve.stop(), serve.output()).to.equal(0)
    await site?.temp.cleanup()
  })

  it('needs the token on every data route (401 without, with the JSON error body)', async () => {
    for (const path of ['/simulation/status', '/data/latest', '/metrics', '/alerts/config', '/dashboard/info', '/data/export/csv']) {
      const anonymous = await call('GET', path, undefined, {})
      expect(anonymous.status, path).to.equal(401)
      expect(anonymous.json.error.code, path).to.equal('MFC_UNAUTHORIZED')
    }

    expect((await call('POST', '/data/ingest', {readings: [reading(1)]}, {})).status).to.equal(401)
    expect((await call('GET', '/data/latest?limit=1', undefined, {authorization: 'Bearer wrong-token-guess'})).status).to.equal(401)
  })

  it('validates simulation configs: 422 with details, 400 over one year, never 500', async () => {
    const bad = await call('POST', '/simulation/start', {duration_hours: -1, n_cells: 30})
    expect(bad.status).to.equal(422)
    expect(bad.json.detail.map((d: Json) => d.loc.at(-1))).to.have.members(['duration_hours', 'n_cells'])
    const long = await call('POST', '/simulation/start', {duration_hours: 9000})
    expect(long.status).to.equal(400)
    expect(long.json.detail).to.equal('Duration exceeds maximum allowed (1 year)')
    expect((await call('POST', '/simulation/start', '{not json')).status).to.equal(400)
    expect((await call('GET', '/metrics/performance')).status).to.equal(404)
  })

  it('runs a simulation: start, stream points, status with progress, stop, final metrics', async () => {
    const client = connect()
    await client.next('initial_data')
    const started = await call('POST', '/simulation/start', {duration_hours: 1000, n_cells: 3})
    expect(started.status).to.equal(200)
    expect(started.json).to.include({status: 'started', message: 'Simulation started successfully'})
    expect(started.json.config).to.include({n_cells: 3, use_pretrained: true, learning_rate: 0.1})
    expect((await call('POST', '/simulation/start', {duration_hours: 1})).status).to.equal(409)
    const update = await client.next('data_update')
    expect(update.data[0]).to.include({source: 'simulator', run_id: started.json.run_id})
    expect(update.data[0].cell_voltages).to.have.length(3)
    const status = await call('GET', '/simulation/status')
    expect(status.json).to.include({is_running: true, state: 'running', duration_hours: 1000})
    expect(status.json.progress_percent).to.be.greaterThan(0)
    const stopped = await call('POST', '/simulation/stop')
    expect(stopped.json).to.include({status: 'stopped', message: 'Simulation stopped successfully'})
    expect(stopped.json.simulation).to.include({is_running: false, state: 'stopped'})
    const performance = await call('GET', '/metrics/performance')
    expect(performance.status).to.equal(200)
    expect(performance.json).to.have.keys('steps', 'final_reservoir_concentration', 'mean_concentration', 'std_concentration', 'max_deviation', 'mean_deviation',
      'final_power', 'mean_power', 'total_substrate_added', 'control_effectiveness_2mM', 'control_effectiveness_5mM', 'stability_coefficient_variation',
      'run_id', 'state', 'energy_efficiency', 'stability_score')
  })

  it("serve's GET / lists real routes, and every parameterless GET route answers 200 with the token and 401 without", async () => {
    const index = await call('GET', '/')
    expect(index.json).to.include({service: 'MFC Monitoring Dashboard API', status: 'running'})
    expect(index.json.endpoints).to.deep.equal({
      health: '/health', system_info: '/system/info', simulation: '/simulation/status', data: '/data/latest', metrics: '/metrics', alerts: '/alerts',
    })
    const gets = (index.json.routes as string[]).filter((r) => r.startsWith('GET ') && !r.includes(':')).map((r) => r.slice(4))
    expect(gets).to.include.members(['/', '/system/info', '/simulation/status', '/data/latest', '/data/range', '/metrics/performance', '/alerts/config', '/alerts', '/metrics', '/dashboard/info'])
    for (const path of gets) {
      if (path === '/data/history') {
        const refused = await call('GET', path)
        expect(refused.status, 'required source/from/to').to.equal(400)
        expect(refused.json.detail).to.match(/source/)
        continue
      }

      expect((await call('GET', path)).status, path).to.equal(200)
      if (path !== '/health') expect((await call('GET', path, undefined, {})).status, path).to.equal(401)
    }

    const info = (await call('GET', '/system/info')).json
    expect(info.ssl_config.https_port, 'the listening port, not the configured 0').to.equal(serve.ports.api)
    expect(info.health.services).to.deep.equal({api: 'running', dashboard: 'running', streamer: 'running'})
  })

  it('ingests a batch durably, rejects a bad one whole, and serves it back with data timestamps', async () => {
    const before = (await call('GET', '/data/latest?limit=10000')).json.length
    const ok = await call('POST', '/data/ingest', {source: 'rig-1', readings: [reading(1), reading(2)]})
    expect(ok.status).to.equal(200)
    expect(ok.json).to.include({status: 'stored', accepted: 2})
    const bad = await call('POST', '/data/ingest', {readings: [reading(3), reading(4, {cell_voltages: [1, 1, 1, 1, 1, 1]})]})
    expect(bad.status).to.equal(400)
    expect(bad.json.detail).to.match(/Unknown cell 6/)
    expect((await call('POST', '/data/ingest', {readings: [reading(3, {total_power: 'x'})]})).status).to.equal(400)
    const all = (await call('GET', '/data/latest?limit=10000')).json
    expect(all.length).to.equal(before + 2)
    const latest = (await call('GET', '/data/latest?limit=2')).json
    expect(latest, 'served from memory, the same as the history says').to.deep.equal(all.slice(-2))
    expect(latest.map((r: Json) => r.timestamp)).to.deep.equal(['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.000Z'])
    expect((await call('GET', '/data/latest?limit=abc')).status).to.equal(422)
    const range = await call('GET', '/data/range?from=2026-01-01T00:00:02Z&to=2026-01-01T00:00:05Z')
    expect(range.json.map((r: Json) => r.source)).to.deep.equal(['rig-1'])
    const again = await call('POST', '/data/ingest', {source: 'rig-1', readings: [reading(2), reading(3)]})
    expect(again.json, 'a retried reading is stored once').to.include({accepted: 2, duplicates: 1})
    expect((await call('GET', '/data/range?source=rig-1')).json).to.have.length(3)
  })

  it('makes sources first-class: registered on first data or by PUT, filtered by the posted name', async () => {
    await call('POST', '/data/ingest', {source: 'rig-2', readings: [reading(1, {reservoir_concentration: 11, timestamp: Date.UTC(2026, 0, 1, 0, 0, 1)})]})
    const listed = (await call('GET', '/sources')).json
    expect(listed.sources.map((s: Json) => s.name)).to.include.members(['rig-1', 'rig-2'])
    const rig2 = listed.sources.find((s: Json) => s.name === 'rig-2')
    expect(rig2).to.include({cells: 5, readings: 1, state: 'online'})
    expect(rig2.latest).to.include({source: 'rig-2', reservoir_concentration: 11})
    const put = await call('PUT', '/sources/rig-3', {cells: 3, description: 'Three-cell stack', location: 'Lab 2, bench 4'})
    expect(put.status).to.equal(200)
    expect(put.json.source).to.include({name: 'rig-3', cells: 3, description: 'Three-cell stack', readings: 0})
    expect((await call('GET', '/sources/rig-3')).json).to.include({state: 'never', location: 'Lab 2, bench 4'})
    const three = await call('POST', '/data/ingest', {source: 'rig-3', readings: [reading(1, {cell_voltages: [0.5, 0.5, 0.5], biofilm_thicknesses: [1, 1, 1]})]})
    expect(three.status, 'per-cell arrays follow the registered count').to.equal(200)
    expect((await call('POST', '/data/ingest', {source: 'rig-3', readings: [reading(2)]})).json.detail).to.match(/Unknown cell 4: the stack has 3 cells/)
    expect((await call('PUT', '/sources/rig-3', {cells: 4})).status, 'cannot change the cells of a stack with data').to.equal(400)
    expect((await call('PUT', '/sources/rig-3', {colour: 'red'})).status).to.equal(400)
    expect((await call('PUT', '/sources/bad%20name', {})).status).to.equal(400)
    expect((await call('GET', '/sources/nobody')).status).to.equal(404)
    expect((await call('POST', '/data/ingest', {source: 'simulator', readings: [reading(1)]})).status, "the server's own source").to.equal(400)
    const latest = (await call('GET', '/data/latest?source=rig-2')).json
    expect(latest.map((r: Json) => r.source)).to.deep.equal(['rig-2'])
  })

  it('downsamples history on the server: min/max/mean per bucket, and refuses bad ranges with a reason', async () => {
    const start = Date.UTC(2026, 0, 3)
    const readings = Array.from({length: 600}, (_, i) => reading(0, {timestamp: new Date(start + i * 1000).toISOString(), total_power: i / 1000}))
    await call('POST', '/data/ingest', {source: 'rig-4', readings})
    const history = await call('GET', `/data/history?source=rig-4&from=${start}&to=${new Date(start + 599_999).toISOString()}&buckets=10`)
    expect(history.status).to.equal(200)
    expect(history.json).to.include({source: 'rig-4', bucket_ms: 60_000})
    expect(history.json.buckets).to.have.length(10)
    expect(history.json.buckets[0]).to.deep.include({t: start, n: 60})
    const [min, max, mean] = history.json.buckets[0].values.total_power
    expect([min, max]).to.deep.equal([0, 0.059])
    expect(mean).to.be.closeTo(0.0295, 1e-12)
    for (const bad of ['source=rig-4&from=1&to=x', 'source=rig 4&from=1&to=2', `source=rig-4&from=${start}&to=${start}`, 'from=1&to=2', `source=rig-4&from=1&to=2&buckets=0`]) {
      const refused = await call('GET', `/data/history?${bad}`)
      expect(refused.status, bad).to.equal(400)
      expect(refused.json.detail, bad).to.be.a('string')
    }
  })

  it('group-commits concurrent single-reading requests; each one is durable when acknowledged', async () => {
    const start = Date.UTC(2026, 0, 4)
    const posts = Array.from({length: 64}, (_, i) => call('POST', '/data/ingest', {source: 'rig-5', readings: [reading(0, {timestamp: start + i * 1000})]}))
    const receipts = await Promise.all(posts)
    expect(receipts.map((r) => r.status)).to.deep.equal(Array.from({length: 64}, () => 200))
    expect((await call('GET', '/sources/rig-5')).json.readings).to.equal(64)
    expect((await call('GET', '/data/range?source=rig-5&limit=100')).json).to.have.length(64)
  })

  it('streams only the subscribed sources, and raises "no data" for a silent source, cleared by its next reading', async () => {
    const client = connect()
    await client.next('initial_data')
    client.send({type: 'subscribe', streams: ['all'], sources: ['rig-6']})
    expect((await client.next('subscription_confirmed')).sources).to.deep.equal(['rig-6'])
    await call('POST', '/data/ingest', {source: 'rig-7', readings: [reading(30)]})
    await call('POST', '/data/ingest', {source: 'rig-6', readings: [reading(31)]})
    const update = await client.next('data_update')
    expect(update.data.map((p: Json) => p.source)).to.deep.equal(['rig-6'])
    const silent = await client.next('alert_raised')
    expect(silent.alert).to.include({source: 'rig-6', parameter: 'no_data', active: true})
    expect((await call('GET', '/sources/rig-6')).json.state).to.equal('offline')
    await call('POST', '/data/ingest', {source: 'rig-6', readings: [reading(32)]})
    expect((await client.next('alert_cleared')).alert).to.include({source: 'rig-6', parameter: 'no_data', active: false})
    expect(client.messages.filter((m) => m.type === 'data_update' && m.data.some((p: Json) => p.source !== 'rig-6'))).to.have.length(0)
    client.send({type: 'subscribe', sources: 'rig-6'})
    expect((await client.next('error')).message).to.match(/Invalid sources/)
  })

  it('streams exports with the right names and types', async () => {
    const csv = await call('GET', '/data/export/csv?source=rig-1')
    expect(csv.status).to.equal(200)
    expect(csv.headers.get('content-type')).to.match(/^text\/csv/)
    expect(csv.headers.get('content-disposition')).to.match(/^attachment; filename="mfc_simulation_data_\d{8}_\d{6}\.csv"$/)
    expect(csv.text.trimEnd().split('\n')).to.have.length(4)
    const json = await call('GET', '/data/export/json?source=rig-1')
    expect(json.headers.get('content-disposition')).to.match(/\.json"$/)
    expect(json.json).to.have.length(3)
    expect((await call('GET', '/data/export/excel')).status).to.equal(400)
    expect((await call('GET', '/data/export/csv?from=2099-01-01T00:00:00Z')).status).to.equal(404)
  })

  it('persists alert thresholds and raises alerts on the stream once per episode', async () => {
    expect((await call('GET', '/alerts/config')).json.alerts[0]).to.deep.equal({parameter: 'reservoir_concentration', threshold_min: 20, threshold_max: 30, enabled: true, email_notify: false})
    const updated = await call('POST', '/alerts/config', [{parameter: 'reservoir_concentration', threshold_min: 22, threshold_max: 28}])
    expect(updated.json.message).to.equal('Alert configuration updated with 1 alerts')
    expect((await call('GET', '/alerts/config')).json.alerts.find((a: Json) => a.parameter === 'reservoir_concentration')).to.include({threshold_min: 22})
    expect((await call('POST', '/alerts/config', [{parameter: 'nope', threshold_min: 1}])).status).to.equal(422)

    const client = connect()
    await client.next('initial_data')
    client.send({type: 'subscribe', streams: ['alerts']})
    expect((await client.next('subscription_confirmed')).streams).to.deep.equal(['alerts'])
    await call('POST', '/data/ingest', {readings: [reading(10, {reservoir_concentration: 35}), reading(11, {reservoir_concentration: 36})]})
    const raised = await client.next('alert_raised')
    expect(raised.alert).to.include({parameter: 'reservoir_concentration', active: true, value: 35})
    await call('POST', '/data/ingest', {readings: [reading(12, {reservoir_concentration: 25})]})
    expect((await client.next('alert_cleared')).alert).to.include({parameter: 'reservoir_concentration', active: false})
    expect(client.messages.filter((m) => m.type === 'alert_raised' && m.alert.parameter === 'reservoir_concentration')).to.have.length(0)
    expect(client.messages.filter((m) => m.type === 'data_update')).to.have.length(0)
  })

  it('removes a source\'s own threshold with DELETE /alerts/config; the stream hears the episode end at once', async () => {
    const set = await call('POST', '/alerts/config?source=rig-del', [{parameter: 'reservoir_concentration', threshold_min: 10, threshold_max: 20}])
    expect(set.status, set.text).to.equal(200)
    const client = connect()
    await client.next('initial_data')
    client.send({type: 'subscribe', streams: ['alerts']})
    await client.next('subscription_confirmed')
    await call('POST', '/data/ingest', {source: 'rig-del', readings: [reading(20, {reservoir_concentration: 25})]})
    expect((await client.next('alert_raised')).alert).to.include({source: 'rig-del', parameter: 'reservoir_concentration', value: 25})
    const cleared = await call('DELETE', '/alerts/config?source=rig-del&parameter=reservoir_concentration')
    expect(cleared.json).to.include({status: 'cleared', source: 'rig-del', removed: 1})
    expect((await client.next('alert_cleared')).alert, 'no new reading needed').to.include({source: 'rig-del', parameter: 'reservoir_concentration', active: false})
    expect((await call('GET', '/alerts/config?source=rig-del')).json.overrides).to.deep.equal([])
    const missing = await call('DELETE', '/alerts/config')
    expect(missing.status).to.equal(400)
    expect(missing.json.detail).to.match(/needs \?source=NAME/)
    expect((await call('DELETE', '/alerts/config?source=rig-del&parameter=nope')).status).to.equal(400)
  })

  it('speaks the stream protocol: pong, bounded data_response, filtered updates, heartbeat, errors', async () => {
    const client = connect()
    const initial = await client.next('initial_data')
    expect(initial.data.length).to.be.within(1, 100)
    client.send({type: 'ping'})
    expect(await client.next('pong')).to.have.keys('type', 'timestamp')
    client.send({type: 'request_data', limit: 3})
    expect((await client.next('data_response')).data).to.have.length(3)
    client.send({type: 'request_data', limit: 0})
    expect((await client.next('data_response')).data).to.have.length(1)
    client.send({type: 'request_data', limit: 'all'})
    expect((await client.next('error')).message).to.match(/Invalid limit/)
    client.send('{oops')
    expect((await client.next('error')).message).to.equal('Invalid JSON message')
    client.send([1])
    expect((await client.next('error')).message).to.match(/expected a JSON object/)
    client.send({type: 'dance'})
    expect((await client.next('error')).message).to.equal('Unknown message type: dance')
    client.send({type: 'subscribe', streams: ['warp']})
    expect((await client.next('error')).message).to.match(/Unknown stream\(s\): warp/)
    expect((await client.next('heartbeat')).clients_connected).to.be.at.least(1)
    client.send({type: 'subscribe', streams: ['power']})
    await client.next('subscription_confirmed')
    await call('POST', '/data/ingest', {readings: [reading(20)]})
    const update = await client.next('data_update')
    expect(Object.keys(update.data[0]).sort()).to.deep.equal(['cell_powers', 'run_id', 'source', 'time_hours', 'timestamp', 'total_power'])
  })

  it("the streamer checks Origin: the dashboard's origin with its session cookie is let in, others are not", async () => {
    const login = await fetch(serve.url('dashboard') + '/login', {method: 'POST', dispatcher, headers: {'content-type': 'application/json'}, body: JSON.stringify({token: TEST_TOKEN})})
    const cookie = login.headers.get('set-cookie')!.split(';')[0]
    const dashboard = `https://127.0.0.1:${serve.ports.dashboard}`
    const url = serve.url('streamer') + '/'
    expect(await handshake(url, {ca: site.caPem, headers: {origin: dashboard, cookie}})).to.equal(101)
    expect(await handshake(url, {ca: site.caPem, headers: {origin: `https://localhost:${serve.ports.dashboard}`, cookie}})).to.equal(101)
    expect(await handshake(url, {ca: site.caPem, headers: {origin: 'https://evil.example', cookie}})).to.equal(403)
    expect(await handshake(url, {ca: site.caPem, headers: {origin: dashboard}})).to.equal(401)
    expect(await handshake(url, {ca: site.caPem, headers: {cookie}}), 'no Origin: only with a token').to.equal(401)
  })

  it('exposes Prometheus metrics: readings per cell, alerts, the served certificate\'s expiry, requests, stream clients', async () => {
    const served = await new Promise<Date>((resolve, reject) => {
      const socket = tlsConnect({host: '127.0.0.1', port: serve.ports.api, servername: 'localhost', ca: site.caPem}, () => {
        resolve(new Date(socket.getPeerCertificate().valid_to))
        socket.end()
      })
      socket.once('error', reject)
    })
    const metrics = await call('GET', '/metrics')
    expect(metrics.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/)
    expect(metrics.text).to.match(/^mfc_cell_voltage_volts\{source="rig-1",cell="5"\} 0\.5$/m)
    expect(metrics.text).to.match(/^mfc_reservoir_concentration_moles_per_cubic_metre\{source="rig-2"\} 11$/m)
    expect(metrics.text).to.match(/^mfc_alert_active\{source="ingest",parameter="reservoir_concentration"\} 0$/m)
    expect(metrics.text).to.match(/^mfc_alert_episodes_total\{source="ingest",parameter="reservoir_concentration"\} 1$/m)
    expect(metrics.text).to.include(`mfc_certificate_expiry_timestamp_seconds{name="localhost"} ${Math.floor(served.getTime() / 1000)}`)
    expect(metrics.text).to.match(/^mfc_http_requests_total\{method="POST",route="\/data\/ingest",status="400"\} [1-9]\d*$/m)
    expect(metrics.text).to.match(/^mfc_ingested_readings_total [1-9]\d*$/m)
    // The group commit's transactions and the batches they held (at least one each).
    const commits = Number(/^mfc_history_commits_total (\d+)$/m.exec(metrics.text)?.[1])
    expect(commits).to.be.greaterThan(0)
    expect(Number(/^mfc_history_commit_batches_total (\d+)$/m.exec(metrics.text)?.[1])).to.be.at.least(commits)

    await Promise.all(clients.splice(0).map((c) => c.close()))
    while (await metric('mfc_stream_clients') !== '0') await new Promise((resolve) => setTimeout(resolve, 50))
    const three = [connect(), connect(), connect()]
    await Promise.all(three.map((c) => c.next('initial_data')))
    expect(await metric('mfc_stream_clients')).to.equal('3')
  })

  it('writes no runtime warning (deprecations, experimental features) to its output', () => {
    expect(serve.output()).not.to.match(/Warning|DEP\d+/)
  })
})

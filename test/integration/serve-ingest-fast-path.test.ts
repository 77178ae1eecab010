import {mkdirSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {request} from 'node:https'

import {expect} from 'chai'

import {systemClock} from '../../src/lib/clock.js'
import {MfcEventBus} from '../../src/lib/events.js'
import {silentLogger} from '../../src/lib/logger.js'
import {dataPlugins} from '../../src/services/data/data-routes.js'
import {createMonitoring, type MonitoringWiring} from '../../src/services/data/monitoring.js'
import {recordFastifyReplies} from '../helpers/fastify-replies.js'
import {type Running, TEST_TOKEN, type TestSite, startServe, testSite} from '../helpers/serve.js'

interface Answer {status: number; headers: [string, string][]; body: string}
interface Probe {
  name: string
  service?: 'api' | 'dashboard'
  method?: string
  path?: string
  headers?: Record<string, string>
  /** The body, sent with its Content-Length unless `chunks` (then chunked, no length). */
  body?: string
  chunks?: string[]
}

/**
 * One request on a fresh connection that asks to be kept alive (so an answer that closes it
 * shows): status, raw header lines in wire order, body.
 */
function send(base: string, ca: string, probe: Probe, from: string): Promise<Answer> {
  const headers: Record<string, string> = {connection: 'keep-alive', 'x-forwarded-for': from, ...probe.headers}
  if (probe.body !== undefined && headers['content-length'] === undefined) headers['content-length'] = String(Buffer.byteLength(probe.body))
  return new Promise((resolve, reject) => {
    const req = request(`${base}${probe.path ?? '/data/ingest'}`, {ca, method: probe.method ?? 'POST', headers, agent: false, servername: 'localhost'}, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => {
        const lines: [string, string][] = []
        for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push([res.rawHeaders[i].toLowerCase(), res.rawHeaders[i + 1]])
        req.destroy()
        resolve({status: res.statusCode ?? 0, headers: lines, body})
      })
    })
    req.on('error', reject)
    for (const chunk of probe.chunks ?? []) req.write(chunk)
    req.end(probe.body)
  })
}

const ALLOWED_ORIGIN = 'https://monitor.example'
const BLOCKED_CLIENT = '10.66.0.7'
const BEARER = {authorization: `Bearer ${TEST_TOKEN}`}
const JSON_HEADERS = {...BEARER, 'content-type': 'application/json'}
const reading = (second: number, extra: Record<string, unknown> = {}) => ({
  timestamp: Date.UTC(2026, 0, 1, 0, 0, second), time_hours: second / 3600, reservoir_concentration: 25, outlet_concentration: 24.9, total_power: 0.002,
  biofilm_thicknesses: [10, 10, 10, 10, 10], cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5], ...extra,
})
const one = (source: string, second: number, extra: Record<string, unknown> = {}) => JSON.stringify({source, readings: [reading(second, extra)]})

/**
 * The same requests, in the same order, for each server. `fast`: the fast path answers it
 * itself; the others must reach fastify. Each probe comes from its own forwarded client address
 * (127.0.0.1 is a trusted proxy here) except the rate-limited ones, which share one.
 */
const PROBES: (Probe & {fast: boolean})[] = [
  {name: 'one reading', fast: true, headers: JSON_HEADERS, body: one('rig-1', 1)},
  {name: 'the same reading again (a duplicate)', fast: true, headers: JSON_HEADERS, body: one('rig-1', 1)},
  {name: 'three readings, ISO timestamps', fast: true, headers: JSON_HEADERS, body: JSON.stringify({source: 'rig-2', readings: [2, 3, 4].map((s) => reading(s, {timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString()}))})},
  {name: 'a bare array (source "ingest")', fast: true, headers: JSON_HEADERS, body: JSON.stringify([reading(5)])},
  {name: 'charset=utf-8', fast: true, headers: {...BEARER, 'content-type': 'application/json; charset=utf-8'}, body: one('rig-3', 6)},
  {name: 'a byte order mark', fast: true, headers: JSON_HEADERS, body: '\uFEFF' + one('rig-3', 7)},
  {name: 'split over two TCP writes, with a length', fast: true, headers: {...JSON_HEADERS, 'content-length': String(Buffer.byteLength(one('rig-4', 8)))}, chunks: [one('rig-4', 8).slice(0, 20), one('rig-4', 8).slice(20)]},
  {name: 'not JSON', fast: true, headers: JSON_HEADERS, body: '{"readings": ['},
  {name: 'invalid UTF-8 in a string', fast: true, headers: JSON_HEADERS, body: one('rig-\udc00', 9)},
  {name: '__proto__ key', fast: true, headers: JSON_HEADERS, body: '{"__proto__": {"admin": true}, "readings": []}'},
  {name: 'constructor.prototype key', fast: true, headers: JSON_HEADERS, body: '{"constructor": {"prototype": {"admin": true}}, "readings": []}'},
  {name: 'nested deeper than 32', fast: true, headers: JSON_HEADERS, body: '['.repeat(40) + ']'.repeat(40)},
  {name: 'a string, not an object', fast: true, headers: JSON_HEADERS, body: '"hello"'},
  {name: 'null', fast: true, headers: JSON_HEADERS, body: 'null'},
  {name: 'no readings', fast: true, headers: JSON_HEADERS, body: '{"source": "rig-1", "readings": []}'},
  {name: 'over ingest_max_batch', fast: true, headers: JSON_HEADERS, body: JSON.stringify({source: 'rig-1', readings: Array.from({length: 6}, (_, i) => reading(100 + i))})},
  {name: 'bad fields (collected issues)', fast: true, headers: JSON_HEADERS, body: JSON.stringify({source: 'rig-1', readings: [reading(10, {total_power: -1, colour: 'red', timestamp: 'yesterday'}), reading(11, {cell_voltages: [1]})]})},
  {name: 'the server\'s own source', fast: true, headers: JSON_HEADERS, body: one('simulator', 12)},
  {name: 'a bad source name', fast: true, headers: JSON_HEADERS, body: one('rig one!', 13)},
  {name: 'dashboard port, bearer token', service: 'dashboard', fast: true, headers: JSON_HEADERS, body: one('rig-5', 14)},
  {name: 'dashboard port, not JSON', service: 'dashboard', fast: true, headers: JSON_HEADERS, body: '{'},
  // fastify's: refusals of the gate (answered from its decision), cookies, CORS, other types, sizes, framings.
  {name: 'wrong token', fast: false, headers: {...JSON_HEADERS, authorization: 'Bearer wrong-token-0123456789abcdefghij'}, body: one('rig-1', 20)},
  {name: 'not a bearer scheme', fast: false, headers: {...JSON_HEADERS, authorization: 'Basic dXNlcjpwYXNz'}, body: one('rig-1', 21)},
  {name: 'no credentials', fast: false, headers: {'content-type': 'application/json'}, body: one('rig-1', 22)},
  {name: 'an unknown session cookie', fast: false, headers: {'content-type': 'application/json', cookie: 'mfc_session=nope'}, body: one('rig-1', 23)},
  {name: 'blocked client', fast: false, headers: {...JSON_HEADERS, 'x-forwarded-for': BLOCKED_CLIENT}, body: one('rig-1', 24)},
  {name: 'forwarded address not an IP', fast: false, headers: {...JSON_HEADERS, 'x-forwarded-for': 'not-an-ip'}, body: one('rig-1', 25)},
  {name: 'allowed Origin', fast: false, headers: {...JSON_HEADERS, origin: ALLOWED_ORIGIN}, body: one('rig-6', 26)},
  {name: 'other Origin', fast: false, headers: {...JSON_HEADERS, origin: 'https://evil.example'}, body: one('rig-6', 27)},
  {name: 'text/plain', fast: false, headers: {...BEARER, 'content-type': 'text/plain'}, body: one('rig-1', 28)},
  {name: 'upper-case type', fast: false, headers: {...BEARER, 'content-type': 'Application/JSON'}, body: one('rig-7', 29)},
  {name: 'charset=latin1', fast: false, headers: {...BEARER, 'content-type': 'application/json; charset=latin1'}, body: one('rig-7', 30)},
  {name: 'no content type', fast: false, headers: BEARER, body: one('rig-1', 31)},
  {name: 'empty body', fast: false, headers: JSON_HEADERS, body: ''},
  {name: 'chunked (no length)', fast: false, headers: JSON_HEADERS, chunks: [one('rig-8', 32).slice(0, 10), one('rig-8', 32).slice(10)]},
  {name: 'gzip content encoding', fast: false, headers: {...JSON_HEADERS, 'content-encoding': 'gzip'}, body: one('rig-1', 33)},
  {name: 'over 64 KiB (whitespace)', fast: false, headers: JSON_HEADERS, body: one('rig-9', 34) + ' '.repeat(70_000)},
  {name: 'a query string', fast: false, path: '/data/ingest?x=1', headers: JSON_HEADERS, body: one('rig-10', 35)},
  {name: 'trailing slash', fast: false, path: '/data/ingest/', headers: JSON_HEADERS, body: one('rig-1', 36)},
  {name: 'PUT', fast: false, method: 'PUT', headers: JSON_HEADERS, body: one('rig-1', 37)},
  {name: 'dashboard through the reverse proxy', service: 'dashboard', fast: false, headers: {...JSON_HEADERS, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'monitor.example'}, body: one('rig-11', 38)},
  ...Array.from({length: 6}, (_, i) => ({name: `rate limited #${i + 1}`, fast: i < 5, headers: JSON_HEADERS, body: one('rig-12', 40 + i)})),
]

/** Comparable: no Date, the ports (which the CSP names) masked. */
function stable(answer: Answer): Answer {
  const headers = answer.headers.filter(([name]) => name !== 'date').map(([name, value]) => [name, value.replaceAll(/:\d{2,5}\b/g, ':PORT')] as [string, string])
  return {status: answer.status, headers, body: answer.body}
}

/**
 * Small token-authenticated `POST /data/ingest` requests are answered before fastify
 * (fast-route.ts) unless `ingest_fast_path` is off. For the same requests, both must answer the
 * same status, headers in the same order and body, store the same readings, count the same
 * responses, and hand everything else to fastify.
 */
describe('serve: the ingest fast path answers exactly like the fastify route', function () {
  this.timeout(120_000)
  let site: TestSite
  const running: {serve: Running; data: MonitoringWiring}[] = []

  before(async () => {
    site = await testSite()
    mkdirSync(dirname(site.config.paths.blockedIpsFile), {recursive: true})
    writeFileSync(site.config.paths.blockedIpsFile, `${BLOCKED_CLIENT}\n`)
  })
  after(async () => {
    for (const r of running) await r.serve.close().finally(() => r.data.close())
    await site?.temp.cleanup()
  })

  interface Run {answers: Record<string, Answer>; counted: unknown; routed: string[]; stored: unknown[]; broken: Answer}

  async function run(settings: Record<string, unknown>, fast: boolean): Promise<Run> {
    const routed: string[] = []
    const seen = recordFastifyReplies(routed)
    const config = site.reconfig({...settings, trusted_proxies: ['127.0.0.1'], rate_limit_per_minute: 5, dashboard_origins: [ALLOWED_ORIGIN]} as never)
    const data = await createMonitoring({
      historyDb: join(site.temp.dir, `history-${running.length}.sqlite`), clock: systemClock, events: new MfcEventBus(), logger: silentLogger,
      settings: {ingest_fast_path: fast, ingest_max_batch: 5, simulation_autostart: false, data_retention_days: 0},
    })
    const serve = await startServe(site, {config, apiPlugins: [...dataPlugins(data.monitoring), seen], dashboardPlugins: [...dataPlugins(data.monitoring), seen]})
    running.push({serve, data})
    const answers: Record<string, Answer> = {}
    let client = 0
    for (const probe of PROBES) {
      const from = probe.name.startsWith('rate limited') ? '10.9.9.9' : `10.9.1.${++client}`
      answers[probe.name] = await send(serve.url(probe.service ?? 'api'), site.caPem, probe, from)
    }

    await data.monitoring.commit.drain()
    const stored = (await data.monitoring.history.range({limit: 1000})).map(({timestamp, source, total_power}) => ({timestamp, source, total_power}))
    // A history that cannot be written: the same 503 from both paths.
    await data.monitoring.history.close()
    const broken = await send(serve.url('api'), site.caPem, {name: 'closed history', headers: JSON_HEADERS, body: one('rig-1', 60)}, '10.9.2.1')
    const counted = data.monitoring.requests.entries().sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
    return {answers, counted, routed, stored, broken}
  }

  const modes: Record<string, Record<string, unknown>> = {
    'header block': {security_header_block: true},
    'headers per response': {security_header_block: false},
  }
  for (const [mode, settings] of Object.entries(modes)) {
    it(`${mode}: same status, headers (in order) and body for every probe; same rows and counts`, async () => {
      const viaFastify = await run(settings, false)
      const fast = await run(settings, true)
      for (const [name, answer] of Object.entries(fast.answers)) expect(stable(answer), name).to.deep.equal(stable(viaFastify.answers[name]))
      expect(stable(fast.broken)).to.deep.equal(stable(viaFastify.broken))
      expect(fast.stored).to.deep.equal(viaFastify.stored)
      expect(fast.counted).to.deep.equal(viaFastify.counted)

      // The probes did what they are named for.
      const {answers} = fast
      const json = (name: string) => JSON.parse(answers[name].body)
      expect(json('one reading')).to.deep.equal({status: 'stored', accepted: 1, duplicates: 0, source: 'rig-1', first_timestamp: '2026-01-01T00:00:01.000Z', last_timestamp: '2026-01-01T00:00:01.000Z'})
      expect(json('the same reading again (a duplicate)')).to.include({accepted: 1, duplicates: 1})
      expect(json('three readings, ISO timestamps')).to.include({accepted: 3, source: 'rig-2'})
      expect(json('a bare array (source "ingest")')).to.include({source: 'ingest'})
      for (const name of ['charset=utf-8', 'a byte order mark', 'split over two TCP writes, with a length', 'dashboard port, bearer token']) expect(answers[name].status, name).to.equal(200)
      for (const name of ['not JSON', '__proto__ key', 'constructor.prototype key', 'nested deeper than 32', 'dashboard port, not JSON']) {
        expect(answers[name].status, name).to.equal(400)
        expect(answers[name].headers, name).to.deep.include(['connection', 'close'])
      }

      expect(json('not JSON').detail).to.match(/not valid JSON/)
      expect(json('nested deeper than 32').detail).to.match(/deeper than 32/)
      expect(answers['bad fields (collected issues)'].status).to.equal(400)
      expect(json('bad fields (collected issues)').issues.length).to.be.greaterThan(2)
      expect(answers['bad fields (collected issues)'].headers).to.deep.include(['connection', 'keep-alive'])
      expect(json('over ingest_max_batch').detail).to.match(/limit is 5/)
      expect(answers['wrong token'].status).to.equal(401)
      expect(answers['blocked client'].status).to.equal(403)
      expect(answers['text/plain'].status).to.equal(400)
      expect(answers['rate limited #5'].status).to.equal(200)
      expect(answers['rate limited #6'].status).to.equal(429)
      expect(answers['rate limited #6'].headers.map(([name]) => name)).to.include('retry-after')
      expect(answers['allowed Origin'].headers).to.deep.include(['access-control-allow-origin', ALLOWED_ORIGIN])
      expect(answers['dashboard port, bearer token'].headers).to.deep.include(['cache-control', 'no-store'])
      expect(fast.broken.status).to.equal(503)
      const names = answers['one reading'].headers.map(([name]) => name)
      expect(names).to.include.members(['x-content-type-options', 'x-frame-options', 'strict-transport-security', 'content-security-policy', 'cache-control', 'content-length'])
      expect(new Set(names).size, names.join(', ')).to.equal(names.length)
      expect(fast.stored.length).to.be.greaterThan(10)

      // Only the fast path's own answers skipped fastify.
      const expected = PROBES.filter((p) => !p.fast).map((p) => `${p.method ?? 'POST'} ${p.path ?? '/data/ingest'}`)
      expect(viaFastify.routed).to.have.length(PROBES.length + 1)
      expect(fast.routed).to.deep.equal(expected)
    })
  }
})

import {expect} from 'chai'
import fc from 'fast-check'
import {readFileSync, writeFileSync, mkdirSync} from 'node:fs'
import {dirname} from 'node:path'
import {Agent, request} from 'undici'
import WebSocket from 'ws'

import {resolveConfig} from '../../src/lib/config.js'
import {STREAM_MESSAGE_TYPES} from '../../src/services/data/stream-hub.js'
import {type TempEnv, tempEnv} from '../helpers/cli.js'
import {type ServeProcess, startServeProcess} from '../helpers/serve-process.js'

/**
 * Property: whatever a client sends (any JSON value, wrong content types and charsets,
 * invalid UTF-8, odd query strings, any WebSocket message) gets a 4xx with a JSON reason (or a
 * 2xx when it happens to be valid), never a 5xx; the server keeps serving; and a rejected
 * request changes no state. The routes come from the servers' own route registry (the
 * "Routes" log line), so a new route is covered without touching this file.
 * Bounded: RUNS cases per route and method; the seed is printed by fast-check on a failure
 * (re-run with FC_SEED=<seed>).
 */
const RUNS = Number(process.env.FC_RUNS ?? 60)
const SEED = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED)

const jsonValue = fc.oneof(
  {weight: 5, arbitrary: fc.jsonValue({maxDepth: 4})},
  {weight: 1, arbitrary: fc.constantFrom(null, 0, -1, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, '', true, [], {})},
  {weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype').map((key) => JSON.parse(`{"${key}": {"polluted": 1}, "token": {"${key}": 1}}`) as unknown)},
  {weight: 1, arbitrary: fc.integer({min: 1000, max: 20_000}).map((depth) => '['.repeat(depth) + ']'.repeat(depth))},
  {weight: 1, arbitrary: fc.integer({min: 1000, max: 5000}).map((depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth))},
  {weight: 1, arbitrary: fc.integer({min: 10_000, max: 200_000}).map((n) => ({readings: 'x'.repeat(n), duration_hours: '9'.repeat(400)}))},
)

/** A raw body: JSON text (or a pre-built text), or invalid UTF-8 bytes. */
const body = fc.oneof(
  {weight: 6, arbitrary: jsonValue.map((value) => typeof value === 'string' && /^[[{]/.test(value) ? value : JSON.stringify(value))},
  {weight: 1, arbitrary: fc.uint8Array({minLength: 1, maxLength: 64}).map((bytes) => Buffer.concat([Buffer.from('{"token": "'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(bytes), Buffer.from('"}')]))},
  {weight: 1, arbitrary: fc.string({maxLength: 200})},
)

const contentType = fc.constantFrom(
  'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'application/json; charset=utf-16',
  'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', undefined,
  'application/json; charset="utf-8"; x=y', 'APPLICATION/JSON',
)

const query = fc.oneof(
  fc.constant(''),
  fc.constantFrom('?limit=abc', '?limit=-1', '?limit=1e309', '?limit=99999999999999999999', '?limit[]=1', '?limit=1&limit=2', '?__proto__[x]=1',
    '?constructor[prototype][x]=1', '?a=%ZZ', '?%00=%00', '?start=notadate&end=2020-13-45', '?format=../../etc/passwd', '?' + 'x'.repeat(4000)),
  fc.dictionary(fc.constantFrom('limit', 'start', 'end', 'from', 'to', 'source', 'range', 'step', 'format', '__proto__'), fc.string({maxLength: 30}), {maxKeys: 4})
    .map((params) => '?' + Object.entries(params).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')),
)

/** Values for a `:param` segment or a `*` wildcard. */
const segment = fc.oneof(fc.constantFrom('csv', 'json', 'x', '..', '%2e%2e', '%00', 'a'.repeat(300), '__proto__', 'index.html'), fc.string({minLength: 1, maxLength: 20}).map(encodeURIComponent))

/** fast-check's report, short: the seed and the assertion (counterexamples can be megabytes). */
function brief(error: Error): string {
  const seed = /seed: (-?\d+)/.exec(error.message)?.[1]
  const cause = error.cause instanceof Error ? error.cause.message : error.message.split('\n')[0]
  return `FC_SEED=${seed}: ${cause.slice(0, 600)}`
}

describe('bad input, property-based: every route and WebSocket message type of a real mfc serve', function () {
  this.timeout(600_000)
  let temp: TempEnv
  let serve: ServeProcess
  let dispatcher: Agent
  const routes: {service: 'api' | 'dashboard'; method: string; url: string}[] = []

  before(async () => {
    temp = await tempEnv('mfc-properties-')
    const {paths} = resolveConfig({env: temp.env, isRoot: false})
    mkdirSync(dirname(paths.sslConfigFile), {recursive: true})
    // One client hammers the routes: no rate limits or message budget, no background simulation changing state.
    writeFileSync(paths.sslConfigFile, JSON.stringify({rate_limit_per_minute: 0, auth_failures_per_minute: 1_000_000, ws_messages_per_minute: 0, simulation_autostart: false}))
    serve = await startServeProcess(temp.env)
    dispatcher = new Agent({connect: {ca: serve.caPem}, connections: 4})
    for (const line of readFileSync(serve.logFile, 'utf8').split('\n')) {
      if (!line.includes('"Routes"')) continue
      const entry = JSON.parse(line) as {pid: number; service: 'api' | 'dashboard'; routes: string[]}
      if (entry.pid !== serve.pid) continue
      for (const route of entry.routes) {
        const [method, url] = route.split(' ')
        routes.push({service: entry.service, method, url})
      }
    }
  })
  after(async () => {
    await dispatcher?.close()
    await serve?.stop()
    await temp?.cleanup()
  })

  const call = async (service: 'api' | 'dashboard', method: string, path: string, options: {body?: string | Buffer; type?: string} = {}) => {
    const headers: Record<string, string> = {authorization: `Bearer ${serve.token}`}
    if (options.type !== undefined) headers['content-type'] = options.type
    const response = await request(`${serve.url(service)}${path}`, {method: method as 'GET', dispatcher, headers, body: options.body, headersTimeout: 30_000, bodyTimeout: 30_000})
    const text = await response.body.text()
    return {status: response.statusCode, type: String(response.headers['content-type'] ?? ''), text}
  }

  /** What a rejected request must not change: alert thresholds, the simulation, the history. */
  const snapshot = async () => {
    const [alerts, simulation, metrics] = await Promise.all([call('api', 'GET', '/alerts/config'), call('api', 'GET', '/simulation/status'), call('api', 'GET', '/metrics')])
    const series = (name: string) => new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics.text)?.[1]
    const sim = JSON.parse(simulation.text) as {state?: string; run_id?: string; is_running?: boolean}
    return JSON.stringify({alerts: alerts.text, simulation: [sim.state, sim.run_id, sim.is_running], history: series('mfc_history_readings'), ingested: series('mfc_ingested_readings_total')})
  }

  const expectJsonReason = (status: number, type: string, text: string, what: string) => {
    expect(status, `${what} -> ${status} ${text.slice(0, 300)}`).to.be.below(500)
    if (status >= 400) {
      expect(type, `${what}: a JSON reason`).to.match(/^application\/json/)
      // mfc's own {error: {code, message}}, or the data routes' {detail} (the original's shape).
      const answer = JSON.parse(text) as {error?: {code?: unknown; message?: unknown}; detail?: unknown}
      const reason = answer.error ? [answer.error.code, answer.error.message] : [answer.detail]
      expect(reason.every((r) => (typeof r === 'string' && r !== '') || (Array.isArray(r) && r.length > 0)), `${what}: ${text.slice(0, 200)}`).to.equal(true)
    }
  }

  const concrete = (url: string) => fc.tuple(...url.split('/').map((part) => part.startsWith(':') || part === '*' ? segment : fc.constant(part))).map((parts) => parts.join('/'))

  it('finds the routes of both servers in their route registry', () => {
    const names = routes.map((r) => `${r.service} ${r.method} ${r.url}`)
    expect(names).to.include.members(['api GET /health', 'api POST /data/ingest', 'api POST /alerts/config', 'api POST /simulation/start', 'dashboard POST /login', 'dashboard GET /session'])
    expect(routes.length).to.be.above(20)
  })

  it('regressions it found: a JSON null body, deep nesting, an over-long path segment are 4xx with a reason', async () => {
    const before = await snapshot()
    const nul = await call('api', 'POST', '/simulation/start', {body: 'null', type: 'application/json'})
    expect(nul.status, nul.text).to.equal(422)
    const deep = await call('dashboard', 'POST', '/alerts/config', {body: '['.repeat(5000) + ']'.repeat(5000), type: 'application/json'})
    expect(deep.status, deep.text).to.equal(400)
    expect(JSON.parse(deep.text)).to.have.nested.property('detail').that.includes('nested deeper than')
    const long = await call('api', 'GET', `/data/export/${'a'.repeat(500)}`)
    expect(long.status).to.equal(414)
    expect(JSON.parse(long.text)).to.deep.equal({error: {code: 'MFC_URI_TOO_LONG', message: 'A URL path segment is too long'}})
    expect(await snapshot()).to.equal(before)
  })

  it('any body, content type and query on every route: never a 5xx, 4xx with a JSON reason, rejected = no state change', async () => {
    const failures: string[] = []
    for (const route of routes) {
      const mutating = !['GET', 'OPTIONS'].includes(route.method)
      await fc.assert(fc.asyncProperty(concrete(route.url), query, body, contentType, async (path, search, payload, type) => {
        const before = mutating ? await snapshot() : ''
        const sendsBody = !['GET', 'HEAD', 'OPTIONS'].includes(route.method)
        const what = `${route.service} ${route.method} ${path}${search.slice(0, 80)} (${type}, ${String(payload).slice(0, 60)})`
        const answer = await call(route.service, route.method, path + search, sendsBody ? {body: payload, type} : {})
        expectJsonReason(answer.status, answer.type, answer.text, what)
        if (mutating && answer.status >= 400) expect(await snapshot(), `${what} changed state`).to.equal(before)
      }), {numRuns: RUNS, seed: SEED, endOnFailure: true}).catch((error: Error) => failures.push(`${route.service} ${route.method} ${route.url}: ${brief(error)}`))
      // The server keeps serving.
      expect((await call('api', 'GET', '/health')).status, `after ${route.url}`).to.be.oneOf([200, 503])
    }

    expect(failures.join("\n"), failures.join("\n")).to.equal("")
  })

  it('any WebSocket message (each type with any fields, any JSON, invalid UTF-8, binary): an error message back, the connection keeps serving', async () => {
    const socket = new WebSocket(`${serve.url('streamer')}/`, {ca: serve.caPem, headers: {authorization: `Bearer ${serve.token}`}})
    const inbox: {type?: string; message?: string}[] = []
    const waiters: (() => void)[] = []
    socket.on('message', (data) => {
      inbox.push(JSON.parse(String(data)) as {type?: string})
      waiters.splice(0).forEach((wake) => wake())
    })
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject))
    const next = async (predicate: (m: {type?: string}) => boolean) => {
      const deadline = Date.now() + 10_000
      for (;;) {
        const index = inbox.findIndex(predicate)
        if (index !== -1) return inbox.splice(index, 1)[0]
        if (Date.now() > deadline) throw new Error(`no answer; got ${JSON.stringify(inbox.slice(-3))}`)
        await new Promise<void>((resolve) => {
          waiters.push(resolve)
          setTimeout(resolve, 200)
        })
      }
    }

    const message = fc.oneof(
      fc.tuple(fc.constantFrom(...STREAM_MESSAGE_TYPES), fc.dictionary(fc.constantFrom('limit', 'streams', 'type', '__proto__', 'constructor', 'x'), jsonValue, {maxKeys: 3}))
        .map(([type, fields]) => JSON.stringify({...fields, type})),
      jsonValue.map((value) => typeof value === 'string' && /^[[{]/.test(value) ? value : JSON.stringify(value)),
      fc.uint8Array({minLength: 1, maxLength: 64}).map((bytes) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(bytes)])),
    )
    try {
      await fc.assert(fc.asyncProperty(message, async (data) => {
        inbox.length = 0
        socket.send(data, {binary: Buffer.isBuffer(data)})
        // Then a ping: its pong proves the connection still serves (after the answer, if any).
        socket.send(JSON.stringify({type: 'ping'}))
        await next((m) => m.type === 'pong')
        expect(socket.readyState).to.equal(WebSocket.OPEN)
        const errors = inbox.filter((m) => m.type === 'error')
        for (const error of errors) expect(error.message).to.be.a('string')
      }), {numRuns: RUNS * 4, seed: SEED, endOnFailure: true})
    } finally {
      socket.close()
    }
  })
})

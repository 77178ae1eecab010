import {mkdirSync, writeFileSync} from 'node:fs'
import {dirname} from 'node:path'
import {request} from 'node:https'

import {expect} from 'chai'

import {requestCounter} from '../../src/services/data/data-routes.js'
import {RequestCounter} from '../../src/services/data/metrics.js'
import {recordFastifyReplies} from '../helpers/fastify-replies.js'
import {type Running, type TestSite, startServe, testSite} from '../helpers/serve.js'

interface Answer {status: number; headers: [string, string][]; body: string}
interface Probe {name: string; method: string; path: string; headers: Record<string, string>}

/** One request on a fresh connection: status, raw header lines in wire order, body. */
function send(base: string, ca: string, probe: Probe): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${probe.path}`, {ca, method: probe.method, headers: probe.headers, agent: false, servername: 'localhost'}, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => {
        const headers: [string, string][] = []
        for (let i = 0; i < res.rawHeaders.length; i += 2) headers.push([res.rawHeaders[i].toLowerCase(), res.rawHeaders[i + 1]])
        resolve({status: res.statusCode ?? 0, headers, body})
      })
    })
    req.on('error', reject)
    req.end()
  })
}

const ALLOWED_ORIGIN = 'https://monitor.example'
const BLOCKED_CLIENT = '10.66.0.7'

/**
 * The same requests, in the same order, for each server. Every probe comes from its own
 * forwarded client address (127.0.0.1 is a trusted proxy here), so each has its own rate budget
 * (shared by the API and the dashboard, as for any client);
 * 'rate limited' spends one address's whole budget (5 a minute).
 */
function probes(service: 'api' | 'dashboard' = 'api'): Probe[] {
  let client = 0
  // The budget is per client across the servers: the two get different addresses.
  const from = (headers: Record<string, string> = {}) => ({'x-forwarded-for': `10.9.${service === 'api' ? 1 : 2}.${++client}`, ...headers})
  const get = (name: string, headers?: Record<string, string>, method = 'GET', path = '/health'): Probe => ({name, method, path, headers: from(headers)})
  const limited = from()
  return [
    get('plain'), get('HEAD', {}, 'HEAD'), get('allowed Origin', {origin: ALLOWED_ORIGIN}), get('other Origin', {origin: 'https://evil.example'}),
    get('wrong bearer token (public route)', {authorization: 'Bearer wrong'}), get('unknown session cookie', {cookie: 'mfc_session=nope'}),
    get('blocked client', {'x-forwarded-for': BLOCKED_CLIENT}), get('blocked client with allowed Origin', {'x-forwarded-for': BLOCKED_CLIENT, origin: ALLOWED_ORIGIN}),
    get('forwarded address not an IP', {'x-forwarded-for': 'not-an-ip'}),
    ...Array.from({length: 6}, (_, i) => ({name: `rate limited #${i + 1}`, method: 'GET', path: '/health', headers: {...limited, origin: ALLOWED_ORIGIN}})),
    get('through the reverse proxy', {'x-forwarded-proto': 'https', 'x-forwarded-host': 'monitor.example'}),
    // Not the fast path's: fastify answers these on both servers.
    get('query', {}, 'GET', '/health?verbose=1'), get('trailing slash', {}, 'GET', '/health/'), get('POST', {'content-type': 'application/json'}, 'POST'),
    get('DELETE', {}, 'DELETE'), get('preflight', {origin: ALLOWED_ORIGIN, 'access-control-request-method': 'GET'}, 'OPTIONS'), get('upper case', {}, 'GET', '/HEALTH'),
  ]
}

/** Comparable: no Date, the ports (which the CSP names) masked, the clock's fields of the report dropped. */
function stable(answer: Answer): Answer & {report?: unknown} {
  const headers = answer.headers.filter(([name]) => name !== 'date').map(([name, value]) => [name, value.replaceAll(/:\d{2,5}\b/g, ':PORT')] as [string, string])
  let body = answer.body
  if (answer.body.includes('"uptime_seconds"')) {
    const {timestamp, uptime_seconds: uptime, ...rest} = JSON.parse(answer.body)
    expect(timestamp).to.be.a('string')
    expect(uptime).to.be.a('number')
    body = JSON.stringify(rest)
  }

  return {status: answer.status, headers, body}
}

/**
 * `GET`/`HEAD /health` is answered before fastify (health-route.ts) unless `health_fast_path` is
 * off. For the same requests, both must answer the same status, the same headers in the same
 * order and the same body, count the same responses, and hand everything else to fastify.
 */
describe('serve: the /health fast path answers exactly like the fastify route', function () {
  this.timeout(120_000)
  let site: TestSite
  const running: Running[] = []

  before(async () => {
    site = await testSite()
    mkdirSync(dirname(site.config.paths.blockedIpsFile), {recursive: true})
    writeFileSync(site.config.paths.blockedIpsFile, `${BLOCKED_CLIENT}\n`)
  })
  after(async () => {
    await Promise.all(running.map((r) => r.close()))
    await site?.temp.cleanup()
  })

  interface Run {answers: Record<string, Answer>; counted: ReturnType<RequestCounter['entries']>; routed: string[]}

  async function run(settings: Record<string, unknown>, fast: boolean, degraded = false): Promise<Run> {
    const counter = {requests: new RequestCounter()}
    const routed: string[] = []
    const seen = recordFastifyReplies(routed)
    const config = site.reconfig({...settings, health_fast_path: fast, trusted_proxies: ['127.0.0.1'], rate_limit_per_minute: 5, dashboard_origins: [ALLOWED_ORIGIN]} as never)
    const plugins = [requestCounter(counter), seen]
    const serve = await startServe(site, {config, apiPlugins: plugins, dashboardPlugins: plugins})
    running.push(serve)
    if (degraded) serve.runtime.health.set('streamer', 'failed')
    const answers: Record<string, Answer> = {}
    for (const service of ['api', 'dashboard'] as const) {
      for (const probe of probes(service)) answers[`${service} ${probe.name}`] = await send(serve.url(service), site.caPem, probe)
    }

    await serve.close()
    return {answers, counted: counter.requests.entries().sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), routed}
  }

  const modes: Record<string, Record<string, unknown>> = {
    'header block': {security_header_block: true},
    'headers per response': {security_header_block: false},
    'no HSTS, no CSP': {enable_hsts: false, enable_csp: false},
  }
  for (const [mode, settings] of Object.entries(modes)) {
    it(`${mode}: same status, headers (in order) and body for every probe; same counts`, async () => {
      const viaFastify = await run(settings, false)
      const fast = await run(settings, true)
      for (const [name, answer] of Object.entries(fast.answers)) expect(stable(answer), name).to.deep.equal(stable(viaFastify.answers[name]))
      expect(fast.counted).to.deep.equal(viaFastify.counted)

      // The probes did what they are named for.
      const {answers} = fast
      expect(answers['api plain'].status).to.equal(200)
      expect(answers['api HEAD'].body).to.equal('')
      expect(answers['dashboard allowed Origin'].headers).to.deep.include(['access-control-allow-origin', ALLOWED_ORIGIN])
      expect(answers['api blocked client with allowed Origin'].status).to.equal(403)
      expect(answers['api blocked client with allowed Origin'].headers.map(([name]) => name)).not.to.include('access-control-allow-origin')
      expect(answers['api forwarded address not an IP'].body).to.include('MFC_FORWARDED_INVALID')
      expect(answers['dashboard rate limited #5'].status).to.equal(200)
      expect(answers['dashboard rate limited #6'].status).to.equal(429)
      expect(answers['dashboard rate limited #6'].headers.map(([name]) => name)).to.include('retry-after')
      const names = answers['api plain'].headers.map(([name]) => name)
      expect(names).to.include.members(['x-content-type-options', 'x-frame-options', 'cache-control', 'content-length'])
      if (settings.enable_hsts === false) expect(names).not.to.include('strict-transport-security')
      else expect(names).to.include.members(['strict-transport-security', 'content-security-policy'])
      expect(new Set(names).size, names.join(', ')).to.equal(names.length)
      expect(answers['dashboard plain'].headers).to.deep.include(['cache-control', 'no-store'])

      // Only the fast path's own answers skipped fastify: refusals (answered by fastify from the
      // gate's decision), the dashboard request through the proxy (its own CSP) and every other
      // method, path or query reached it.
      const handedOn = new Set(['blocked client', 'blocked client with allowed Origin', 'forwarded address not an IP', 'rate limited #6', 'query', 'trailing slash', 'POST', 'DELETE', 'preflight', 'upper case'])
      const all = probes()
      const expected = ['api', 'dashboard'].flatMap((service) => all.filter((p) => handedOn.has(p.name) || (service === 'dashboard' && p.name === 'through the reverse proxy')).map((p) => `${p.method} ${p.path}`))
      expect(viaFastify.routed).to.have.length(all.length * 2)
      expect(fast.routed).to.deep.equal(expected)
    })
  }

  it('a degraded report (a service failed): the same 503 and body from both paths', async () => {
    const viaFastify = await run({}, false, true)
    const fast = await run({}, true, true)
    for (const name of ['api plain', 'api HEAD', 'dashboard plain', 'dashboard allowed Origin']) {
      expect(fast.answers[name].status, name).to.equal(503)
      expect(stable(fast.answers[name]), name).to.deep.equal(stable(viaFastify.answers[name]))
    }

    expect(JSON.parse(fast.answers['api plain'].body)).to.include({status: 'degraded'})
    expect(JSON.parse(fast.answers['api plain'].body).problems).to.deep.equal(['streamer is failed'])
  })
})

import {expect} from 'chai'
import {mkdir, writeFile} from 'node:fs/promises'
import {type IncomingMessage, type ServerResponse, createServer, request} from 'node:http'
import type {AddressInfo} from 'node:net'
import {dirname} from 'node:path'

import {resolveConfig} from '../../src/lib/config.js'
import {silentLogger} from '../../src/lib/logger.js'
import {CAN_PREPEND_HEADERS, buildHeaderBlock, responseClassWithHeaders} from '../../src/services/servers/header-block.js'
import {HealthRegistry, isoAt} from '../../src/services/servers/health.js'
import {SecurityContext} from '../../src/services/servers/security.js'
import {tempEnv} from '../helpers/cli.js'

/** Raw response header lines (name: value), in wire order, from a real node:http round trip. */
async function roundTrip(handler: (req: IncomingMessage, res: ServerResponse) => void, headers: Record<string, string>): Promise<string[]> {
  const block = buildHeaderBlock(headers)
  const server = createServer({ServerResponse: responseClassWithHeaders(() => block)}, handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    return await new Promise((resolve, reject) => {
      request({port: (server.address() as AddressInfo).port, host: '127.0.0.1'}, (res) => {
        const lines: string[] = []
        for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i].toLowerCase()}: ${res.rawHeaders[i + 1]}`)
        res.resume().on('end', () => resolve(lines))
      }).on('error', reject).end()
    })
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
}

const SECURITY = {'x-frame-options': 'DENY', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff'}

describe('serve: pre-serialized security header block', () => {
  it('is supported by this Node (otherwise the servers fall back to per-response headers)', () => {
    expect(CAN_PREPEND_HEADERS).to.equal(true)
  })

  it('refuses a header that could split the response, when built', () => {
    expect(() => buildHeaderBlock({'x-evil': 'a\r\nset-cookie: x=1'})).to.throw()
    expect(() => buildHeaderBlock({'bad name': 'x'})).to.throw()
  })

  it('every response gets the block: writeHead with an object, setHeader, implicit headers, no headers', async () => {
    const handlers: Array<(req: IncomingMessage, res: ServerResponse) => void> = [
      (_req, res) => res.writeHead(200, {'content-type': 'text/plain'}).end('a'),
      (_req, res) => {
        res.setHeader('content-type', 'text/plain')
        res.end('b')
      },
      (_req, res) => {
        res.write('c')
        res.end()
      },
      (_req, res) => res.writeHead(404).end(),
    ]
    for (const handler of handlers) {
      const lines = await roundTrip(handler, SECURITY)
      expect(lines).to.include.members(['x-frame-options: DENY', 'cache-control: no-store', 'x-content-type-options: nosniff'])
    }
  })

  it('a header the response sets itself replaces the block\'s: one header, the response\'s value', async () => {
    const cases: Array<(req: IncomingMessage, res: ServerResponse) => void> = [
      (_req, res) => res.writeHead(200, {'Cache-Control': 'max-age=60'}).end(),
      (_req, res) => {
        res.setHeader('cache-control', 'max-age=60')
        res.end()
      },
      (_req, res) => res.writeHead(200, ['cache-control', 'max-age=60']).end(),
      (_req, res) => res.writeHead(200, [['Cache-Control', 'max-age=60']] as unknown as string[]).end(),
    ]
    for (const handler of cases) {
      const lines = await roundTrip(handler, SECURITY)
      expect(lines.filter((line) => line.startsWith('cache-control:'))).to.deep.equal(['cache-control: max-age=60'])
      expect(lines).to.include.members(['x-frame-options: DENY', 'x-content-type-options: nosniff'])
    }
  })
})

describe('serve: /health answer memo', () => {
  it('is the report\'s JSON, rebuilt when the millisecond, a service state or the certificate changes', () => {
    let now = Date.parse('2026-01-01T00:00:00.000Z')
    let notAfter = new Date('2026-03-01T00:00:00.000Z')
    const health = new HealthRegistry({now: () => new Date(now)}, () => ({notAfter}))
    for (const name of ['api', 'dashboard', 'streamer'] as const) health.set(name, 'running')
    now += 1500
    const first = health.answer()
    expect(first.statusCode).to.equal(200)
    expect(JSON.parse(first.body)).to.deep.equal(health.report())
    expect(JSON.parse(first.body)).to.include({status: 'healthy', timestamp: '2026-01-01T00:00:01.500Z', uptime_seconds: 2})
    expect(health.answer()).to.equal(first)

    health.set('streamer', 'failed')
    const degraded = health.answer()
    expect(degraded.statusCode).to.equal(503)
    expect(JSON.parse(degraded.body).problems).to.deep.equal(['streamer is failed'])

    health.set('streamer', 'running')
    now += 1
    expect(JSON.parse(health.answer().body).timestamp).to.equal('2026-01-01T00:00:01.501Z')
    notAfter = new Date(now)
    const expired = health.answer()
    expect(expired.statusCode).to.equal(503)
    expect(JSON.parse(expired.body).problems).to.deep.equal(['the certificate has expired'])
  })
})

describe('serve: /health body built from its parts', () => {
  it('isoAt is toISOString for every millisecond asked, in any order', () => {
    const base = Date.parse('2026-12-31T23:59:58.990Z')
    const times = [0, 5, 10, 99, 100, 999, 1000, 1001, 1010, 2005, 1500, -3, 86_400_000].map((d) => base + d)
    times.push(Date.parse('1970-01-01T00:00:00.000Z'), Date.parse('+010000-01-01T00:00:00.007Z'), Date.parse('+010000-01-01T00:00:00.070Z'))
    for (const ms of [...times, ...times.reverse()]) expect(isoAt(ms), String(ms)).to.equal(new Date(ms).toISOString())
  })

  it('answer().body is JSON.stringify(report()) byte for byte across seconds, days, states, renewal and expiry', () => {
    let now = Date.parse('2026-01-01T23:59:58.995Z')
    let notAfter: Date | undefined = new Date('2026-01-03T00:00:00.000Z')
    const health = new HealthRegistry({now: () => new Date(now)}, () => (notAfter ? {notAfter} : undefined))
    const check = (label: string) => {
      const answer = health.answer()
      expect(answer.body, label).to.equal(JSON.stringify(health.report()))
      expect(answer.statusCode, label).to.equal(health.report().status === 'healthy' ? 200 : 503)
    }

    check('starting')
    for (const name of ['api', 'dashboard', 'streamer'] as const) health.set(name, 'running')
    // Milliseconds, a new second, a new day (days_left changes), back in time (clock stepped).
    for (const step of [1, 4, 1, 3, 96, 900, 1, 86_400_000, 1, -5000, 86_400_000 - 2]) {
      now += step
      check(`+${step}`)
    }

    health.setRenewal({last_check: null, next_check: '2026-01-05T00:00:00.000Z', certificates: [{name: 'localhost', last_check: null, last_result: null, next_renewal: null, consecutive_failures: 0}]})
    check('renewal')
    health.set('streamer', 'failed')
    check('a failed service')
    health.set('streamer', 'running')
    now = notAfter.getTime()
    check('expired at notAfter')
    notAfter = new Date(now + 90 * 86_400_000)
    check('renewed certificate')
    notAfter = undefined
    check('no certificate yet')
  })
})

describe('serve: security gate fast paths', () => {
  let temp: Awaited<ReturnType<typeof tempEnv>>
  const warnings: string[] = []
  const logger = {...silentLogger, warn: (_fields: unknown, message?: string) => void warnings.push(String(message)), child: () => logger}
  let security: SecurityContext
  before(async () => {
    temp = await tempEnv('mfc-gate-')
    const config = resolveConfig({env: temp.env, isRoot: false})
    await mkdir(dirname(config.paths.allowedIpsFile), {recursive: true})
    await writeFile(config.paths.allowedIpsFile, '10.0.0.0/8\n')
    security = await SecurityContext.create(config, {token: 'the-right-token-0123456789', source: 'env'}, logger, ['localhost'])
  })
  after(async () => temp?.cleanup())

  const request = (ip: string, socket: object, authorization?: string) =>
    ({socket: Object.assign(socket, {remoteAddress: ip}), headers: authorization ? {authorization} : {}, method: 'GET', url: '/'}) as unknown as IncomingMessage

  it('a refused address is logged once a minute, not once per request', () => {
    const socket = {}
    for (let i = 0; i < 5; i++) expect(security.admit(request('192.0.2.7', socket), {public: true}, 'api')).to.include({ok: false, status: 403})
    expect(warnings.filter((w) => w.startsWith('Request refused'))).to.have.length(1)
  })

  it('the per-connection token memo: the same header passes again, a different one on that connection is checked again and fails', () => {
    const socket = {}
    expect(security.admit(request('10.1.1.1', socket, 'Bearer the-right-token-0123456789'), {public: false}, 'api')).to.include({ok: true})
    expect(security.admit(request('10.1.1.1', socket, 'Bearer the-right-token-0123456789'), {public: false}, 'api')).to.deep.include({ok: true, auth: {method: 'token'}})
    expect(security.admit(request('10.1.1.1', socket, 'Bearer the-right-token-012345678'), {public: false}, 'api')).to.include({ok: false, status: 401})
    expect(security.admit(request('10.1.1.2', {}, 'Bearer the-right-token-0123456789x'), {public: false}, 'api')).to.include({ok: false, status: 401})
  })
})

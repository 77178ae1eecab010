import {expect} from 'chai'
import {mkdirSync, writeFileSync} from 'node:fs'
import {connect} from 'node:tls'
import WebSocket from 'ws'

import type {FastifyInstance} from 'fastify'

import type {SettingOverrides} from '../../src/lib/config.js'
import type {StreamClient, StreamHub} from '../../src/services/servers/types.js'
import {type Running, type TestSite, TEST_TOKEN, bearer, fetchText, startServe, testSite} from '../helpers/serve.js'

/** A plugin route per state-changing method, as the data engineer's endpoints would be. */
const echoPlugin = (app: FastifyInstance) => {
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
    app.route({method, url: '/echo', handler: async (request) => ({method, body: request.body ?? null, auth: request.mfcAuth})})
  }
}

function json(body: unknown): {headers: Record<string, string>; body: string} {
  return {headers: {'content-type': 'application/json', ...bearer()}, body: JSON.stringify(body)}
}

function expectSecurityHeaders(headers: Record<string, unknown>, where: string): void {
  expect(headers['strict-transport-security'], where).to.match(/^max-age=\d+; includeSubDomains$/)
  const csp = String(headers['content-security-policy'])
  expect(csp, where).to.include("script-src 'self'")
  expect(csp, where).to.include("frame-ancestors 'none'")
  expect(csp, where).not.to.match(/unsafe-inline|unsafe-eval|cdn\./)
  expect(headers['x-content-type-options'], where).to.equal('nosniff')
  expect(headers['x-frame-options'], where).to.equal('DENY')
  expect(headers['referrer-policy'], where).to.equal('no-referrer')
  expect(headers['permissions-policy'], where).to.include('camera=()')
  expect(headers['cross-origin-opener-policy'], where).to.equal('same-origin')
  expect(headers['x-powered-by'], where).to.equal(undefined)
  expect(headers.server, where).to.equal(undefined)
}

describe('mfc serve: security defaults', function () {
  let site: TestSite
  const running: Running[] = []
  async function start(overrides: SettingOverrides, options: Parameters<typeof startServe>[1] = {}): Promise<Running> {
    const serve = await startServe(site, {config: site.reconfig({rate_limit_per_minute: 0, ...overrides}), apiPlugins: [echoPlugin], ...options})
    running.push(serve)
    return serve
  }

  before(async () => {
    site = await testSite()
  })
  afterEach(async () => {
    await Promise.all(running.splice(0).map((serve) => serve.close()))
    writeFileSync(site.config.paths.allowedIpsFile, '127.0.0.0/8\n::1\n')
    writeFileSync(site.config.paths.blockedIpsFile, '')
  })
  after(async () => site?.temp.cleanup())

  it('every HTTPS response carries the headers, whatever its status (200, 401, 404, 400, 413)', async () => {
    const serve = await start({body_limit_bytes: 2048})
    const api = serve.url('api')
    const dashboard = serve.url('dashboard')
    const replies = {
      'api 200': await fetchText(`${api}/health`, {ca: site.caPem}),
      'api 401': await fetchText(`${api}/system/info`, {ca: site.caPem}),
      'api 404': await fetchText(`${api}/nope`, {ca: site.caPem, headers: bearer()}),
      'api 400': await fetchText(`${api}/echo`, {ca: site.caPem, method: 'POST', headers: json({}).headers, body: '{"broken": '}),
      'api 413': await fetchText(`${api}/echo`, {ca: site.caPem, method: 'POST', ...json({blob: 'x'.repeat(10_000)})}),
      'dashboard 200': await fetchText(`${dashboard}/login`, {ca: site.caPem}),
      'dashboard 401': await fetchText(`${dashboard}/session`, {ca: site.caPem}),
    }
    const statuses = Object.fromEntries(Object.entries(replies).map(([where, reply]) => [where, reply.status]))
    expect(statuses).to.deep.equal({'api 200': 200, 'api 401': 401, 'api 404': 404, 'api 400': 400, 'api 413': 413, 'dashboard 200': 200, 'dashboard 401': 401})
    for (const [where, reply] of Object.entries(replies)) expectSecurityHeaders(reply.headers, where)
    expect(replies['api 200'].headers['cache-control']).to.equal('no-store')
  })

  it('malformed JSON gets 400 with a JSON error body, an oversized body 413, and the server keeps serving', async () => {
    const serve = await start({body_limit_bytes: 2048})
    const bad = await fetchText(`${serve.url('api')}/echo`, {ca: site.caPem, method: 'POST', headers: json({}).headers, body: '{"a": [1, 2'})
    expect(bad.status).to.equal(400)
    expect(bad.headers['content-type']).to.match(/application\/json/)
    expect(bad.json.error.code).to.equal('MFC_BAD_REQUEST')
    const big = await fetchText(`${serve.url('api')}/echo`, {ca: site.caPem, method: 'POST', ...json({blob: 'x'.repeat(10_000)})})
    expect(big.json.error.code).to.equal('MFC_BODY_TOO_LARGE')
    const good = await fetchText(`${serve.url('api')}/echo`, {ca: site.caPem, method: 'POST', ...json({ok: true})})
    expect(good.json).to.deep.equal({method: 'POST', body: {ok: true}, auth: {method: 'token'}})
  })

  it('HSTS and CSP follow enable_hsts / enable_csp', async () => {
    const serve = await start({enable_hsts: false, enable_csp: false})
    const reply = await fetchText(`${serve.url('api')}/health`, {ca: site.caPem})
    expect(reply.headers['strict-transport-security']).to.equal(undefined)
    expect(reply.headers['content-security-policy']).to.equal(undefined)
    expect(reply.headers['x-frame-options']).to.equal('DENY')
  })

  it('the plain-HTTP port never sends HSTS, redirects to HTTPS and serves ACME challenge tokens', async () => {
    const serve = await start({}, {ports: {http: 0}})
    const http = serve.info.http!.url.replace('localhost', '127.0.0.1')
    mkdirSync(site.config.paths.challengeDir, {recursive: true})
    writeFileSync(`${site.config.paths.challengeDir}/tok-123_abc`, 'tok-123_abc.thumbprint')
    const challenge = await fetchText(`${http}/.well-known/acme-challenge/tok-123_abc`)
    expect(challenge.status).to.equal(200)
    expect(challenge.body).to.equal('tok-123_abc.thumbprint')
    expect((await fetchText(`${http}/.well-known/acme-challenge/..%2f..%2fapi-token`)).status).to.equal(301)
    expect((await fetchText(`${http}/.well-known/acme-challenge/missing`)).status).to.equal(404)
    const redirect = await fetchText(`${http}/dashboard?x=1`, {headers: {host: 'localhost:80'}})
    expect(redirect.status).to.equal(301)
    expect(redirect.headers.location).to.equal(`https://localhost:${new URL(serve.url('dashboard')).port}/dashboard?x=1`)
    for (const reply of [challenge, redirect]) expect(reply.headers['strict-transport-security']).to.equal(undefined)
  })

  it('auth: no token 401, wrong token 401, a prefix or extension of the token 401, the token 200', async () => {
    const serve = await start({})
    const url = `${serve.url('api')}/`
    expect((await fetchText(url, {ca: site.caPem})).json.error.message).to.equal('Authentication required')
    for (const token of ['wrong', TEST_TOKEN.slice(0, -1), TEST_TOKEN + 'x', TEST_TOKEN.toUpperCase()]) {
      expect((await fetchText(url, {ca: site.caPem, headers: bearer(token)})).status, token).to.equal(401)
    }

    expect((await fetchText(url, {ca: site.caPem, headers: {authorization: `Basic ${TEST_TOKEN}`}})).status).to.equal(401)
    expect((await fetchText(url, {ca: site.caPem, headers: bearer()})).status).to.equal(200)
  })

  it('dashboard login: HttpOnly Secure SameSite=Strict cookie; CSRF token required for POST, PUT, PATCH and DELETE', async () => {
    const serve = await start({})
    const failed = await fetchText(`${serve.url('dashboard')}/login`, {ca: site.caPem, method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: 'nope'})})
    expect(failed.status).to.equal(401)
    expect(failed.headers['set-cookie']).to.equal(undefined)
    const login = await fetchText(`${serve.url('dashboard')}/login`, {ca: site.caPem, method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: TEST_TOKEN})})
    const setCookie = String(login.headers['set-cookie'])
    expect(setCookie).to.match(/^mfc_session=[\w-]{43}; Path=\/; Max-Age=\d+; HttpOnly; Secure; SameSite=Strict$/)
    const cookie = setCookie.split(';')[0]
    const csrf = login.json.csrf_token as string
    expect((await fetchText(`${serve.url('api')}/system/info`, {ca: site.caPem, headers: {cookie}})).status).to.equal(200)
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const headers = {cookie, 'content-type': 'application/json'}
      const without = await fetchText(`${serve.url('api')}/echo`, {ca: site.caPem, method, headers, body: '{}'})
      expect(without.status, method).to.equal(403)
      expect(without.json.error.code).to.equal('MFC_CSRF')
      const wrong = await fetchText(`${serve.url('api')}/echo`, {ca: site.caPem, method, headers: {...headers, 'x-csrf-token': csrf.slice(1)}, body: '{}'})
      expect(wrong.status, method).to.equal(403)
      const right = await fetchText(`${serve.url('api')}/echo`, {ca: site.caPem, method, headers: {...headers, 'x-csrf-token': csrf}, body: '{}'})
      expect(right.status, method).to.equal(200)
      expect(right.json.auth.method).to.equal('session')
    }

    const logout = await fetchText(`${serve.url('dashboard')}/logout`, {ca: site.caPem, method: 'POST', headers: {cookie, 'x-csrf-token': csrf}})
    expect(logout.status).to.equal(200)
    expect((await fetchText(`${serve.url('api')}/system/info`, {ca: site.caPem, headers: {cookie}})).status).to.equal(401)
  })

  it('CORS: the dashboard origin may call the API with credentials, another origin may not', async () => {
    const serve = await start({})
    const origin = `https://localhost:${new URL(serve.url('dashboard')).port}`
    const preflight = await fetchText(`${serve.url('api')}/echo`, {ca: site.caPem, method: 'OPTIONS', headers: {origin, 'access-control-request-method': 'PUT'}})
    expect(preflight.status).to.equal(204)
    expect(preflight.headers['access-control-allow-origin']).to.equal(origin)
    expect(preflight.headers['access-control-allow-credentials']).to.equal('true')
    const foreign = await fetchText(`${serve.url('api')}/echo`, {ca: site.caPem, method: 'OPTIONS', headers: {origin: 'https://evil.example', 'access-control-request-method': 'PUT'}})
    expect(foreign.status).to.equal(403)
    expect(foreign.headers['access-control-allow-origin']).to.equal(undefined)
  })

  it('rate limit: 429 with Retry-After once the per-minute budget is spent', async () => {
    const serve = await startServe(site, {config: site.reconfig({rate_limit_per_minute: 5})})
    running.push(serve)
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) statuses.push((await fetchText(`${serve.url('api')}/health`, {ca: site.caPem})).status)
    expect(statuses).to.deep.equal([200, 200, 200, 200, 200, 429])
    const limited = await fetchText(`${serve.url('dashboard')}/health`, {ca: site.caPem})
    expect(limited.status, 'the budget covers all three servers').to.equal(429)
    expect(Number(limited.headers['retry-after'])).to.be.within(1, 60)
    expect(limited.json.error.code).to.equal('MFC_RATE_LIMITED')
  })

  it('a signed-in dashboard session has its own budget: it never spends (or hits) the per-IP limit', async () => {
    const serve = await startServe(site, {config: site.reconfig({rate_limit_per_minute: 5, session_rate_limit_per_minute: 40})})
    running.push(serve)
    const login = await fetchText(`${serve.url('dashboard')}/login`, {ca: site.caPem, method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: TEST_TOKEN})})
    const cookie = String(login.headers['set-cookie']).split(';')[0]
    const statuses: number[] = []
    for (let i = 0; i < 30; i++) statuses.push((await fetchText(`${serve.url(i % 2 ? 'api' : 'dashboard')}/health`, {ca: site.caPem, headers: {cookie}})).status)
    expect(statuses.every((s) => s === 200), statuses.join()).to.equal(true)
    // The address spent one request (the login); four more, then 429 for anyone without a session.
    const anonymous: number[] = []
    for (let i = 0; i < 5; i++) anonymous.push((await fetchText(`${serve.url('api')}/health`, {ca: site.caPem, headers: {cookie: 'mfc_session=forged'}})).status)
    expect(anonymous).to.deep.equal([200, 200, 200, 200, 429])
    expect((await fetchText(`${serve.url('api')}/`, {ca: site.caPem, headers: bearer()})).status).to.equal(429)
    expect((await fetchText(`${serve.url('api')}/health`, {ca: site.caPem, headers: {cookie}})).status).to.equal(200)
    let status = 200
    for (let i = 0; i < 60 && status === 200; i++) status = (await fetchText(`${serve.url('api')}/health`, {ca: site.caPem, headers: {cookie}})).status
    expect(status, 'the session budget is bounded too').to.equal(429)
  })

  it('failed auth is limited harder: after auth_failures_per_minute wrong tokens even the right one gets 429', async () => {
    const serve = await start({auth_failures_per_minute: 3})
    const url = `${serve.url('api')}/`
    for (let i = 0; i < 3; i++) expect((await fetchText(url, {ca: site.caPem, headers: bearer('bad-token-guess-' + i)})).status).to.equal(401)
    const locked = await fetchText(url, {ca: site.caPem, headers: bearer()})
    expect(locked.status).to.equal(429)
    expect(Number(locked.headers['retry-after'])).to.be.within(1, 60)
  })

  it('IP allow list with CIDR: a client outside it gets 403', async () => {
    writeFileSync(site.config.paths.allowedIpsFile, '# lab network only\n10.0.0.0/8\nfd00::/8\n')
    const serve = await start({})
    const reply = await fetchText(`${serve.url('api')}/health`, {ca: site.caPem})
    expect(reply.status).to.equal(403)
    expect(reply.json.error.code).to.equal('MFC_IP_DENIED')
  })

  it('IP block list with CIDR: the connection is dropped before the TLS handshake', async () => {
    writeFileSync(site.config.paths.blockedIpsFile, '127.0.0.0/8\n')
    const serve = await start({})
    const error = await fetchText(`${serve.url('api')}/health`, {ca: site.caPem}).catch((e: Error) => e)
    expect(error).to.be.instanceOf(Error)
  })

  it('X-Forwarded-For is believed only from trusted proxies', async () => {
    writeFileSync(site.config.paths.allowedIpsFile, '10.0.0.0/8\n')
    const untrusted = await start({})
    expect((await fetchText(`${untrusted.url('api')}/health`, {ca: site.caPem, headers: {'x-forwarded-for': '10.1.2.3'}})).status, 'spoofed XFF').to.equal(403)
    await untrusted.close()
    const proxied = await start({trusted_proxies: ['127.0.0.1', '::1']})
    expect((await fetchText(`${proxied.url('api')}/health`, {ca: site.caPem, headers: {'x-forwarded-for': '10.1.2.3'}})).status).to.equal(200)
    expect((await fetchText(`${proxied.url('api')}/health`, {ca: site.caPem, headers: {'x-forwarded-for': '192.168.1.5'}})).status).to.equal(403)
    // The client controls the left part of the header: only the right-most untrusted hop counts.
    expect((await fetchText(`${proxied.url('api')}/health`, {ca: site.caPem, headers: {'x-forwarded-for': '10.9.9.9, 192.168.1.5'}})).status).to.equal(403)
  })

  it('slowloris: a client that never finishes its headers is disconnected', async () => {
    const serve = await start({headers_timeout_ms: 300})
    const {port} = new URL(serve.url('api'))
    const closed = await new Promise<string>((resolve) => {
      const socket = connect({host: '127.0.0.1', port: Number(port), ca: site.caPem, servername: 'localhost'}, () => socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1'))
      let received = ''
      socket.on('data', (chunk) => {
        received += chunk
      })
      socket.on('error', () => {})
      socket.on('close', () => resolve(received))
    })
    expect(closed === '' || closed.startsWith('HTTP/1.1 408')).to.equal(true)
  })

  it('max connections: connections beyond max_connections are refused', async () => {
    const serve = await start({max_connections: 2})
    const {port} = new URL(serve.url('api'))
    const open = () => new Promise<'connected' | 'refused'>((resolve) => {
      const socket = connect({host: '127.0.0.1', port: Number(port), ca: site.caPem, servername: 'localhost'}, () => resolve('connected'))
      socket.on('error', () => resolve('refused'))
      socket.on('close', () => resolve('refused'))
      sockets.push(socket)
    })
    const sockets: ReturnType<typeof connect>[] = []
    try {
      expect(await open()).to.equal('connected')
      expect(await open()).to.equal('connected')
      expect(await open()).to.equal('refused')
    } finally {
      for (const socket of sockets) socket.destroy()
    }
  })

  it('WebSocket: a frame over ws_max_message_bytes closes the connection with 1009', async () => {
    const serve = await start({ws_max_message_bytes: 1024})
    const ws = new WebSocket(serve.url('streamer'), {ca: site.caPem, headers: bearer(), servername: 'localhost'} as WebSocket.ClientOptions)
    await new Promise((resolve) => ws.once('open', resolve))
    const code = await new Promise<number>((resolve) => {
      ws.once('close', (c) => resolve(c))
      ws.send(JSON.stringify({type: 'ping', pad: 'x'.repeat(4096)}))
    })
    expect(code).to.equal(1009)
  })

  it('WebSocket: a slow consumer is dropped once its send buffer is full, not buffered forever', async () => {
    let connected!: (client: StreamClient) => void
    const clientReady = new Promise<StreamClient>((resolve) => {
      connected = resolve
    })
    let closedByServer = false
    const hub: StreamHub = {onConnect: (client) => connected(client), onMessage() {}, onClose() {
      closedByServer = true
    }}
    const serve = await start({ws_send_buffer_bytes: 65_536}, {hub})
    const ws = new WebSocket(serve.url('streamer'), {ca: site.caPem, headers: bearer(), servername: 'localhost'} as WebSocket.ClientOptions)
    await new Promise((resolve) => ws.once('open', resolve))
    const client = await clientReady
    // Stop reading: the kernel buffers fill, then the server's send buffer.
    ;(ws as unknown as {_socket: {pause(): void}})._socket.pause()
    const clientClosed = new Promise((resolve) => ws.once('close', resolve))
    const chunk = {type: 'data_update', data: 'x'.repeat(64 * 1024)}
    let sent = 0
    while (client.send({...chunk}) && sent < 20_000) {
      sent++
      if (sent % 50 === 0) await new Promise((resolve) => setImmediate(resolve))
    }

    expect(sent).to.be.below(20_000)
    expect(client.send({type: 'after'})).to.equal(false)
    ;(ws as unknown as {_socket: {resume(): void}})._socket.resume()
    await clientClosed
    expect(closedByServer).to.equal(true)
  })
})

import {expect} from 'chai'
import {writeFileSync} from 'node:fs'
import WebSocket from 'ws'

import type {FastifyInstance} from 'fastify'

import type {SettingOverrides} from '../../src/lib/config.js'
import {type Running, type TestSite, TEST_TOKEN, bearer, fetchText, startServe, testSite} from '../helpers/serve.js'

/** Regression tests for the outside review of `serve` (issue 16): each failed before its fix. */
describe('mfc serve: review findings (sessions, preflights, forwarded addresses, caching, WS budget)', function () {
  this.timeout(20_000)
  let site: TestSite
  const running: Running[] = []
  const sockets: WebSocket[] = []
  async function start(overrides: SettingOverrides = {}, options: Parameters<typeof startServe>[1] = {}): Promise<Running> {
    const serve = await startServe(site, {config: site.reconfig({rate_limit_per_minute: 0, ...overrides}), ...options})
    running.push(serve)
    return serve
  }

  async function login(serve: Running, cookie?: string): Promise<{cookie: string; csrf: string}> {
    const headers: Record<string, string> = {'content-type': 'application/json', ...(cookie ? {cookie} : {})}
    const reply = await fetchText(`${serve.url('dashboard')}/login`, {ca: site.caPem, method: 'POST', headers, body: JSON.stringify({token: TEST_TOKEN})})
    expect(reply.status, reply.body).to.equal(200)
    return {cookie: String(reply.headers['set-cookie']).split(';')[0], csrf: reply.json.csrf_token as string}
  }

  /** A browser-like stream socket (dashboard Origin + session cookie), resolved once open. */
  function openStream(serve: Running, headers: Record<string, string>): Promise<WebSocket> {
    const ws = new WebSocket(serve.url('streamer'), {ca: site.caPem, headers, servername: 'localhost'} as WebSocket.ClientOptions)
    sockets.push(ws)
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws))
      ws.once('error', reject)
    })
  }

  function browserStream(serve: Running, cookie: string): Promise<WebSocket> {
    return openStream(serve, {cookie, origin: `https://localhost:${new URL(serve.url('dashboard')).port}`})
  }

  function closed(ws: WebSocket): Promise<{code: number; reason: string}> {
    if (ws.readyState === WebSocket.CLOSED) throw new Error('already closed')
    return new Promise((resolve) => ws.once('close', (code, reason) => resolve({code, reason: reason.toString()})))
  }

  before(async () => {
    site = await testSite()
  })
  afterEach(async () => {
    for (const ws of sockets.splice(0)) {
      ws.on('error', () => {})
      if (ws.readyState !== WebSocket.CLOSED) ws.terminate()
    }

    await Promise.all(running.splice(0).map((serve) => serve.close()))
    writeFileSync(site.config.paths.allowedIpsFile, '127.0.0.0/8\n::1\n')
  })
  after(async () => site?.temp.cleanup())

  it('POST /logout closes the session\'s open WebSockets with 4401, and a token client\'s socket stays open', async () => {
    const serve = await start()
    const {cookie, csrf} = await login(serve)
    const browser = await browserStream(serve, cookie)
    const tokenClient = await openStream(serve, bearer())
    const ended = closed(browser)
    const logout = await fetchText(`${serve.url('dashboard')}/logout`, {ca: site.caPem, method: 'POST', headers: {cookie, 'x-csrf-token': csrf}})
    expect(logout.status).to.equal(200)
    expect(await ended).to.deep.equal({code: 4401, reason: 'Session ended'})
    expect(tokenClient.readyState).to.equal(WebSocket.OPEN)
    // The cookie cannot open a new one either.
    const again = new WebSocket(serve.url('streamer'), {ca: site.caPem, headers: {cookie, origin: `https://localhost:${new URL(serve.url('dashboard')).port}`}, servername: 'localhost'} as WebSocket.ClientOptions)
    sockets.push(again)
    const status = await new Promise<number>((resolve) => again.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
    expect(status).to.equal(401)
  })

  it('an expired session\'s socket is closed with 4401 on the ping timer (it kept answering pongs)', async () => {
    const serve = await start({session_ttl_seconds: 1, ws_ping_interval_ms: 50})
    const {cookie} = await login(serve)
    const browser = await browserStream(serve, cookie)
    let pongs = 0
    browser.on('ping', () => pongs++)
    expect(await closed(browser)).to.deep.equal({code: 4401, reason: 'Session ended'})
    expect(pongs, 'the socket was alive (answered pings) until the session expired').to.be.greaterThan(0)
    expect((await fetchText(`${serve.url('dashboard')}/session`, {ca: site.caPem, headers: {cookie}})).status).to.equal(401)
  })

  it('a fresh login ends the session the browser presented (and its sockets)', async () => {
    const serve = await start()
    const first = await login(serve)
    const stale = await browserStream(serve, first.cookie)
    const ended = closed(stale)
    const second = await login(serve, first.cookie)
    expect(second.cookie).not.to.equal(first.cookie)
    expect((await ended).code).to.equal(4401)
    expect((await fetchText(`${serve.url('dashboard')}/session`, {ca: site.caPem, headers: {cookie: first.cookie}})).status).to.equal(401)
    expect((await fetchText(`${serve.url('dashboard')}/session`, {ca: site.caPem, headers: {cookie: second.cookie}})).status).to.equal(200)
  })

  it('a WebSocket client over ws_messages_per_minute gets an error message, then a 4429 close', async () => {
    const serve = await start({ws_messages_per_minute: 5})
    const ws = await openStream(serve, bearer())
    const messages: any[] = []
    ws.on('message', (data) => messages.push(JSON.parse(data.toString())))
    const end = closed(ws)
    for (let i = 0; i < 20; i++) ws.send(JSON.stringify({type: 'ping'}))
    expect(await end).to.deep.equal({code: 4429, reason: 'Message rate limit exceeded'})
    expect(messages.filter((m) => m.type === 'pong')).to.have.length(5)
    expect(messages.at(-1)).to.include({type: 'error', code: 'MFC_RATE_LIMITED'})
    expect(messages.at(-1).message).to.include('at most 5 a minute')
  })

  it('CORS preflights pass the IP allow list (403, no CORS headers) and the rate limit (429)', async () => {
    writeFileSync(site.config.paths.allowedIpsFile, '10.0.0.0/8\n')
    const outside = await start()
    const origin = `https://localhost:${new URL(outside.url('dashboard')).port}`
    for (const url of [`${outside.url('api')}/`, `${outside.url('dashboard')}/session`]) {
      const preflight = await fetchText(url, {ca: site.caPem, method: 'OPTIONS', headers: {origin, 'access-control-request-method': 'GET'}})
      expect(preflight.status, url).to.equal(403)
      expect(preflight.json.error.code).to.equal('MFC_IP_DENIED')
      expect(preflight.headers['access-control-allow-origin'], 'the allowed origin leaks').to.equal(undefined)
      expect(preflight.headers['access-control-allow-methods']).to.equal(undefined)
      const get = await fetchText(url, {ca: site.caPem, headers: {origin, ...bearer()}})
      expect(get.status).to.equal(403)
      expect(get.headers['access-control-allow-origin'], 'the allowed origin leaks on a refused GET').to.equal(undefined)
    }

    await outside.close()
    writeFileSync(site.config.paths.allowedIpsFile, '127.0.0.0/8\n::1\n')
    const limited = await start({rate_limit_per_minute: 3})
    const allowed = `https://localhost:${new URL(limited.url('dashboard')).port}`
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      statuses.push((await fetchText(`${limited.url('api')}/`, {ca: site.caPem, method: 'OPTIONS', headers: {origin: allowed, 'access-control-request-method': 'GET'}})).status)
    }

    expect(statuses).to.deep.equal([204, 204, 204, 429, 429])
  })

  it('an unparseable right-most X-Forwarded-For hop from a trusted proxy is denied (403 JSON), never taken as the proxy', async () => {
    const serve = await start({trusted_proxies: ['127.0.0.1', '::1']})
    for (const forwarded of ['garbage', '10.1.2.3, not-an-ip', '10.1.2.3,', 'unknown']) {
      const reply = await fetchText(`${serve.url('api')}/health`, {ca: site.caPem, headers: {'x-forwarded-for': forwarded}})
      expect(reply.status, forwarded).to.equal(403)
      expect(reply.json.error.code, forwarded).to.equal('MFC_FORWARDED_INVALID')
    }

    expect((await fetchText(`${serve.url('api')}/health`, {ca: site.caPem, headers: {'x-forwarded-for': 'garbage, 127.0.0.5'}})).status, 'a client-made left part does not matter').to.equal(200)
    const ws = new WebSocket(serve.url('streamer'), {ca: site.caPem, headers: {...bearer(), 'x-forwarded-for': 'garbage'}, servername: 'localhost'} as WebSocket.ClientOptions)
    sockets.push(ws)
    expect(await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))).to.equal(403)
  })

  it('every JSON answer of the dashboard port carries Cache-Control: no-store; its pages do not need to', async () => {
    const dataRoute = (app: FastifyInstance) => {
      app.get('/data/latest', async () => ({readings: []}))
    }

    const serve = await start({}, {dashboardPlugins: [dataRoute]})
    const dashboard = serve.url('dashboard')
    const loginReply = await fetchText(`${dashboard}/login`, {ca: site.caPem, method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: TEST_TOKEN})})
    const cookie = String(loginReply.headers['set-cookie']).split(';')[0]
    const replies = {
      'POST /login': loginReply,
      'GET /session': await fetchText(`${dashboard}/session`, {ca: site.caPem, headers: {cookie}}),
      'GET /data/latest': await fetchText(`${dashboard}/data/latest`, {ca: site.caPem, headers: {cookie}}),
      'GET /session 401': await fetchText(`${dashboard}/session`, {ca: site.caPem}),
      'POST /login 401': await fetchText(`${dashboard}/login`, {ca: site.caPem, method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: 'wrong'})}),
    }
    for (const [where, reply] of Object.entries(replies)) {
      expect(reply.headers['content-type'], where).to.match(/^application\/json/)
      expect(reply.headers['cache-control'], where).to.equal('no-store')
    }

    expect(replies['GET /session'].json.csrf_token).to.be.a('string')
  })
})

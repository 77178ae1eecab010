import {expect} from 'chai'
import WebSocket from 'ws'

import {type Running, type TestSite, TEST_TOKEN, bearer, fetchText, startServe, testSite} from '../helpers/serve.js'

function openWs(url: string, ca: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {ca, headers, servername: 'localhost'} as WebSocket.ClientOptions)
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused: ${res.statusCode}`)))
  })
}

/** Why the handshake failed ("connected" if it did not, closing that socket). */
function refusal(open: Promise<WebSocket>): Promise<string> {
  return open.then((ws) => {
    ws.close()
    return 'connected'
  }, (error: Error) => error.message)
}

function nextMessage(ws: WebSocket, type?: string): Promise<any> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const msg = JSON.parse(data.toString())
      if (type && msg.type !== type) return
      ws.off('message', onMessage)
      resolve(msg)
    }

    ws.on('message', onMessage)
  })
}

describe('mfc serve: the three TLS servers (real HTTPS/WSS round trips)', () => {
  let site: TestSite
  let serve: Running

  before(async () => {
    site = await testSite()
    serve = await startServe(site)
  })
  after(async () => {
    await serve?.close()
    await site?.temp.cleanup()
  })

  it('GET /health on the API answers without auth: status, uptime, certificate days left, services', async () => {
    const reply = await fetchText(`${serve.url('api')}/health`, {ca: site.caPem})
    expect(reply.status).to.equal(200)
    expect(reply.json.status).to.equal('healthy')
    expect(reply.json.services).to.deep.equal({api: 'running', dashboard: 'running', streamer: 'running'})
    expect(reply.json.certificate.days_left).to.be.within(88, 90)
    expect(reply.json.uptime_seconds).to.be.a('number')
    expect(reply.body).not.to.match(/\/tmp|node|v20|version/i)
  })

  it('GET / and /system/info need the token, and say more once authenticated', async () => {
    for (const path of ['/', '/system/info']) {
      const anonymous = await fetchText(`${serve.url('api')}${path}`, {ca: site.caPem})
      expect(anonymous.status, path).to.equal(401)
      expect(anonymous.body).not.to.include(site.temp.dir)
      expect(anonymous.body).not.to.include(process.version)
    }

    const index = await fetchText(`${serve.url('api')}/`, {ca: site.caPem, headers: bearer()})
    expect(index.status).to.equal(200)
    expect(index.json.endpoints.health).to.equal('/health')
    const info = await fetchText(`${serve.url('api')}/system/info`, {ca: site.caPem, headers: bearer()})
    expect(info.json.system.node_version).to.equal(process.version)
    expect(info.json.ssl_config.domain).to.equal('localhost')
  })

  it('the dashboard sends an anonymous page load to /login and serves the login page', async () => {
    const page = await fetchText(`${serve.url('dashboard')}/`, {ca: site.caPem, headers: {accept: 'text/html'}})
    expect(page.status).to.equal(303)
    expect(page.headers.location).to.equal('/login')
    const login = await fetchText(`${serve.url('dashboard')}/login`, {ca: site.caPem})
    expect(login.status).to.equal(200)
    expect(login.body).to.include('<script src="/login.js">')
    expect(login.body).not.to.match(/<script>/)
    const health = await fetchText(`${serve.url('dashboard')}/health`, {ca: site.caPem})
    expect(health.json.status).to.equal('healthy')
  })

  it('the streamer accepts a token client over WSS: ping -> pong, bad JSON -> error, heartbeat', async () => {
    const ws = await openWs(serve.url('streamer'), site.caPem, bearer())
    try {
      ws.send(JSON.stringify({type: 'ping'}))
      expect((await nextMessage(ws, 'pong')).type).to.equal('pong')
      ws.send('{not json')
      expect((await nextMessage(ws, 'error')).message).to.equal('Invalid JSON message')
      ws.send(JSON.stringify({type: 'nope'}))
      expect((await nextMessage(ws, 'error')).message).to.equal('Unknown message type: nope')
      const heartbeat = await nextMessage(ws, 'heartbeat')
      expect(heartbeat.clients_connected).to.equal(1)
    } finally {
      ws.close()
    }
  })

  it('the streamer refuses clients without credentials, and non-browser clients with only a cookie', async () => {
    const error = await refusal(openWs(serve.url('streamer'), site.caPem))
    expect(error).to.include('401')
    const wrong = await refusal(openWs(serve.url('streamer'), site.caPem, bearer('wrong-token-wrong-token')))
    expect(wrong).to.include('401')
  })

  it('a dashboard login session (cookie) opens the streamer from the dashboard origin, not from another', async () => {
    const login = await fetchText(`${serve.url('dashboard')}/login`, {
      ca: site.caPem, method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: TEST_TOKEN}),
    })
    expect(login.status).to.equal(200)
    const cookie = String(login.headers['set-cookie']).split(';')[0]
    const dashboardPort = new URL(serve.url('dashboard')).port
    const ws = await openWs(serve.url('streamer'), site.caPem, {cookie, origin: `https://localhost:${dashboardPort}`})
    ws.close()
    const foreign = await refusal(openWs(serve.url('streamer'), site.caPem, {cookie, origin: 'https://evil.example'}))
    expect(foreign).to.include('403')
    const noOrigin = await refusal(openWs(serve.url('streamer'), site.caPem, {cookie}))
    expect(noOrigin).to.include('401')
  })

  it('plain HTTPS on the streamer port gets 426, and /health there works', async () => {
    const plain = await fetchText(`${serve.url('streamer').replace('wss', 'https')}/`, {ca: site.caPem})
    expect(plain.status).to.equal(426)
    const health = await fetchText(`${serve.url('streamer').replace('wss', 'https')}/health`, {ca: site.caPem})
    expect(health.status).to.equal(200)
  })
})

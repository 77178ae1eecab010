import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import {request as httpRequest} from 'node:http'
import {request as httpsRequest} from 'node:https'
import {connect} from 'node:net'
import {join} from 'node:path'

import {expect} from 'chai'
import WebSocket from 'ws'

import {launchChromium, morePoints} from '../helpers/chromium.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type Reply, bearer, fetchText} from '../helpers/serve.js'
import {type ServeProcess, startServeProcess} from '../helpers/serve-process.js'
import {freePort} from '../helpers/tls-peers.js'

function waitForPort(port: number, child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`nginx exited with ${child.exitCode}`))
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve()
      })
      socket.once('error', () => setTimeout(attempt, 50))
    }

    attempt()
  })
}

/** A complete nginx.conf around the generated site, everything inside a temp prefix. */
function mainConfig(prefix: string, site: string): string {
  return `worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path ${prefix}/tmp/body;
    proxy_temp_path ${prefix}/tmp/proxy;
    fastcgi_temp_path ${prefix}/tmp/fastcgi;
    uwsgi_temp_path ${prefix}/tmp/uwsgi;
    scgi_temp_path ${prefix}/tmp/scgi;
    include ${site};
}
`
}

/** Opens a WebSocket through the proxy; resolves with the first message, or the refusal's status. */
function wsFirstMessage(url: string, options: WebSocket.ClientOptions): Promise<{type: string} | {refused: number}> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options)
    socket.once('message', (data) => {
      socket.close()
      resolve(JSON.parse(data.toString()) as {type: string})
    })
    socket.once('unexpected-response', (_req, res) => {
      socket.terminate()
      resolve({refused: res.statusCode ?? 0})
    })
    socket.once('error', reject)
  })
}

describe('mfc setup nginx: real nginx in front of a real mfc serve', function () {
  this.timeout(90_000)
  let temp: TempEnv
  let serve: ServeProcess | undefined
  let nginx: ChildProcess | undefined
  let ca: string
  let ports: {http: number; https: number; api: number; dashboard: number; streamer: number}
  let env: NodeJS.ProcessEnv
  let confFile: string
  let prefix: string
  let base: string

  before(async function () {
    if (spawnSync('nginx', ['-v']).error) this.skip()
    temp = await tempEnv('mfc-nginx-')
    ports = {http: await freePort(), https: await freePort(), api: await freePort(), dashboard: await freePort(), streamer: await freePort()}
    env = {...temp.env, MFC_HTTPS_API_PORT: String(ports.api), MFC_HTTPS_FRONTEND_PORT: String(ports.dashboard), MFC_WSS_STREAMING_PORT: String(ports.streamer)}
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--yes'], {env})
    expect(init.code, init.stderr).to.equal(0)
    ca = readFileSync(join(temp.stateDir, 'ca', 'ca.crt'), 'utf8')
    // Clients that come through nginx from 127.0.0.2 are blocked: serve must see them in X-Forwarded-For.
    await writeFile(join(temp.configDir, 'blocked-ips.txt'), '127.0.0.2\n')
    prefix = join(temp.dir, 'nginx')
    await mkdir(join(prefix, 'tmp'), {recursive: true})
    confFile = join(prefix, 'nginx.conf')
    base = `https://localhost:${ports.https}`
  })

  after(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx!.once('exit', resolve))
      nginx.kill('SIGQUIT')
      await exited
    }

    await serve?.stop()
    await temp?.cleanup()
  })

  const configFile = () => join(temp.configDir, 'ssl-config.json')
  const setupArgs = (site: string) => ['setup', 'nginx', '--output', site, '--listen-http', String(ports.http), '--listen-https', String(ports.https)]

  it('--dry-run prints the site and the serve settings it needs, and writes nothing', async () => {
    const site = join(prefix, 'dry.conf')
    const before = readFileSync(configFile(), 'utf8')
    const result = await runCli([...setupArgs(site), '--dry-run'], {env})
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.include(`server 127.0.0.1:${ports.api} max_fails=2 fail_timeout=10s;`)
    expect(result.stdout).to.include(`#   "dashboard_origins": ["${base}"]`)
    expect(existsSync(site)).to.equal(false)
    expect(readFileSync(configFile(), 'utf8')).to.equal(before)
  })

  it('writes a site that `nginx -t` accepts and tells serve to trust the proxy and its origin', async () => {
    const site = join(prefix, 'mfc-monitoring.conf')
    const result = await runCli([...setupArgs(site), '--json'], {env})
    expect(result.code, result.stderr).to.equal(0)
    expect(parseJson<{serveSettingsAdded: string[]}>(result).serveSettingsAdded).to.deep.equal(['127.0.0.1', base])
    expect(JSON.parse(readFileSync(configFile(), 'utf8'))).to.deep.include({trusted_proxies: ['127.0.0.1'], dashboard_origins: [base]})
    const again = await runCli([...setupArgs(site), '--json'], {env})
    expect(parseJson<{serveSettingsAdded: string[]}>(again).serveSettingsAdded).to.deep.equal([])
    await writeFile(confFile, mainConfig(prefix, site))
    const check = spawnSync('nginx', ['-t', '-p', prefix, '-c', confFile], {encoding: 'utf8'})
    expect(check.status, check.stderr).to.equal(0)
    // nginx names the file of each warning; one about the site we wrote is a finding, others are this machine's.
    expect(check.stderr.split('\n').filter((line) => /\[(warn|emerg|alert|crit|error)\]/.test(line) && line.includes(site))).to.deep.equal([])
  })

  it('mfc serve and nginx start; /api/health answers through the proxy with the proxy\'s headers', async () => {
    serve = await startServeProcess(env, {ports: {api: ports.api, dashboard: ports.dashboard, streamer: ports.streamer}})
    nginx = spawn('nginx', ['-p', prefix, '-c', confFile], {stdio: ['ignore', 'ignore', 'pipe']})
    await waitForPort(ports.https, nginx)
    const health = await fetchText(`${base}/api/health`, {ca})
    expect(health.status, health.body).to.equal(200)
    expect(health.json).to.include({status: 'healthy'})
    expect(health.headers['strict-transport-security']).to.equal('max-age=31536000; includeSubDomains')
    expect(health.headers['x-frame-options']).to.equal('DENY')
    expect(health.headers['content-security-policy']).to.include("script-src 'self'")
  })

  it('the API needs the token through the proxy too', async () => {
    expect((await fetchText(`${base}/api/`, {ca})).status).to.equal(401)
    const index = await fetchText(`${base}/api/system/info`, {ca, headers: bearer()})
    expect(index.status, index.body).to.equal(200)
  })

  it('serve sees the client\'s address in X-Forwarded-For: a blocked client is refused through nginx', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({host: '127.0.0.1', port: ports.https, path: '/api/health', localAddress: '127.0.0.2', ca, servername: 'localhost'}, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end()
    })
    expect(status).to.equal(403)
    expect((await fetchText(`${base}/api/health`, {ca})).status).to.equal(200)
  })

  it('the dashboard: login page, token login, the app behind the session cookie', async () => {
    const redirect = await fetchText(`${base}/`, {ca, headers: {accept: 'text/html'}})
    expect(redirect.status).to.equal(303)
    expect(redirect.headers.location).to.equal('/login')
    expect((await fetchText(`${base}/login`, {ca})).status).to.equal(200)
    const login = await fetchText(`${base}/login`, {ca, method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: serve!.token})})
    expect(login.status, login.body).to.equal(200)
    const cookie = String(login.headers['set-cookie']).split(';')[0]
    const app = await fetchText(`${base}/`, {ca, headers: {cookie, accept: 'text/html'}})
    expect(app.status).to.equal(200)
    expect(app.body).to.include('<title>MFC Monitoring Dashboard</title>')
    const session = await fetchText(`${base}/session`, {ca, headers: {cookie}})
    expect(session.json).to.include({method: 'session', csrf_token: login.json.csrf_token})
  })

  it('through the proxy the page is told to stream from /ws/ and its CSP names only that; directly, the streamer port', async () => {
    const login = await fetchText(`${base}/login`, {ca, method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: serve!.token})})
    const cookie = String(login.headers['set-cookie']).split(';')[0]
    const proxied = await fetchText(`${base}/dashboard/info`, {ca, headers: {cookie}})
    expect(proxied.json.stream).to.include({url: `wss://localhost:${ports.https}/ws/`, port: ports.streamer})
    const page = await fetchText(`${base}/`, {ca, headers: {cookie, accept: 'text/html'}})
    expect(page.headers['content-security-policy']).to.include(`connect-src 'self' wss://localhost:${ports.https};`)
    const direct = `https://localhost:${ports.dashboard}`
    expect((await fetchText(`${direct}/dashboard/info`, {ca, headers: {cookie}})).json.stream).to.include({url: null, port: ports.streamer})
    const directCsp = String((await fetchText(`${direct}/`, {ca, headers: {cookie, accept: 'text/html'}})).headers['content-security-policy'])
    expect(directCsp).to.include(`wss://localhost:${ports.streamer}`).and.not.include(`:${ports.https}`)
  })

  it('the dashboard in Chromium through nginx: login, live points over /ws/, no console errors or CSP violations', async () => {
    // Behind the proxy only its port is open: the browser's connections to mfc's own ports are
    // sent to a closed one, as a firewall would (Chromium's host mapping, below the page).
    const closed = await freePort()
    const firewall = [ports.api, ports.dashboard, ports.streamer].map((port) => `MAP localhost:${port} 127.0.0.1:${closed}`).join(', ')
    const browser = await launchChromium([`--host-rules=${firewall}`])
    try {
      const page = await browser.context.newPage()
      const problems: string[] = []
      const sockets: string[] = []
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`${message.text()} (${message.location().url})`)
      })
      page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
      page.on('websocket', (socket) => sockets.push(socket.url()))
      await page.goto(`${base}/`)
      expect(new URL(page.url()).pathname).to.equal('/login')
      await page.locator('#token').fill(serve!.token)
      await Promise.all([page.waitForURL(`${base}/`), page.click('#login button[type=submit]')])
      await page.locator('#conn.pill-on').waitFor()
      await page.click('button[data-tab=monitor]')
      await page.waitForFunction(morePoints, {id: '#chart-substrate', n: 2})
      const first = Number(await page.locator('#chart-substrate').getAttribute('data-points'))
      await page.waitForFunction(morePoints, {id: '#chart-substrate', n: first})
      expect(sockets).to.deep.equal([`wss://localhost:${ports.https}/ws/`])
      expect(problems).to.deep.equal([])
    } finally {
      await browser.close()
    }
  })

  it('a WSS session through /ws/: a browser on the proxy\'s origin with its cookie, a token client, never a foreign origin', async () => {
    const login = await fetchText(`${base}/login`, {ca, method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: serve!.token})})
    const cookie = String(login.headers['set-cookie']).split(';')[0]
    const browser = await wsFirstMessage(`wss://localhost:${ports.https}/ws/`, {ca, origin: base, headers: {cookie}})
    expect(browser).to.include({type: 'initial_data'})
    const tool = await wsFirstMessage(`wss://localhost:${ports.https}/ws/`, {ca, headers: bearer(serve!.token)})
    expect(tool).to.include({type: 'initial_data'})
    const foreign = await wsFirstMessage(`wss://localhost:${ports.https}/ws/`, {ca, origin: 'https://evil.example', headers: {cookie}})
    expect(foreign).to.deep.equal({refused: 403})
  })

  it('redirects plain HTTP to HTTPS on the proxy\'s port', async () => {
    const redirect = await new Promise<Reply>((resolve, reject) => {
      httpRequest(`http://localhost:${ports.http}/api/health?x=1`, (res) => {
        res.resume()
        res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: '', json: undefined}))
      }).on('error', reject).end()
    })
    expect(redirect.status).to.equal(301)
    expect(redirect.headers.location).to.equal(`${base}/api/health?x=1`)
  })
})

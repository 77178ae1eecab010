import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {request} from 'node:https'
import {request as httpRequest} from 'node:http'
import {connect} from 'node:net'
import {join} from 'node:path'

import {expect} from 'chai'
import WebSocket from 'ws'

import {type Services, startServices} from '../helpers/backends.js'
import {type TempEnv, runCli, tempEnv} from '../helpers/cli.js'
import {freePort} from '../helpers/tls-peers.js'

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

function get(url: string, ca: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, {ca}, (res) => {
      let body = ''
      res.on('data', (c) => {
        body += c
      })
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body}))
    })
    req.on('error', reject)
    req.end()
  })
}

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

describe('mfc setup nginx (real nginx in front of HTTPS/WSS services)', function () {
  this.timeout(60_000)
  let temp: TempEnv
  let services: Services
  let nginx: ChildProcess | undefined
  let ca: string
  let ports: {http: number; https: number}
  let env: NodeJS.ProcessEnv
  let confFile: string
  let prefix: string

  before(async function () {
    if (spawnSync('nginx', ['-v']).error) this.skip()
    temp = await tempEnv('mfc-nginx-')
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--yes'], {env: temp.env})
    expect(init.code, init.stderr).to.equal(0)
    const live = join(temp.stateDir, 'certs', 'localhost', 'live')
    services = await startServices({cert: await readFile(join(live, 'fullchain.pem'), 'utf8'), key: await readFile(join(live, 'privkey.pem'), 'utf8')})
    ca = await readFile(join(temp.stateDir, 'ca', 'ca.crt'), 'utf8')
    ports = {http: await freePort(), https: await freePort()}
    env = {
      ...temp.env,
      MFC_HTTPS_API_PORT: String(services.ports.api),
      MFC_HTTPS_FRONTEND_PORT: String(services.ports.frontend),
      MFC_WSS_STREAMING_PORT: String(services.ports.streamer),
    }
    prefix = join(temp.dir, 'nginx')
    await mkdir(join(prefix, 'tmp'), {recursive: true})
    confFile = join(prefix, 'nginx.conf')
  })

  after(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx!.once('exit', resolve))
      nginx.kill('SIGQUIT')
      await exited
    }

    await services?.close()
    await temp?.cleanup()
  })

  it('--dry-run prints the site and writes nothing', async () => {
    const site = join(prefix, 'dry.conf')
    const result = await runCli(['setup', 'nginx', '--dry-run', '--output', site, '--listen-http', String(ports.http), '--listen-https', String(ports.https)], {env})
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.include(`proxy_pass https://127.0.0.1:${services.ports.api}/;`)
    expect(spawnSync('test', ['-e', site]).status).to.equal(1)
  })

  it('writes a site that `nginx -t` accepts', async () => {
    const site = join(prefix, 'mfc-monitoring.conf')
    const result = await runCli(['setup', 'nginx', '--output', site, '--listen-http', String(ports.http), '--listen-https', String(ports.https)], {env})
    expect(result.code, result.stderr).to.equal(0)
    await writeFile(confFile, mainConfig(prefix, site))
    const check = spawnSync('nginx', ['-t', '-p', prefix, '-c', confFile], {encoding: 'utf8'})
    expect(check.status, check.stderr).to.equal(0)
    expect(check.stderr).to.include('test is successful')
  })

  it('proxies the API, the dashboard and a WSS session, and redirects HTTP', async () => {
    nginx = spawn('nginx', ['-p', prefix, '-c', confFile], {stdio: ['ignore', 'ignore', 'pipe']})
    await waitForPort(ports.https, nginx)

    const health = await get(`https://localhost:${ports.https}/api/health`, ca)
    expect(health.status).to.equal(200)
    expect(JSON.parse(health.body)).to.deep.equal({status: 'healthy'})
    expect(services.apiRequests.at(-1)).to.include({path: '/health', forwardedProto: 'https'})
    expect(health.headers['strict-transport-security']).to.equal('max-age=31536000; includeSubDomains')
    expect(health.headers['x-frame-options']).to.equal('DENY')

    const dashboard = await get(`https://localhost:${ports.https}/`, ca)
    expect(dashboard.status).to.equal(200)
    expect(dashboard.body).to.include('MFC dashboard')

    const messages = await new Promise<unknown[]>((resolve, reject) => {
      const received: unknown[] = []
      const socket = new WebSocket(`wss://localhost:${ports.https}/ws/`, {ca})
      socket.on('open', () => socket.send('ping'))
      socket.on('message', (data) => {
        received.push(JSON.parse(data.toString()))
        if (received.length === 2) {
          socket.close()
          resolve(received)
        }
      })
      socket.on('error', reject)
    })
    expect(messages).to.deep.equal([{type: 'hello', path: '/'}, {type: 'echo', data: 'ping'}])

    const redirect = await new Promise<Reply>((resolve, reject) => {
      httpRequest(`http://localhost:${ports.http}/api/health?x=1`, (res) => {
        res.resume()
        res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: ''}))
      }).on('error', reject).end()
    })
    expect(redirect.status).to.equal(301)
    expect(redirect.headers.location).to.equal(`https://localhost:${ports.https}/api/health?x=1`)
  })
})

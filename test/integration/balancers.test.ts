import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {cp, mkdir, readFile, writeFile} from 'node:fs/promises'
import {connect, createServer} from 'node:net'
import {join} from 'node:path'

import {expect} from 'chai'
import WebSocket from 'ws'

import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {bearer, fetchText} from '../helpers/serve.js'
import {type ServeProcess, startServeProcess} from '../helpers/serve-process.js'
import {freePort} from '../helpers/ports.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A free API port whose two neighbours (dashboard, streamer) are free too: the config's 8443/8444/8445 distances. */
async function freeNodePorts(taken: Set<number>): Promise<number> {
  for (;;) {
    const api = await freePort()
    const all = [api, api + 1, api + 2]
    if (api + 2 < 65_536 && all.every((p) => !taken.has(p)) && (await Promise.all(all.map(portIsFree))).every(Boolean)) {
      for (const p of all) taken.add(p)
      return api
    }
  }
}

function waitForPort(port: number, child: ChildProcess, name: string): Promise<void> {
  let stderr = ''
  child.stderr?.on('data', (chunk) => {
    stderr += chunk
  })
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`${name} exited with ${child.exitCode}: ${stderr}`))
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

/** haproxy's own view (`show stat` on its admin socket): backend/server -> UP, DOWN, no check... */
function haproxyStates(socketPath: string): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath)
    let text = ''
    socket.on('data', (chunk) => {
      text += chunk
    })
    socket.on('end', () => {
      const states = new Map<string, string>()
      for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
        const fields = line.split(',')
        states.set(`${fields[0]}/${fields[1]}`, fields[17])
      }

      resolve(states)
    })
    socket.on('error', reject)
    socket.end('show stat\n')
  })
}

async function waitForStates(socketPath: string, want: Record<string, string>): Promise<void> {
  const deadline = Date.now() + 30_000
  let last = new Map<string, string>()
  while (Date.now() < deadline) {
    last = await haproxyStates(socketPath)
    if (Object.entries(want).every(([server, state]) => last.get(server)?.startsWith(state))) return
    await sleep(200)
  }

  throw new Error(`haproxy did not reach ${JSON.stringify(want)}: ${JSON.stringify(Object.fromEntries(last))}`)
}

/** Opens a WebSocket; resolves with the first message's type, or the refusal's status. */
function wsFirstMessage(url: string, options: WebSocket.ClientOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options)
    socket.once('message', (data) => {
      socket.close()
      resolve((JSON.parse(data.toString()) as {type: string}).type)
    })
    socket.once('unexpected-response', (_req, res) => {
      socket.terminate()
      resolve(`refused ${res.statusCode}`)
    })
    socket.once('error', reject)
  })
}

function nginxMain(prefix: string, site: string): string {
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

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill(signal)
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(killer)
}

describe('balancers: real haproxy and nginx in front of three real mfc serve nodes', function () {
  this.timeout(120_000)
  const temps: TempEnv[] = []
  const nodes: ServeProcess[] = []
  const apiPorts: number[] = []
  let haproxy: ChildProcess | undefined
  let nginx: ChildProcess | undefined
  let lb: TempEnv
  let ca: string
  let upstream: string
  const ports = {haproxyHttp: 0, haproxyHttps: 0, nginxHttp: 0, nginxHttps: 0}

  before(async function () {
    if (spawnSync('haproxy', ['-v']).error || spawnSync('nginx', ['-v']).error) this.skip()
    // Node 1 makes the certificate (local CA); nodes 2 and 3 get copies of its config and state,
    // as cluster mode gives every node the same certificate.
    const first = await tempEnv('mfc-lb-node1-')
    temps.push(first)
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--yes'], {env: first.env})
    expect(init.code, init.stderr).to.equal(0)
    const configFile = join(first.configDir, 'ssl-config.json')
    await writeFile(configFile, JSON.stringify({...JSON.parse(await readFile(configFile, 'utf8')), trusted_proxies: ['127.0.0.1']}, null, 2))
    for (let i = 2; i <= 3; i++) {
      const node = await tempEnv(`mfc-lb-node${i}-`)
      await cp(first.configDir, node.configDir, {recursive: true, verbatimSymlinks: true})
      await cp(first.stateDir, node.stateDir, {recursive: true, verbatimSymlinks: true})
      const file = join(node.configDir, 'ssl-config.json')
      await writeFile(file, (await readFile(file, 'utf8')).replaceAll(first.dir, node.dir))
      temps.push(node)
    }

    ca = readFileSync(join(first.stateDir, 'ca', 'ca.crt'), 'utf8')
    const taken = new Set<number>()
    for (const _ of temps) apiPorts.push(await freeNodePorts(taken))
    for (const key of Object.keys(ports) as (keyof typeof ports)[]) {
      do ports[key] = await freePort()
      while (taken.has(ports[key]))
      taken.add(ports[key])
    }

    for (const [i, temp] of temps.entries()) {
      nodes.push(await startServeProcess(temp.env, {ports: {api: apiPorts[i], dashboard: apiPorts[i] + 1, streamer: apiPorts[i] + 2}}))
    }

    upstream = apiPorts.map((port) => `127.0.0.1:${port}`).join(',')
    lb = temps[0]
  })

  after(async () => {
    await stopChild(haproxy, 'SIGTERM')
    await stopChild(nginx, 'SIGQUIT')
    await Promise.all(nodes.map((node) => node.stop()))
    for (const temp of temps) await temp.cleanup()
  })

  const haproxyDir = () => join(lb.dir, 'haproxy')
  const haproxyArgs = (output: string, extra: string[] = []) => [
    'setup', 'haproxy', '--upstream', upstream, '--output', output, '--stats-socket', join(haproxyDir(), 'admin.sock'),
    '--listen-http', String(ports.haproxyHttp), '--listen-https', String(ports.haproxyHttps), ...extra,
  ]
  const pidsThrough = async (base: string, count: number, path = '/api/system/info') => {
    const pids = new Set<number>()
    for (let i = 0; i < count; i++) {
      const info = await fetchText(`${base}${path}`, {ca, headers: bearer()})
      expect(info.status, info.body).to.equal(200)
      pids.add((info.json as {system: {pid: number}}).system.pid)
    }

    return pids
  }

  describe('haproxy', () => {
    const cfg = () => join(haproxyDir(), 'haproxy.cfg')

    it('--dry-run prints the config and writes nothing; an existing file is replaced only with --force', async () => {
      const dry = await runCli([...haproxyArgs(cfg()), '--dry-run'], {env: lb.env})
      expect(dry.code, dry.stderr).to.equal(0)
      expect(dry.stdout).to.include(`server node3 127.0.0.1:${apiPorts[2]} check ssl verify required`)
      expect(existsSync(cfg())).to.equal(false)
      await mkdir(haproxyDir(), {recursive: true})
      await writeFile(cfg(), '# the operator\'s own haproxy.cfg\n')
      const refused = await runCli(haproxyArgs(cfg()), {env: lb.env})
      expect(refused.code).to.equal(1)
      expect(refused.stderr).to.include(`${cfg()} exists already`).and.include('--force')
      expect(readFileSync(cfg(), 'utf8')).to.equal('# the operator\'s own haproxy.cfg\n')
      const written = await runCli([...haproxyArgs(cfg(), ['--force']), '--json'], {env: lb.env})
      expect(written.code, written.stderr).to.equal(0)
      const result = parseJson<{written: boolean; nodes: string[]; crt: {linked: boolean}; nodeSettings: {trusted_proxies: string[]}}>(written)
      expect(result).to.deep.include({written: true, nodes: upstream.split(','), crt: {file: join(haproxyDir(), 'mfc.pem'), linked: true}})
      expect(result.nodeSettings.trusted_proxies).to.deep.equal(['127.0.0.1'])
    })

    it('`haproxy -c` accepts both the terminating and the passthrough config', async () => {
      const check = spawnSync('haproxy', ['-c', '-f', cfg()], {encoding: 'utf8'})
      expect(check.status, check.stdout + check.stderr).to.equal(0)
      expect(check.stdout + check.stderr).not.to.match(/\[WARNING\]|\[ALERT\]/)
      const passthrough = join(haproxyDir(), 'passthrough.cfg')
      const written = await runCli(haproxyArgs(passthrough, ['--tls', 'passthrough']), {env: lb.env})
      expect(written.code, written.stderr).to.equal(0)
      const checkTcp = spawnSync('haproxy', ['-c', '-f', passthrough], {encoding: 'utf8'})
      expect(checkTcp.status, checkTcp.stdout + checkTcp.stderr).to.equal(0)
      expect(checkTcp.stdout + checkTcp.stderr).not.to.match(/\[WARNING\]|\[ALERT\]/)
    })

    it('marks the three nodes UP by /health over verified TLS; HTTPS /health and the API through it reach every node', async () => {
      haproxy = spawn('haproxy', ['-f', cfg(), '-db'], {stdio: ['ignore', 'ignore', 'pipe']})
      await waitForPort(ports.haproxyHttps, haproxy, 'haproxy')
      await waitForStates(join(haproxyDir(), 'admin.sock'), {'mfc_api/node1': 'UP', 'mfc_api/node2': 'UP', 'mfc_api/node3': 'UP', 'mfc_stream/node3': 'UP'})
      const base = `https://localhost:${ports.haproxyHttps}`
      const health = await fetchText(`${base}/api/health`, {ca})
      expect(health.status, health.body).to.equal(200)
      expect(health.json).to.include({status: 'healthy'})
      expect(await pidsThrough(base, 6)).to.deep.equal(new Set(nodes.map((n) => n.pid)))
    })

    it('a WSS stream through /ws/ (the upgrade passes haproxy)', async () => {
      expect(await wsFirstMessage(`wss://localhost:${ports.haproxyHttps}/ws/`, {ca, headers: bearer()})).to.equal('initial_data')
    })

    it('plain HTTP is redirected to the HTTPS port', async () => {
      const reply = await fetchText(`http://localhost:${ports.haproxyHttp}/api/health`)
      expect(reply.status).to.equal(301)
      expect(reply.headers.location).to.equal(`https://localhost:${ports.haproxyHttps}/api/health`)
    })

    it('node 1 killed: haproxy marks it DOWN and every request and stream goes to nodes 2 and 3', async () => {
      nodes[0].child.kill('SIGKILL')
      await nodes[0].stop()
      await waitForStates(join(haproxyDir(), 'admin.sock'), {'mfc_api/node1': 'DOWN', 'mfc_dashboard/node1': 'DOWN', 'mfc_stream/node1': 'DOWN', 'mfc_api/node2': 'UP'})
      const base = `https://localhost:${ports.haproxyHttps}`
      expect(await pidsThrough(base, 6)).to.deep.equal(new Set([nodes[1].pid, nodes[2].pid]))
      for (let i = 0; i < 3; i++) expect(await wsFirstMessage(`wss://localhost:${ports.haproxyHttps}/ws/`, {ca, headers: bearer()})).to.equal('initial_data')
    })
  })

  describe('haproxy --tls passthrough', () => {
    let tcp: ChildProcess | undefined
    let listen: number
    after(() => stopChild(tcp, 'SIGTERM'))

    it('mode tcp on the three ports: the nodes\' own certificate end to end, node 1 DOWN, the API and a WSS stream through it', async () => {
      // The balancer listens on the config's three ports: here a free triple, given as the config's ports.
      listen = await freeNodePorts(new Set([...apiPorts.flatMap((p) => [p, p + 1, p + 2]), ...Object.values(ports)]))
      const env = {...lb.env, MFC_HTTPS_API_PORT: String(listen), MFC_HTTPS_FRONTEND_PORT: String(listen + 1), MFC_WSS_STREAMING_PORT: String(listen + 2), MFC_HTTP_PORT: String(listen + 3)}
      const cfg = join(haproxyDir(), 'passthrough-live.cfg')
      const socket = join(haproxyDir(), 'tcp.sock')
      const nodesList = apiPorts.map((port) => `127.0.0.1:${port}`).join(',')
      const written = await runCli(['setup', 'haproxy', '--tls', 'passthrough', '--upstream', nodesList, '--output', cfg, '--stats-socket', socket, '--listen-http', String(await freePort())], {env})
      expect(written.code, written.stderr).to.equal(0)
      tcp = spawn('haproxy', ['-f', cfg, '-db'], {stdio: ['ignore', 'ignore', 'pipe']})
      await waitForPort(listen + 2, tcp, 'haproxy')
      await waitForStates(socket, {'mfc_api/node1': 'DOWN', 'mfc_api/node2': 'UP', 'mfc_api/node3': 'UP', 'mfc_stream/node2': 'UP'})
      const health = await fetchText(`https://localhost:${listen}/health`, {ca})
      expect(health.status, health.body).to.equal(200)
      // The certificate the client sees is the nodes' own (haproxy holds no key in this mode).
      expect(health.peerCert?.serialNumber).to.equal((await fetchText(`https://localhost:${apiPorts[1]}/health`, {ca})).peerCert?.serialNumber)
      expect(await pidsThrough(`https://localhost:${listen}`, 6, '/system/info')).to.deep.equal(new Set([nodes[1].pid, nodes[2].pid]))
      expect(await wsFirstMessage(`wss://localhost:${listen + 2}/`, {ca, headers: bearer()})).to.equal('initial_data')
    })
  })

  describe('nginx --upstream', () => {
    const prefix = () => join(lb.dir, 'nginx')

    it('writes a site with every node that `nginx -t` accepts', async () => {
      await mkdir(join(prefix(), 'tmp'), {recursive: true})
      const site = join(prefix(), 'mfc.conf')
      const result = await runCli(['setup', 'nginx', '--upstream', upstream, '--output', site, '--listen-http', String(ports.nginxHttp), '--listen-https', String(ports.nginxHttps)], {env: lb.env})
      expect(result.code, result.stderr).to.equal(0)
      const text = readFileSync(site, 'utf8')
      for (const port of apiPorts) expect(text).to.include(`server 127.0.0.1:${port + 2} max_fails=2 fail_timeout=10s;`)
      await writeFile(join(prefix(), 'nginx.conf'), nginxMain(prefix(), site))
      const check = spawnSync('nginx', ['-t', '-p', prefix(), '-c', join(prefix(), 'nginx.conf')], {encoding: 'utf8'})
      expect(check.status, check.stderr).to.equal(0)
      expect(check.stderr.split('\n').filter((line) => /\[(warn|emerg|alert|crit|error)\]/.test(line) && line.includes(site))).to.deep.equal([])
    })

    it('node 1 is dead already: nginx retries the next node, so /health, the API and the stream answer', async () => {
      nginx = spawn('nginx', ['-p', prefix(), '-c', join(prefix(), 'nginx.conf')], {stdio: ['ignore', 'ignore', 'pipe']})
      await waitForPort(ports.nginxHttps, nginx, 'nginx')
      const base = `https://localhost:${ports.nginxHttps}`
      expect((await fetchText(`${base}/api/health`, {ca})).status).to.equal(200)
      expect(await pidsThrough(base, 6)).to.deep.equal(new Set([nodes[1].pid, nodes[2].pid]))
      expect(await wsFirstMessage(`wss://localhost:${ports.nginxHttps}/ws/`, {ca, headers: bearer()})).to.equal('initial_data')
    })

    it('node 2 killed too: every request and stream goes to node 3, none fails', async () => {
      nodes[1].child.kill('SIGKILL')
      await nodes[1].stop()
      const base = `https://localhost:${ports.nginxHttps}`
      expect(await pidsThrough(base, 6)).to.deep.equal(new Set([nodes[2].pid]))
      for (let i = 0; i < 3; i++) expect(await wsFirstMessage(`wss://localhost:${ports.nginxHttps}/ws/`, {ca, headers: bearer()})).to.equal('initial_data')
    })
  })
})

import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {request} from 'node:https'
import {join} from 'node:path'

import {expect} from 'chai'

import {BIN, ROOT, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type ClusterNode, livePairMatches, startHaproxy, startNode, until} from '../helpers/cluster-serve.js'
import {type Pebble, startPebble} from '../helpers/pebble.js'
import {freePorts} from '../helpers/ports.js'
import {type TestPostgres, startPostgres} from '../helpers/postgres.js'
import {servedSerial} from '../helpers/serve-process.js'
import {TEST_TOKEN} from '../helpers/serve.js'

const DOMAIN = 'cluster.mfc.example'
const NAME = DOMAIN
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

type Node = ClusterNode

interface ClusterJson {
  nodes: {name: string; state: string; served: {serial: string} | null; ports: {api: number}}[]
  lock: {holder: string; node: string | null} | null
  exitCode: number
}

/** An HTTPS request to 127.0.0.1:port verifying the certificate for DOMAIN against `ca`. */
function call(port: number, path: string, options: {ca: string; method?: string; headers?: Record<string, string>; body?: string}): Promise<{status: number; body: string; headers: Record<string, string | string[] | undefined>}> {
  return new Promise((resolve, reject) => {
    const req = request({host: '127.0.0.1', port, path, method: options.method ?? 'GET', ca: options.ca, servername: DOMAIN, headers: options.headers, timeout: 5000}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => {
        body += c
      })
      res.on('end', () => resolve({status: res.statusCode ?? 0, body, headers: res.headers}))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(options.body)
  })
}

describe('three mfc serve nodes on one PostgreSQL (real PostgreSQL 15, Pebble, haproxy)', function () {
  this.timeout(300_000)
  let pg: TestPostgres
  let pebble: Pebble
  let haproxy: {stop(): Promise<void>} | undefined
  let url: string
  const nodes: Node[] = []
  const key = randomBytes(32).toString('base64')
  let root: string

  before(async () => {
    pg = await startPostgres()
    pebble = await startPebble({authzReuse: 0})
    url = await pg.createDatabase()
    const ports = await freePorts(3)
    for (let i = 0; i < 3; i++) {
      const t = await tempEnv(`cluster-node${i + 1}-`)
      await fs.mkdir(t.configDir, {recursive: true})
      // Each node: the shared database and key, its own state, its own plain-HTTP port.
      await fs.writeFile(join(t.configDir, 'ssl-config.json'), JSON.stringify({
        storage: url, domain: DOMAIN, email: 'ops@mfc.example', http_port: ports[i],
        cluster_heartbeat_seconds: 1, cluster_lost_heartbeats: 3, auto_renew: false, simulation_autostart: false, rate_limit_per_minute: 0,
      }))
      nodes.push({name: `node${i + 1}`, t, httpPort: ports[i], env: {...t.env, ...pebble.env, MFC_STORAGE_KEY: key, MFC_NODE_NAME: `node${i + 1}`, MFC_API_TOKEN: TEST_TOKEN}})
    }

    const migrated = await runCli(['storage', 'migrate'], {env: nodes[0].env})
    expect(migrated.code, migrated.stderr).to.equal(0)
    // Node 1 bootstraps a local-CA certificate into the shared store; 2 and 3 serve that one.
    for (const node of nodes) node.serve = await startNode(node)
    // The CA's HTTP-01 requests go to nodes 2 and 3 only: never to node 1, which places the first order.
    haproxy = await startHaproxy(nodes[0].t.dir, pebble.httpPort, [nodes[1].httpPort, nodes[2].httpPort])
  })

  after(async () => {
    await Promise.all(nodes.map(async (n) => n.serve?.stop()))
    await haproxy?.stop()
    await pebble?.stop()
    await pg?.stop()
    await Promise.all(nodes.map((n) => n.t.cleanup()))
  })

  const serials = () => Promise.all(nodes.filter((n) => n.serve?.child.exitCode === null).map((n) => servedSerial(n.serve!.ports.api, {ca: root, servername: DOMAIN})))
  const allServe = (serial: string, what: string) => until(what, async () => ((await serials()).every((s) => s === serial) ? true : undefined), 10_000)

  it('issues through node 1 with the CA\'s HTTP-01 requests answered by nodes 2 and 3, and all three serve it', async () => {
    expect(nodes.map((n) => n.serve!.child.exitCode)).to.deep.equal([null, null, null])
    const orders = pebble.finalizedOrders()
    const init = await runCli(['ssl', 'init', '--force', '--agree-tos', '--domain', DOMAIN, '--acme-directory', pebble.directory, '--json'], {env: nodes[0].env})
    expect(init.code, init.stdout + init.stderr).to.equal(0)
    expect(pebble.finalizedOrders() - orders).to.equal(1)
    root = await pebble.root()
    const db = url.split('/').pop()
    const serial = (await pg.psql(`SELECT meta->>'serial' FROM mfc_certs c JOIN mfc_cert_live l USING (name, version) WHERE name = '${NAME}'`, db)).toUpperCase()
    // The served serial, verified against Pebble's root, on every port of every node.
    await allServe(serial, `serial ${serial} on all three nodes`)
    for (const node of nodes) {
      for (const port of [node.serve!.ports.dashboard, node.serve!.ports.streamer]) expect(await servedSerial(port, {ca: root, servername: DOMAIN})).to.equal(serial)
    }

    // The order's token went through the shared table (nodes 2 and 3 answered from it) and is gone again.
    expect(await pg.psql('SELECT count(*) FROM mfc_challenge_tokens', db)).to.equal('0')
  })

  it('a forced renewal race from all three nodes makes one order at Pebble', async () => {
    const before = (await serials())[0]
    const orders = pebble.finalizedOrders()
    const runs = await Promise.all(nodes.map((n) => runCli(['cert', 'renew', '--force', '--json'], {env: n.env})))
    for (const run of runs) expect(run.code, run.stdout + run.stderr).to.equal(0)
    const statuses = runs.map((run) => parseJson<{outcomes: {status: string}[]}>(run).outcomes[0].status).sort()
    expect(statuses).to.deep.equal(['renewed', 'skipped', 'skipped'])
    expect(pebble.finalizedOrders() - orders).to.equal(1)
    const [{version}] = runs.map((run) => parseJson<{outcomes: {status: string; version: string}[]}>(run).outcomes[0]).filter((o) => o.status === 'renewed')
    expect(version).to.equal('0003')
    const after = await until('a new serial on node 1', async () => {
      const [serial] = await serials()
      return serial === before ? undefined : serial
    }, 10_000)
    await allServe(after, 'the renewed serial on every node')
  })

  it('status --cluster lists the three nodes with their served serial, and who holds the renewal lock', async () => {
    const serial = (await serials())[0]
    const status = await runCli(['status', '--cluster', '--json'], {env: nodes[1].env})
    const report = parseJson<ClusterJson>(status)
    expect(status.code, status.stderr).to.equal(0)
    expect(report.nodes.map((n) => [n.name, n.state])).to.deep.equal([['node1', 'alive'], ['node2', 'alive'], ['node3', 'alive']])
    await until('every heartbeat to carry the served serial', async () => {
      const again = parseJson<ClusterJson>(await runCli(['status', '--cluster', '--json'], {env: nodes[1].env}))
      return again.nodes.every((n) => n.served?.serial === serial) ? true : undefined
    }, 10_000, 200)
    expect(report.nodes.map((n) => n.ports.api)).to.deep.equal(nodes.map((n) => n.serve!.ports.api))
    expect(report.lock).to.equal(null)
    const human = await runCli(['status', '--cluster'], {env: nodes[1].env})
    expect(human.stdout).to.match(/3 of 3 node\(s\) alive/).and.to.match(/Renewal lock: free/)
  })

  it('kill -9 of the lock holder in the middle of a renewal: another node completes it, the live pair valid on every node throughout', async () => {
    const db = url.split('/').pop()!
    const versionsBefore = Number(await pg.psql(`SELECT count(*) FROM mfc_certs WHERE name = '${NAME}'`, db))
    const before = (await serials())[0]
    // Every node's served certificate is checked by a verified handshake (the server proves it
    // holds the key), and its local live files are checked to be one pair, all the time.
    const problems: string[] = []
    let watching = true
    const watcher = (async () => {
      while (watching) {
        for (const node of nodes) {
          try {
            await servedSerial(node.serve!.ports.api, {ca: root, servername: DOMAIN})
            if (!(await livePairMatches(node.t.stateDir, NAME))) problems.push(`${node.name}: live cert and key do not match`)
          } catch (error) {
            problems.push(`${node.name}: ${(error as Error).message}`)
          }
        }

        await sleep(20)
      }
    })()
    const renewers = nodes.slice(0, 2).map((n) => {
      const child = spawn(process.execPath, [BIN, 'cert', 'renew', '--force', '--json'], {env: n.env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']})
      let out = ''
      child.stdout!.on('data', (c) => {
        out += c
      })
      const done = new Promise<{code: number | null; signal: string | null; out: string}>((resolve) => child.once('exit', (code, signal) => resolve({code, signal, out})))
      return {child, done}
    })
    try {
      // The holder is whichever renewer's session holds the "store" lock: kill it mid-order.
      const holder = await until('a renewer to hold the lock', async () => {
        const app = await pg.psql(`SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE '% cert renew'`, db)
        const pid = Number(app.split(' ')[2])
        return renewers.find((r) => r.child.pid === pid)
      }, 30_000, 5)
      holder.child.kill('SIGKILL')
      const [killed, other] = holder === renewers[0] ? [await renewers[0].done, await renewers[1].done] : [await renewers[1].done, await renewers[0].done]
      expect(killed.signal).to.equal('SIGKILL')
      expect(other.code, other.out).to.equal(0)
      expect(parseJson<{outcomes: {status: string}[]}>({code: 0, stdout: other.out, stderr: ''}).outcomes[0].status).to.equal('renewed')
      expect(Number(await pg.psql(`SELECT count(*) FROM mfc_certs WHERE name = '${NAME}'`, db))).to.equal(versionsBefore + 1)
      const renewed = await until('the completed renewal on node 1', async () => {
        const [serial] = await serials()
        return serial === before ? undefined : serial
      }, 10_000)
      await allServe(renewed, 'the completed renewal on every node')
    } finally {
      for (const r of renewers) r.child.kill('SIGKILL')
      watching = false
      await watcher
    }

    expect(problems, problems.slice(0, 5).join('\n')).to.deep.equal([])
  })

  it('a dashboard session made on node 1 works on node 2, and a logout on node 2 ends it on node 1', async () => {
    const [one, two] = [nodes[0].serve!, nodes[1].serve!]
    const login = await call(one.ports.dashboard, '/login', {ca: root, method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: TEST_TOKEN})})
    expect(login.status, login.body).to.equal(200)
    const cookie = String(login.headers['set-cookie']).split(';')[0]
    const {csrf_token: csrf} = JSON.parse(login.body) as {csrf_token: string}
    const onTwo = await call(two.ports.dashboard, '/session', {ca: root, headers: {cookie}})
    expect(onTwo.status, onTwo.body).to.equal(200)
    expect(JSON.parse(onTwo.body)).to.include({method: 'session', csrf_token: csrf})
    const forged = await call(two.ports.dashboard, '/session', {ca: root, headers: {cookie: 'mfc_session=' + randomBytes(32).toString('base64url')}})
    expect(forged.status).to.equal(401)
    expect((await call(one.ports.dashboard, '/session', {ca: root, headers: {cookie}})).status).to.equal(200)
    const logout = await call(two.ports.dashboard, '/logout', {ca: root, method: 'POST', headers: {cookie, 'x-csrf-token': csrf}})
    expect(logout.status, logout.body).to.equal(200)
    await until('node 1 to drop the session ended on node 2', async () => ((await call(one.ports.dashboard, '/session', {ca: root, headers: {cookie}})).status === 401 ? true : undefined), 5000)
  })

  it('a database outage: /health says degraded (200, the reason), TLS keeps serving the last certificate, and it recovers', async () => {
    const serial = (await serials())[0]
    await pg.crash()
    try {
      for (const node of nodes) {
        const health = await until(`${node.name} to report the database`, async () => {
          const answer = await call(node.serve!.ports.api, '/health', {ca: root})
          const body = JSON.parse(answer.body) as {status: string; problems: string[]}
          return body.status === 'degraded' ? {answer, body} : undefined
        }, 15_000, 200)
        expect(health.answer.status).to.equal(200)
        expect(health.body.problems.join('\n')).to.match(/database: the database is unreachable/)
      }

      expect((await serials()).every((s) => s === serial)).to.equal(true)
    } finally {
      await pg.start()
    }

    for (const node of nodes) {
      await until(`${node.name} to recover`, async () => {
        const body = JSON.parse((await call(node.serve!.ports.api, '/health', {ca: root})).body) as {status: string}
        return body.status === 'healthy' ? true : undefined
      }, 20_000, 200)
    }

    // The LISTEN sessions are back: a renewal after the outage reaches every node.
    const renew = await runCli(['cert', 'renew', '--force', '--json'], {env: nodes[2].env})
    expect(renew.code, renew.stdout + renew.stderr).to.equal(0)
    const next = await until('a new serial on node 3', async () => {
      const serial3 = await servedSerial(nodes[2].serve!.ports.api, {ca: root, servername: DOMAIN})
      return serial3 === serial ? undefined : serial3
    }, 10_000)
    await allServe(next, 'the post-outage renewal on every node')
  })

  it('a node killed with -9 shows as lost after cluster_lost_heartbeats heartbeats', async () => {
    nodes[2].serve!.child.kill('SIGKILL')
    await nodes[2].serve!.stop()
    const report = await until('node3 to be lost', async () => {
      const status = await runCli(['status', '--cluster', '--json'], {env: nodes[0].env})
      const parsed = parseJson<ClusterJson>(status)
      return parsed.nodes.find((n) => n.name === 'node3')?.state === 'lost' ? {status, parsed} : undefined
    }, 20_000, 500)
    expect(report.status.code).to.equal(1)
    expect(report.parsed.nodes.filter((n) => n.state === 'alive').map((n) => n.name)).to.deep.equal(['node1', 'node2'])
  })
})

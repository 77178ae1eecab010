import {randomBytes} from 'node:crypto'
import {existsSync, promises as fs} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'

import type {MfcPaths} from '../../src/lib/paths.js'
import {LocalCaIssuer} from '../../src/services/issuers/local-ca-issuer.js'
import {KeySealer} from '../../src/services/storage/key-sealer.js'
import {PgLocalCa} from '../../src/services/storage/pg-local-ca.js'
import {openPostgres} from '../../src/services/storage/postgres.js'
import {systemClock} from '../../src/lib/clock.js'
import {parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type ClusterNode, livePairMatches, startHaproxy, startNode, until} from '../helpers/cluster-serve.js'
import {type Pebble, startPebble} from '../helpers/pebble.js'
import {freePorts} from '../helpers/ports.js'
import {type TestPostgres, startPostgres} from '../helpers/postgres.js'
import {servedSerial, startServeProcess} from '../helpers/serve-process.js'
import {TEST_TOKEN} from '../helpers/serve.js'

const DOMAIN = 'maint.mfc.example'
const NAME = DOMAIN
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const pad = (version: number) => String(version).padStart(4, '0')

interface Node extends ClusterNode {
  /** Where this test's look at the node's log starts. */
  logOffset: number
  killed?: boolean
}

interface LogLine {
  msg?: string
  version?: string
  reason?: string
}

/** `count` nodes on the database at `url`: each its own config and state, the shared database and storage key. */
async function makeNodes(count: number, url: string, env: NodeJS.ProcessEnv, settings: Record<string, unknown>): Promise<Node[]> {
  const key = randomBytes(32).toString('base64')
  const ports = await freePorts(count)
  const nodes: Node[] = []
  for (let i = 0; i < count; i++) {
    const t = await tempEnv(`maintainers-node${i + 1}-`)
    await fs.mkdir(t.configDir, {recursive: true})
    await fs.writeFile(join(t.configDir, 'ssl-config.json'), JSON.stringify({
      storage: url, domain: DOMAIN, email: 'ops@mfc.example', http_port: ports[i],
      cluster_heartbeat_seconds: 1, simulation_autostart: false, rate_limit_per_minute: 0, ...settings,
    }))
    nodes.push({name: `node${i + 1}`, t, httpPort: ports[i], logOffset: 0, env: {...t.env, ...env, MFC_STORAGE_KEY: key, MFC_NODE_NAME: `node${i + 1}`, MFC_API_TOKEN: TEST_TOKEN}})
  }

  return nodes
}

/** The node's log entries written since its `logOffset`. */
async function logSince(node: Node): Promise<LogLine[]> {
  const text = (await fs.readFile(node.serve!.logFile)).subarray(node.logOffset).toString('utf8')
  return text.split('\n').filter(Boolean).flatMap((line) => {
    try {
      return [JSON.parse(line) as LogLine]
    } catch {
      return []
    }
  })
}

async function markLogs(nodes: Node[]): Promise<void> {
  for (const node of nodes) node.logOffset = (await fs.stat(node.serve!.logFile)).size
}

/** Which nodes logged renewing `version` and which logged skipping it (waits, bounded, for every node to have said one). */
async function verdicts(nodes: Node[], version: string): Promise<{renewed: string[]; skipped: string[]}> {
  return until(`every node's maintainer to log renewing or skipping version ${version}`, async () => {
    const renewed: string[] = []
    const skipped: string[] = []
    for (const node of nodes) {
      const lines = await logSince(node)
      if (lines.some((l) => l.msg === 'Certificate renewed' && l.version === version)) renewed.push(node.name)
      if (lines.some((l) => l.msg === 'Certificate renewal skipped: another mfc run renewed it' && l.version === version)) skipped.push(node.name)
    }

    return renewed.length + skipped.length >= nodes.length ? {renewed, skipped} : undefined
  }, 20_000, 100)
}

describe('the certificate maintainers inside three mfc serve nodes (real PostgreSQL 15, Pebble, haproxy)', function () {
  this.timeout(300_000)
  let pg: TestPostgres

  before(async () => {
    pg = await startPostgres()
  })

  after(async () => pg?.stop())

  describe('on a Pebble issuing 30-second certificates, its HTTP-01 requests slowed by haproxy', () => {
    let pebble: Pebble
    let haproxy: {stop(): Promise<void>} | undefined
    let nodes: Node[] = []
    let root: string
    let db: string

    const live = async () => {
      const [version, serial] = (await pg.psql(`SELECT l.version || ' ' || (c.meta->>'serial') FROM mfc_cert_live l JOIN mfc_certs c USING (name, version) WHERE name = '${NAME}'`, db)).split(' ')
      return {version: Number(version), serial: serial.toUpperCase()}
    }

    const versionCount = async () => Number(await pg.psql(`SELECT count(*) FROM mfc_certs WHERE name = '${NAME}'`, db))
    const running = () => nodes.filter((n) => !n.killed)
    const serials = () => Promise.all(running().map((n) => servedSerial(n.serve!.ports.api, {ca: root, servername: DOMAIN})))
    const allServeOtherThan = (old: string, what: string) => until(what, async () => {
      const now = await serials()
      return now.every((s) => s === now[0]) && now[0] !== old ? now[0] : undefined
    }, 60_000, 100)

    before(async () => {
      // 30 s certificates: each one is due (half its lifetime) 15 s after it was issued, for every node at once.
      pebble = await startPebble({validityPeriod: 30, authzReuse: 0})
      const url = await pg.createDatabase()
      db = url.split('/').pop()!
      nodes = await makeNodes(3, url, pebble.env, {auto_renew: true})
      const migrated = await runCli(['storage', 'migrate'], {env: nodes[0].env})
      expect(migrated.code, migrated.stderr).to.equal(0)
      for (const node of nodes) node.serve = await startNode(node)
      // Every validation request waits 3 s in haproxy: an order takes that long, so a renewal is
      // in flight long enough for the other maintainers to queue behind it and for a kill -9 to land mid-order.
      haproxy = await startHaproxy(nodes[0].t.dir, pebble.httpPort, nodes.map((n) => n.httpPort), {delayMs: 3000})
      const init = await runCli(['ssl', 'init', '--force', '--agree-tos', '--domain', DOMAIN, '--acme-directory', pebble.directory, '--json'], {env: nodes[0].env})
      expect(init.code, init.stdout + init.stderr).to.equal(0)
      root = await pebble.root()
    })

    after(async () => {
      await Promise.all(nodes.map(async (n) => n.serve?.stop()))
      await haproxy?.stop()
      await pebble?.stop()
      await Promise.all(nodes.map((n) => n.t.cleanup()))
    })

    it('the certificate falls due on all three at once: exactly one order at Pebble, the other two log that they skipped, all three serve the new serial', async () => {
      const issued = await live()
      await until('the ACME certificate on every node', async () => ((await serials()).every((s) => s === issued.serial) ? true : undefined), 10_000)
      await markLogs(nodes)
      const orders = pebble.finalizedOrders()
      // No command: the renewal date arrives and each node's maintainer acts on its own.
      const renewedSerial = await allServeOtherThan(issued.serial, 'a renewed serial on all three nodes')
      const now = await live()
      expect(now.serial).to.equal(renewedSerial)
      expect(now.version).to.equal(issued.version + 1)
      expect(pebble.finalizedOrders() - orders).to.equal(1)
      const {renewed, skipped} = await verdicts(nodes, pad(now.version))
      expect(renewed, `renewed by ${renewed.join(', ')}`).to.have.length(1)
      expect(skipped.sort()).to.deep.equal(nodes.map((n) => n.name).filter((n) => n !== renewed[0]))
      expect(await versionCount()).to.equal(now.version)
    })

    it('kill -9 of the serve whose session holds the renewal lock mid-order: a surviving maintainer completes the renewal, the live pair valid on every survivor throughout', async () => {
      const before = await live()
      const versionsBefore = await versionCount()
      await markLogs(nodes)
      const orders = pebble.finalizedOrders()
      // Every surviving node's served certificate is checked by a verified handshake (the server
      // proves it holds the key) and its local live files are checked to be one pair, all along.
      const problems: string[] = []
      let watching = true
      const watcher = (async () => {
        while (watching) {
          for (const node of running()) {
            try {
              await servedSerial(node.serve!.ports.api, {ca: root, servername: DOMAIN})
              if (!(await livePairMatches(node.t.stateDir, NAME))) problems.push(`${node.name}: live cert and key do not match`)
            } catch (error) {
              if (!node.killed) problems.push(`${node.name}: ${(error as Error).message}`)
            }
          }

          await sleep(20)
        }
      })()
      // The holder's session is named `mfc <host> <pid> <command>` (the command may be cut at 63 characters).
      const holderPid = async () => {
        const app = await pg.psql(`SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          CROSS JOIN (SELECT hashtext('mfc-lock:store')::bigint AS k) key
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
            AND l.classid = ((key.k >> 32) & 4294967295)::oid AND l.objid = (key.k & 4294967295)::oid`, db)
        return app ? Number(app.split(' ')[2]) : undefined
      }

      let victim: Node
      try {
        // The next renewal date: whichever maintainer's session takes the lock is the holder;
        // once its order's challenge is out (the token in the shared table) it is mid-order.
        victim = await until('a maintainer to hold the renewal lock with its order in validation', async () => {
          const pid = await holderPid()
          const holder = nodes.find((n) => n.serve!.pid === pid)
          if (!holder) return undefined
          return Number(await pg.psql('SELECT count(*) FROM mfc_challenge_tokens WHERE expires_at > now()', db)) > 0 ? holder : undefined
        }, 60_000, 20)
        victim.killed = true
        victim.serve!.child.kill('SIGKILL')
        expect(await versionCount(), 'the holder had not written yet').to.equal(versionsBefore)
        await victim.serve!.stop()
        // Session-held: the lock went with the holder's connection, and a survivor has it now.
        const next = await until('a survivor to take the renewal lock', async () => {
          const pid = await holderPid()
          return running().find((n) => n.serve!.pid === pid)
        }, 10_000, 20)
        expect(next.name).to.not.equal(victim.name)
        await allServeOtherThan(before.serial, 'the completed renewal on both survivors')
      } finally {
        watching = false
        await watcher
      }

      const after = await live()
      expect(after.version).to.equal(before.version + 1)
      expect(await versionCount()).to.equal(versionsBefore + 1)
      // The killed node's order was never finalized: one certificate issued for this renewal.
      expect(pebble.finalizedOrders() - orders).to.equal(1)
      const {renewed, skipped} = await verdicts(running(), pad(after.version))
      expect(renewed).to.have.length(1)
      expect(skipped).to.deep.equal(running().map((n) => n.name).filter((n) => n !== renewed[0]))
      expect(problems, problems.slice(0, 5).join('\n')).to.deep.equal([])
    })
  })

  describe('without ACME: one local CA for the cluster', () => {
    let nodes: Node[] = []
    let db: string
    const caRows = () => pg.psql('SELECT count(*) FROM mfc_local_ca', db)

    before(async () => {
      const url = await pg.createDatabase()
      db = url.split('/').pop()!
      nodes = await makeNodes(3, url, {}, {auto_renew: false})
      const migrated = await runCli(['storage', 'migrate'], {env: nodes[0].env})
      expect(migrated.code, migrated.stderr).to.equal(0)
      // A first start of all three at once, nothing in the database: each would bootstrap.
      const serves = await Promise.all(nodes.map((n) => startServeProcess(n.env)))
      serves.forEach((serve, i) => {
        nodes[i].serve = serve
      })
    })

    after(async () => {
      await Promise.all(nodes.map(async (n) => n.serve?.stop()))
      await Promise.all(nodes.map((n) => n.t.cleanup()))
    })

    const rootOf = () => pg.psql('SELECT cert_pem FROM mfc_local_ca', db).then((pem) => pem.trim() + '\n')

    it('a concurrent first start converges on one CA: every node serves a certificate verified by that one root, and trusts that root', async () => {
      expect(await caRows()).to.equal('1')
      const root = await rootOf()
      const served = new Set<string>()
      for (const node of nodes) {
        // The node's trust file is the cluster root; the CA key is only in the database, sealed.
        expect(await fs.readFile(join(node.t.stateDir, 'ca', 'ca.crt'), 'utf8')).to.equal(root)
        expect(existsSync(join(node.t.stateDir, 'ca', 'ca.key'))).to.equal(false)
        for (const port of [node.serve!.ports.api, node.serve!.ports.dashboard, node.serve!.ports.streamer]) served.add(await servedSerial(port, {ca: root, servername: DOMAIN}))
      }

      expect(served.size).to.equal(1)
      // Sealed: no PEM header ("-----BEGIN") anywhere in the stored key.
      expect(await pg.psql(`SELECT position('\\x2d2d2d2d2d424547494e'::bytea in key_sealed) FROM mfc_local_ca`, db)).to.equal('0')
    })

    it('a certificate another node signs (ssl init --force on node 2, a renewal on node 3) chains to the same root, and ssl init prints it to trust', async () => {
      const root = await rootOf()
      const first = await servedSerial(nodes[0].serve!.ports.api, {ca: root, servername: DOMAIN})
      const init = await runCli(['ssl', 'init', '--force', '--domain', DOMAIN], {env: nodes[1].env})
      expect(init.code, init.stdout + init.stderr).to.equal(0)
      const caFile = join(nodes[1].t.stateDir, 'ca', 'ca.crt')
      expect(init.stdout).to.include(`To trust the local CA`).and.to.include(`NODE_EXTRA_CA_CERTS=${caFile}`)
      expect(await fs.readFile(caFile, 'utf8')).to.equal(root)
      const afterInit = await until('the node-2 certificate on every node, verified by the one root', async () => {
        const all = await Promise.all(nodes.map((n) => servedSerial(n.serve!.ports.api, {ca: root, servername: DOMAIN})))
        return all.every((s) => s === all[0]) && all[0] !== first ? all[0] : undefined
      }, 10_000)
      const renew = await runCli(['cert', 'renew', '--force', '--json'], {env: nodes[2].env})
      expect(renew.code, renew.stdout + renew.stderr).to.equal(0)
      expect(parseJson<{outcomes: {status: string}[]}>(renew).outcomes[0].status).to.equal('renewed')
      await until('the node-3 renewal on every node, verified by the one root', async () => {
        const all = await Promise.all(nodes.map((n) => servedSerial(n.serve!.ports.api, {ca: root, servername: DOMAIN})))
        return all.every((s) => s === all[0]) && all[0] !== afterInit ? true : undefined
      }, 10_000)
      expect(await caRows()).to.equal('1')
    })

    it('N processes creating the CA at once (set-if-absent) all get the same one; a machine\'s own earlier CA is kept aside, never deleted', async () => {
      const url = await pg.createDatabase()
      await runCli(['storage', 'migrate'], {env: {...nodes[0].env, MFC_STORAGE_URL: url}})
      const key = randomBytes(32)
      const dirs = await Promise.all(Array.from({length: 6}, () => tempEnv('maintainers-ca-')))
      const paths = dirs.map((d) => ({caDir: join(d.stateDir, 'ca'), caCertFile: join(d.stateDir, 'ca', 'ca.crt'), caKeyFile: join(d.stateDir, 'ca', 'ca.key')}) as MfcPaths)
      // The last machine made its own CA before it joined (the embedded default).
      const own = await new LocalCaIssuer(paths[5], systemClock).ensureCa()
      const dbs = await Promise.all(dirs.map(() => openPostgres({url})))
      try {
        const results = await Promise.all(dbs.slice(0, 5).map((d, i) => new LocalCaIssuer(paths[i], systemClock, new PgLocalCa(d, new KeySealer(key, 'test'))).ensureCa()))
        expect(new Set(results.map((r) => r.certPem)).size).to.equal(1)
        expect(results.filter((r) => r.created)).to.have.length(1)
        const joined = await new LocalCaIssuer(paths[5], systemClock, new PgLocalCa(dbs[5], new KeySealer(key, 'test'))).ensureCa()
        expect(joined.certPem).to.equal(results[0].certPem)
        expect(await fs.readFile(paths[5].caCertFile, 'utf8')).to.equal(results[0].certPem)
        expect(await fs.readFile(`${paths[5].caCertFile}.before-cluster`, 'utf8')).to.equal(own.certPem)
        expect(await fs.readFile(`${paths[5].caKeyFile}.before-cluster`, 'utf8')).to.equal(own.keyPem)
        expect(existsSync(paths[5].caKeyFile)).to.equal(false)
        // The first machine to join an empty cluster with a CA of its own offers that one: the root its users trust stays valid.
        const empty = await pg.createDatabase()
        await runCli(['storage', 'migrate'], {env: {...nodes[0].env, MFC_STORAGE_URL: empty}})
        const single = await tempEnv('maintainers-ca-own-')
        dirs.push(single)
        const singlePaths = {caDir: join(single.stateDir, 'ca'), caCertFile: join(single.stateDir, 'ca', 'ca.crt'), caKeyFile: join(single.stateDir, 'ca', 'ca.key')} as MfcPaths
        const mine = await new LocalCaIssuer(singlePaths, systemClock).ensureCa()
        const emptyDb = await openPostgres({url: empty})
        dbs.push(emptyDb)
        const adopted = await new LocalCaIssuer(singlePaths, systemClock, new PgLocalCa(emptyDb, new KeySealer(key, 'test'))).ensureCa()
        expect(adopted.certPem).to.equal(mine.certPem)
        expect((await new PgLocalCa(emptyDb, new KeySealer(key, 'test')).load())?.keyPem).to.equal(mine.keyPem)
        expect(await fs.readFile(singlePaths.caKeyFile, 'utf8')).to.equal(mine.keyPem)
        // The machine that kept its own CA aside joins that other cluster: its first cluster root goes aside too, beside the first.
        await new LocalCaIssuer(paths[5], systemClock, new PgLocalCa(emptyDb, new KeySealer(key, 'test'))).ensureCa()
        expect(await fs.readFile(paths[5].caCertFile, 'utf8')).to.equal(mine.certPem)
        expect(await fs.readFile(`${paths[5].caCertFile}.before-cluster`, 'utf8')).to.equal(own.certPem)
        const second = (await fs.readdir(paths[5].caDir)).filter((f) => f.startsWith('ca.crt.before-cluster-'))
        expect(second).to.have.length(1)
        expect(await fs.readFile(join(paths[5].caDir, second[0]), 'utf8')).to.equal(results[0].certPem)
      } finally {
        await Promise.all(dbs.map((d) => d.close()))
        await Promise.all(dirs.map((d) => d.cleanup()))
      }
    })
  })
})

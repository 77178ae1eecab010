import {randomBytes} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {request} from 'node:https'
import {join} from 'node:path'

import {expect} from 'chai'

import {resolveApiToken} from '../../src/services/servers/auth.js'
import {KeySealer} from '../../src/services/storage/key-sealer.js'
import {openPostgres} from '../../src/services/storage/postgres.js'
import {PgSecrets} from '../../src/services/storage/secrets.js'
import {resolveConfig} from '../../src/lib/config.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type TestPostgres, startPostgres} from '../helpers/postgres.js'
import {type ServeProcess, startServeProcess} from '../helpers/serve-process.js'

/** GET `path` on 127.0.0.1:port with a bearer token, trusting `ca` for `localhost`. */
function get(port: number, path: string, ca: string, token: string): Promise<number> {
  return send(port, path, ca, {authorization: `Bearer ${token}`})
}

/** The dashboard's login form, posting `token` (what a browser sends). */
function login(port: number, ca: string, token: string): Promise<number> {
  return send(port, '/login', ca, {'content-type': 'application/json'}, JSON.stringify({token}))
}

function send(port: number, path: string, ca: string, headers: Record<string, string>, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({host: '127.0.0.1', port, path, ca, servername: 'localhost', method: body === undefined ? 'GET' : 'POST', headers, timeout: 5000}, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(body)
  })
}

describe('one API token for the cluster, in the shared database (real PostgreSQL 15, real serves)', function () {
  this.timeout(240_000)
  let pg: TestPostgres
  const key = randomBytes(32).toString('base64')
  const envs: TempEnv[] = []
  const serves: ServeProcess[] = []

  before(async () => {
    pg = await startPostgres()
  })

  after(async () => {
    await Promise.all(serves.map((s) => s.stop()))
    await pg?.stop()
    await Promise.all(envs.map((t) => t.cleanup()))
  })

  /** A node's dirs and env on `url` (storage key set, no MFC_API_TOKEN); `settings` extend ssl-config.json. */
  async function node(url: string, settings: Record<string, unknown> = {}, name = `n${envs.length}`): Promise<TempEnv> {
    const t = await tempEnv(`cluster-token-${name}-`)
    envs.push(t)
    await fs.mkdir(t.configDir, {recursive: true})
    await fs.writeFile(join(t.configDir, 'ssl-config.json'), JSON.stringify({storage: url, auto_renew: false, simulation_autostart: false, rate_limit_per_minute: 0, ...settings}))
    Object.assign(t.env, {MFC_STORAGE_KEY: key, MFC_NODE_NAME: name})
    return t
  }

  async function migrated(): Promise<string> {
    const url = await pg.createDatabase()
    const t = await node(url, {}, 'migrate')
    const result = await runCli(['storage', 'migrate'], {env: t.env})
    expect(result.code, result.stderr).to.equal(0)
    return url
  }

  async function show(t: TempEnv): Promise<{token: string; where: string}> {
    const result = await runCli(['api-token', 'show'], {env: t.env})
    expect(result.code, result.stderr).to.equal(0)
    return {token: result.stdout.trim(), where: result.stderr}
  }

  const sealed = (url: string) => pg.psql("SELECT encode(value_sealed, 'escape') FROM mfc_secrets WHERE name = 'api_token'", url.split('/').pop())

  it('three nodes started at once without MFC_API_TOKEN converge on one token; a bearer request and a dashboard login with it work on every node; it is never printed', async () => {
    const url = await migrated()
    const nodes = [await node(url), await node(url), await node(url)]
    // Node 1 makes the certificate (local CA) in the shared store first: the race under test is the token's.
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--json'], {env: nodes[0].env})
    expect(init.code, init.stderr).to.equal(0)
    const ca = await fs.readFile(resolveConfig({env: nodes[0].env, isRoot: false}).paths.caCertFile, 'utf8')
    const starting = await Promise.allSettled(nodes.map((t) => startServeProcess(t.env, {token: null})))
    const started = starting.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
    serves.push(...started)
    for (const s of starting) if (s.status === 'rejected') throw s.reason

    const shown = await Promise.all(nodes.map((t) => show(t)))
    const token = shown[0].token
    expect(shown.map((s) => s.token)).to.deep.equal([token, token, token])
    expect(shown[0].where).to.include('the cluster database')
    // Exactly one serve generated it; all three say it came from the cluster.
    const outputs = started.map((s) => s.output())
    expect(outputs.filter((o) => o.includes('API token: the cluster\'s, from the shared database'))).to.have.length(3)
    expect(outputs.filter((o) => o.includes('(this node generated it)'))).to.have.length(1)
    for (const s of started) expect(s.output()).not.to.include(token)
    for (const s of started) expect(await fs.readFile(s.logFile, 'utf8')).not.to.include(token)
    // Stored sealed, not as text; no node wrote a local token file.
    expect(await sealed(url)).not.to.include(token)
    for (const t of nodes) expect(await fs.stat(join(t.stateDir, 'api-token')).catch(() => undefined)).to.equal(undefined)

    for (const s of started) {
      expect(await get(s.ports.api, '/system/info', ca, token)).to.equal(200)
      expect(await get(s.ports.api, '/system/info', ca, 'x' + token)).to.equal(401)
      expect(await login(s.ports.dashboard, ca, token)).to.equal(200)
      expect(await login(s.ports.dashboard, ca, 'x' + token)).to.equal(401)
    }

    // --json names the source and a fingerprint, never the token; status probes with it.
    const json = await runCli(['api-token', 'show', '--json'], {env: nodes[1].env})
    expect(json.stdout).not.to.include(token)
    expect(parseJson(json)).to.include({source: 'cluster'})
    const status = await runCli(['status', '--json'], {env: nodes[2].env})
    expect(status.stdout).not.to.include(token)
    expect(status.code, status.stdout + status.stderr).to.equal(0)
    // The streamer's probe is an authenticated WSS handshake: it got the token from the database.
    expect(parseJson<{services: {name: string; probe: {status: number}}[]}>(status).services.find((x) => x.name === 'streamer')?.probe.status).to.equal(101)
  })

  it('many nodes resolving at once on separate connections store one token (set-if-absent)', async () => {
    const url = await migrated()
    const t = await node(url)
    const config = resolveConfig({env: t.env, isRoot: false})
    const dbs = await Promise.all(Array.from({length: 8}, () => openPostgres({url})))
    try {
      const sealer = KeySealer.fromText(key, 'MFC_STORAGE_KEY')
      const tokens = await Promise.all(dbs.map((db) => resolveApiToken(config, new PgSecrets(db, sealer))))
      expect(new Set(tokens.map((x) => x.token)).size).to.equal(1)
      expect(tokens.filter((x) => x.created)).to.have.length(1)
      expect(tokens.every((x) => x.source === 'cluster')).to.equal(true)
    } finally {
      await Promise.all(dbs.map((db) => db.close()))
    }
  })

  it('the token `storage copy` brought in is the one serve uses; MFC_API_TOKEN and an explicit api_token_file still win', async () => {
    const url = await migrated()
    const single = await tempEnv('cluster-token-single-')
    envs.push(single)
    const copied = 'copied-' + randomBytes(24).toString('base64url')
    await fs.mkdir(single.stateDir, {recursive: true})
    await fs.writeFile(join(single.stateDir, 'api-token'), copied + '\n', {mode: 0o600})
    const copy = await runCli(['storage', 'copy', '--to', url, '--json'], {env: {...single.env, MFC_STORAGE_KEY: key}})
    expect(copy.code, copy.stdout + copy.stderr).to.equal(0)

    const t = await node(url)
    expect((await show(t)).token).to.equal(copied)
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--json'], {env: t.env})
    expect(init.code, init.stderr).to.equal(0)
    const serve = await startServeProcess(t.env, {token: null})
    serves.push(serve)
    expect(await get(serve.ports.api, '/system/info', serve.caPem, copied)).to.equal(200)
    await serve.stop()

    const own = 'env-' + randomBytes(24).toString('base64url')
    expect((await show({...t, env: {...t.env, MFC_API_TOKEN: own}})).token).to.equal(own)
    const file = join(t.dir, 'node-token')
    const local = 'file-' + randomBytes(24).toString('base64url')
    await fs.writeFile(file, local + '\n', {mode: 0o600})
    const explicit = await show({...t, env: {...t.env, MFC_API_TOKEN_FILE: file}})
    expect(explicit.token).to.equal(local)
    expect(explicit.where).to.include(file)
  })

  it('on a single machine, api-token show reads the token file and rotate replaces it (0600); MFC_API_TOKEN cannot be rotated', async () => {
    const t = await tempEnv('cluster-token-single-')
    envs.push(t)
    const none = await runCli(['api-token', 'show'], {env: t.env})
    expect(none.code).to.equal(4)
    expect(none.stderr).to.include('There is no API token yet').and.include(join(t.stateDir, 'api-token')).and.include('Try this:')
    const rotated = await runCli(['api-token', 'rotate'], {env: t.env})
    expect(rotated.code, rotated.stderr).to.equal(0)
    const file = join(t.stateDir, 'api-token')
    expect((await fs.stat(file)).mode & 0o777).to.equal(0o600)
    const token = (await fs.readFile(file, 'utf8')).trim()
    expect(rotated.stdout).to.include(`the token file ${file}`).and.not.include(token)
    expect((await show(t)).token).to.equal(token)
    const refused = await runCli(['api-token', 'rotate'], {env: {...t.env, MFC_API_TOKEN: 'e'.repeat(8) + randomBytes(24).toString('hex')}})
    expect(refused.code).to.equal(2)
    expect(refused.stderr).to.include('MFC_API_TOKEN')
    expect((await fs.readFile(file, 'utf8')).trim()).to.equal(token)
  })

  const WEAK = 'abcabcabcabcabcabcabcabcabcabc'

  it('a weak token in the database is refused (serve, doctor) naming the cluster database; rotate replaces it for every node', async () => {
    const url = await migrated()
    const db = await openPostgres({url})
    try {
      await new PgSecrets(db, KeySealer.fromText(key, 'MFC_STORAGE_KEY')).set('api_token', WEAK)
    } finally {
      await db.close()
    }

    const t = await node(url)
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--json'], {env: t.env})
    expect(init.code, init.stderr).to.equal(0)
    const refused = await runCli(['serve', '--no-http', '--api-port', '0', '--dashboard-port', '0', '--stream-port', '0'], {env: t.env})
    expect(refused.code).to.equal(3)
    expect(refused.stderr).to.match(/API token in the cluster database \(postgres:\/\/mfc@127\.0\.0\.1:\d+\/\w+, shared secret "api_token"\) is too weak/)
    expect(refused.stderr).to.include('mfc api-token rotate')
    expect(refused.stderr).not.to.include(WEAK).and.not.to.match(/at .*\.js:\d+/)

    const tokenCheck = async () => {
      const doctor = await runCli(['doctor', '--json'], {env: t.env})
      expect(doctor.stdout).not.to.include(WEAK)
      return parseJson<{checks: {id: string; subject: string; status: string; fix: string | null}[]}>(doctor).checks.find((c) => c.id === 'api-token')
    }

    expect(await tokenCheck()).to.deep.include({status: 'fail'}).and.to.have.property('fix').that.includes('mfc api-token rotate')
    const rotated = await runCli(['api-token', 'rotate', '--json'], {env: t.env})
    expect(rotated.code, rotated.stderr).to.equal(0)
    expect(parseJson(rotated)).to.include({source: 'cluster'})
    const other = await node(url)
    const fresh = (await show(other)).token
    expect(fresh).to.not.equal(WEAK)
    expect(fresh).to.have.length(43)
    expect(rotated.stdout).not.to.include(fresh)
    expect((await show(t)).token).to.equal(fresh)
    const healthy = await tokenCheck()
    expect(healthy).to.include({status: 'ok'})
    expect(healthy?.subject).to.include('the cluster database')
  })
})

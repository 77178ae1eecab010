import {execFile} from 'node:child_process'
import {generateKeyPairSync, randomBytes} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {expect} from 'chai'

import {jwkThumbprint, privateKeyFrom} from '../../src/services/acme/jws.js'
import {KeySealer} from '../../src/services/storage/key-sealer.js'
import {PgAccountStore} from '../../src/services/storage/pg-account-store.js'
import {PgLocker} from '../../src/services/storage/pg-locker.js'
import {type PgDatabase, openPostgres} from '../../src/services/storage/postgres.js'
import {ROOT, type RunResult, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type Pebble, startPebble} from '../helpers/pebble.js'
import {type TestPostgres, startPostgres} from '../helpers/postgres.js'

const run = promisify(execFile)
const DOMAIN = 'account.cluster.mfc.example'

interface Account {url: string; keyType: string; keyFile: string; thumbprint: string; ca: {status: string; contact: string[]} | null; caError: string | null; pendingRollover: boolean}

function expectOk(result: RunResult): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).to.equal(0)
}

describe('mfc account show / rollover-key / deactivate on the cluster\'s account (real PostgreSQL 15, Pebble)', function () {
  this.timeout(240_000)
  let pg: TestPostgres
  let pebble: Pebble
  let db: PgDatabase
  let store: PgAccountStore
  const key = randomBytes(32).toString('base64')
  const nodes: TempEnv[] = []
  const env = (i: number) => nodes[i].env

  const show = async (i: number) => {
    const result = await runCli(['account', 'show', '--server', pebble.directory, '--json'], {env: env(i)})
    expectOk(result)
    return parseJson<Account>(result)
  }

  const renew = (i: number, extra: string[] = []) => runCli(['cert', 'renew', '--force', '--cert-name', DOMAIN, '--http-port', String(pebble.httpPort), '--json', ...extra], {env: env(i)})

  before(async () => {
    pg = await startPostgres()
    pebble = await startPebble()
    const url = await pg.createDatabase()
    for (let i = 0; i < 2; i++) {
      const t = await tempEnv(`cluster-account-${i}-`)
      await fs.mkdir(t.configDir, {recursive: true})
      await fs.writeFile(join(t.configDir, 'ssl-config.json'), JSON.stringify({storage: url, email: 'ops@mfc.example', auto_renew: false}))
      Object.assign(t.env, pebble.env, {MFC_STORAGE_KEY: key, MFC_NODE_NAME: `node${i + 1}`})
      nodes.push(t)
    }

    expectOk(await runCli(['storage', 'migrate'], {env: env(0)}))
    db = await openPostgres({url})
    store = new PgAccountStore(db, KeySealer.fromText(key, 'MFC_STORAGE_KEY'))
    // Node 1 registers the cluster's account with its first certificate.
    expectOk(await runCli(['ssl', 'init', '--agree-tos', '--domain', DOMAIN, '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort), '--json'], {env: env(0)}))
  })

  after(async () => {
    await db?.close()
    await pebble?.stop()
    await pg?.stop()
    await Promise.all(nodes.map((t) => t.cleanup()))
  })

  it('show on another node: the shared account, its key type and thumbprint, its status at the CA; never the key', async () => {
    const view = await show(1)
    const pem = (await store.existingKey(pebble.directory))!
    expect(view).to.include({keyType: 'ECDSA P-256', thumbprint: jwkThumbprint(privateKeyFrom(pem)), pendingRollover: false})
    expect(view.url).to.match(/^https:\/\/127\.0\.0\.1:\d+\/my-account\//)
    expect(view.ca).to.deep.include({status: 'valid', contact: ['mailto:ops@mfc.example']})
    expect(view.keyFile).to.include('the cluster database')
    const text = await runCli(['account', 'show', '--server', pebble.directory], {env: env(1)})
    expectOk(text)
    expect(text.stdout).to.include(view.thumbprint).and.include('Status at CA').and.not.include('PRIVATE KEY')
    expect(text.stdout + JSON.stringify(view)).not.to.include(pem.split('\n')[1])
    // Nothing was written to the node's own account files.
    expect(await fs.readdir(join(nodes[1].stateDir, 'acme')).catch(() => [])).to.deep.equal([])
  })

  it('rollover-key takes the cluster\'s renewal lock: while another holder has it, it refuses and names the lock', async () => {
    const held = await new PgLocker(db).acquire('store', 'cert renew (test)')
    try {
      const refused = await runCli(['account', 'rollover-key', '--server', pebble.directory], {env: env(0)})
      expect(refused.code, refused.stderr).to.equal(7)
      expect(refused.stderr).to.include('"store" lock')
    } finally {
      await held.release()
    }

    expect((await show(1)).pendingRollover).to.equal(false)
  })

  it('rollover-key on node 1, then a renewal through node 2 orders with the new key (Pebble accepts it)', async () => {
    const before = await show(1)
    const rolled = await runCli(['account', 'rollover-key', '--server', pebble.directory, '--json'], {env: env(0)})
    expectOk(rolled)
    const result = parseJson<{url: string; oldThumbprint: string; newThumbprint: string}>(rolled)
    expect(result).to.include({url: before.url, oldThumbprint: before.thumbprint})
    const after = await show(1)
    expect(after).to.include({url: before.url, thumbprint: result.newThumbprint})
    expect(after.ca?.status, after.caError ?? '').to.equal('valid')
    const orders = pebble.finalizedOrders()
    const renewed = await renew(1)
    expectOk(renewed)
    // Pebble verifies every request against the account's current key: after keyChange the old
    // key is refused, so this order was signed with the new key node 2 read from the database.
    expect(pebble.finalizedOrders() - orders).to.equal(1)
  })

  it('an interrupted rollover (the CA took the staged key, the commit never happened) shows as pending and is finished by the next rollover-key', async () => {
    const oldPem = (await store.existingKey(pebble.directory))!
    const {url} = (await store.record(pebble.directory))!
    const {privateKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
    const stagedPem = privateKey.export({format: 'pem', type: 'pkcs8'}) as string
    await store.stageNextKey(pebble.directory, stagedPem)
    await keyChange(oldPem, url, stagedPem)
    const stuck = await show(1)
    expect(stuck.pendingRollover).to.equal(true)
    expect(stuck.ca).to.equal(null)
    expectOk(await runCli(['account', 'rollover-key', '--server', pebble.directory, '--json'], {env: env(1)}))
    const after = await show(0)
    expect(after).to.include({url, pendingRollover: false, thumbprint: jwkThumbprint(privateKey)})
    expect(after.ca?.status).to.equal('valid')
    expectOk(await renew(0))
  })

  it('deactivate: the CA says deactivated, renewals on any node then refuse naming the account and the next step, and --agree-tos registers a new one', async () => {
    const before = await show(0)
    const deactivated = await runCli(['account', 'deactivate', '--server', pebble.directory, '--yes', '--json'], {env: env(1)})
    expectOk(deactivated)
    expect(parseJson<{status: string; movedTo: string}>(deactivated)).to.include({status: 'deactivated'})
    const missing = await runCli(['account', 'show', '--server', pebble.directory], {env: env(0)})
    expect(missing.code).to.equal(4)
    expect(missing.stderr).to.include('mfc has no ACME account').and.include('the cluster database')

    // A failed renewal is exit 1 (the run failed); the outcome carries the cause and the next step.
    const refused = await renew(0)
    expect(refused.code, refused.stdout + refused.stderr).to.equal(1)
    const [outcome] = parseJson<{outcomes: {status: string; error: {code: string; message: string; suggestions: string[]}}[]}>(refused).outcomes
    expect(outcome.status).to.equal('failed')
    expect(outcome.error.code).to.equal('MFC_ACCOUNT_DEACTIVATED')
    expect(outcome.error.message).to.include(before.url).and.include('deactivated')
    expect(outcome.error.suggestions.join(' ')).to.include('--agree-tos')
    const human = await runCli(['cert', 'renew', '--force', '--cert-name', DOMAIN, '--http-port', String(pebble.httpPort)], {env: env(1)})
    expect(human.code).to.equal(1)
    expect(human.stdout + human.stderr).to.include(before.url).and.not.match(/at .*\.js:\d+/)

    const orders = pebble.finalizedOrders()
    expectOk(await renew(1, ['--agree-tos']))
    expect(pebble.finalizedOrders() - orders).to.equal(1)
    const fresh = await show(0)
    expect(fresh.url).to.not.equal(before.url)
    expect(fresh.ca?.status).to.equal('valid')
  })

  /** RFC 8555 keyChange at Pebble, signed with `oldPem`, in a process that trusts Pebble's listener. */
  async function keyChange(oldPem: string, kid: string, newPem: string): Promise<void> {
    const dir = nodes[0].dir
    await fs.writeFile(join(dir, 'old.pem'), oldPem, {mode: 0o600})
    await fs.writeFile(join(dir, 'new.pem'), newPem, {mode: 0o600})
    const script = `const {AcmeAccountClient} = await import(${JSON.stringify(join(ROOT, 'src/services/acme/acme-account-client.ts'))});
      const {createPrivateKey} = await import('node:crypto'); const fs = await import('node:fs');
      await new AcmeAccountClient(process.argv[1]).keyChange({key: createPrivateKey(fs.readFileSync(process.argv[2])), kid: process.argv[3]}, createPrivateKey(fs.readFileSync(process.argv[4])))`
    await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, pebble.directory, join(dir, 'old.pem'), kid, join(dir, 'new.pem')], {env: {...process.env, ...pebble.env}, cwd: ROOT})
  }
})

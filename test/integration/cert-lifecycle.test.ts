import {execFile} from 'node:child_process'
import {createPrivateKey, generateKeyPairSync} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {expect} from 'chai'

import {ROOT, type RunResult, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type Pebble, httpsGet, startPebble} from '../helpers/pebble.js'
import {startServeProcess} from '../helpers/serve-process.js'

const run = promisify(execFile)

interface Listing {name: string; domains: string[]; serial: string; acmeDirectory: string; issuerKind: string; keyType: string; versions: number; configured: boolean
  paths: {fullchainFile: string; keyFile: string}; renewal: {renewAt: string; renewable: boolean; reason: string}}
interface Revoked {serial: string; signedWith: string; accountUrl: string | null; deleted: string | null; reason: string}
interface Account {url: string; thumbprint: string; ca: {status: string; contact: string[]} | null; caError: string | null}

function expectOk(result: RunResult): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).to.equal(0)
}

/** What Pebble's management API says about a serial (Status "Valid"/"Revoked", Reason code). */
async function caStatus(pebble: Pebble, serial: string): Promise<{Status: string; Reason?: number}> {
  const answer = await httpsGet(`${pebble.managementUrl}/cert-status-by-serial/${serial.toLowerCase().replace(/^0+/, '')}`, pebble.tls.ca)
  expect(answer.status, answer.body).to.equal(200)
  return JSON.parse(answer.body) as {Status: string; Reason?: number}
}

describe('cert list / revoke / delete and account show / rollover-key / deactivate against Pebble (integration)', function () {
  this.timeout(180_000)
  let pebble: Pebble
  let t: TempEnv
  let env: NodeJS.ProcessEnv

  const init = (domain: string, extra: string[] = []) =>
    runCli(['ssl', 'init', '--agree-tos', '--domain', domain, '--email', 'admin@mfc.example', '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort), '--force', '--json', ...extra], {env})
  const list = async () => parseJson<{certificates: Listing[]}>(await runCli(['cert', 'list', '--json'], {env})).certificates

  before(async () => {
    pebble = await startPebble({validityPeriod: 7_776_000})
    t = await tempEnv('mfc-lifecycle-')
    env = {...t.env, ...pebble.env}
  })

  after(async () => {
    await pebble?.stop()
    await t?.cleanup()
  })

  it('lists what ssl init issued: names, CA, key, live paths and the renewal plan', async () => {
    expectOk(await init('list.mfc.example'))
    const [cert] = await list()
    expect(cert).to.include({name: 'list.mfc.example', acmeDirectory: pebble.directory, issuerKind: 'acme', keyType: 'ECDSA P-256', versions: 1, configured: true})
    expect(cert.domains).to.deep.equal(['list.mfc.example'])
    expect(cert.paths.fullchainFile).to.equal(join(t.stateDir, 'certs', 'list.mfc.example', 'live', 'fullchain.pem'))
    expect(cert.renewal.renewable).to.equal(true)
    // 90-day certificate, renewal_days_before 30: due 30 days before expiry.
    expect(new Date(cert.renewal.renewAt).getTime()).to.be.greaterThan(Date.now() + 55 * 86_400_000)
    const text = await runCli(['cert', 'list'], {env})
    expectOk(text)
    expect(text.stdout).to.contain('Certificate Name: list.mfc.example').and.contain('Private Key Path:')
  })

  it('revokes with the account key; Pebble records the reason', async () => {
    const [cert] = await list()
    expect((await caStatus(pebble, cert.serial)).Status).to.equal('Valid')
    const result = await runCli(['cert', 'revoke', '--cert-name', cert.name, '--reason', 'keycompromise', '--json'], {env})
    expectOk(result)
    const revoked = parseJson<Revoked>(result)
    expect(revoked.signedWith).to.equal('account')
    expect(revoked.accountUrl).to.match(/^https:\/\/127\.0\.0\.1:\d+\/my-account\//)
    expect(await caStatus(pebble, cert.serial)).to.include({Status: 'Revoked', Reason: 1})
    // Revoking again: the CA's refusal, with its reason, exit 5.
    const again = await runCli(['cert', 'revoke', '--cert-name', cert.name], {env})
    expect(again.code, again.stderr).to.equal(5)
    expect(again.stderr).to.contain('alreadyRevoked')
  })

  it('shows the account, rolls its key over, and the CA still knows it as the same account', async () => {
    const before = parseJson<Account>(await runCli(['account', 'show', '--server', pebble.directory, '--json'], {env}))
    expect(before.ca).to.deep.include({status: 'valid', contact: ['mailto:admin@mfc.example']})
    const rolled = await runCli(['account', 'rollover-key', '--server', pebble.directory, '--json'], {env})
    expectOk(rolled)
    const after = parseJson<Account>(await runCli(['account', 'show', '--server', pebble.directory, '--json'], {env}))
    expect(after.url).to.equal(before.url)
    expect(after.thumbprint).to.not.equal(before.thumbprint)
    expect(after.ca?.status, after.caError ?? '').to.equal('valid')
    const keyFile = join(t.stateDir, 'acme', (await fs.readdir(join(t.stateDir, 'acme')))[0], 'account-key.pem')
    expect((await fs.stat(keyFile)).mode & 0o777).to.equal(0o600)
    // The new key orders on the same account.
    expectOk(await init('rolled.mfc.example'))
    const revoked = parseJson<Revoked>(await runCli(['cert', 'revoke', '--cert-name', 'rolled.mfc.example', '--reason', 'superseded', '--json'], {env}))
    expect(revoked.accountUrl).to.equal(before.url)
  })

  it('finishes a key rollover that was interrupted after the CA took the new key', async () => {
    const accountDir = join(t.stateDir, 'acme', (await fs.readdir(join(t.stateDir, 'acme')))[0])
    const staged = join(accountDir, 'account-key.next.pem')
    const {privateKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
    await fs.writeFile(staged, privateKey.export({format: 'pem', type: 'pkcs8'}), {mode: 0o600})
    // The crash: the CA was told (keyChange signed by the old key), the rename never happened.
    const record = JSON.parse(await fs.readFile(join(accountDir, 'account.json'), 'utf8')) as {url: string}
    const script = `const {AcmeAccountClient} = await import(${JSON.stringify(join(ROOT, 'src/services/acme/acme-account-client.ts'))});
      const {createPrivateKey} = await import('node:crypto'); const fs = await import('node:fs');
      await new AcmeAccountClient(process.argv[1]).keyChange({key: createPrivateKey(fs.readFileSync(process.argv[2])), kid: process.argv[3]}, createPrivateKey(fs.readFileSync(process.argv[4])))`
    await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, pebble.directory, join(accountDir, 'account-key.pem'), record.url, staged], {env: {...process.env, ...pebble.env}, cwd: ROOT})
    const stuck = parseJson<Account & {pendingRollover: boolean}>(await runCli(['account', 'show', '--server', pebble.directory, '--json'], {env}))
    expect(stuck.pendingRollover).to.equal(true)
    expect(stuck.ca).to.equal(null)
    const finished = await runCli(['account', 'rollover-key', '--server', pebble.directory, '--json'], {env})
    expectOk(finished)
    const after = parseJson<Account & {pendingRollover: boolean}>(await runCli(['account', 'show', '--server', pebble.directory, '--json'], {env}))
    expect(after).to.deep.include({url: record.url, pendingRollover: false})
    expect(after.ca?.status).to.equal('valid')
    expect(createPrivateKey(await fs.readFile(join(accountDir, 'account-key.pem'))).export({format: 'jwk'})).to.deep.equal(privateKey.export({format: 'jwk'}))
  })

  it('without an account (deactivated), revokes with the certificate\'s own key and deletes the lineage', async () => {
    expectOk(await init('orphan.mfc.example'))
    const cert = (await list()).find((c) => c.name === 'orphan.mfc.example')!
    const refused = await runCli(['account', 'deactivate', '--server', pebble.directory], {env})
    expect(refused.code).to.equal(2)
    expect(refused.stderr).to.contain('--yes')
    const deactivated = await runCli(['account', 'deactivate', '--server', pebble.directory, '--yes', '--json'], {env})
    expectOk(deactivated)
    expect(parseJson<{status: string}>(deactivated).status).to.equal('deactivated')
    const show = await runCli(['account', 'show', '--server', pebble.directory], {env})
    expect(show.code).to.equal(4)
    expect(show.stderr).to.contain('mfc has no ACME account').and.contain('Try this:')

    const result = await runCli(['cert', 'revoke', '--cert-name', cert.name, '--reason', 'cessationofoperation', '--delete-after-revoke', '--json'], {env})
    expectOk(result)
    expect(parseJson<Revoked>(result)).to.include({signedWith: 'certificate-key', accountUrl: null, deleted: 'orphan.mfc.example'})
    expect(await caStatus(pebble, cert.serial)).to.include({Status: 'Revoked', Reason: 5})
    expect((await list()).map((c) => c.name)).to.not.include('orphan.mfc.example')
  })

  it('revokes a certificate given by path with --key-path, and refuses a key that is not its own', async () => {
    expectOk(await init('bypath.mfc.example'))
    const cert = (await list()).find((c) => c.name === 'bypath.mfc.example')!
    const wrong = await runCli(['cert', 'revoke', '--cert-path', cert.paths.fullchainFile, '--key-path', join(t.stateDir, 'ca', 'ca.key'), '--server', pebble.directory], {env})
    expect(wrong.code).to.not.equal(0)
    const good = await runCli(['cert', 'revoke', '--cert-path', cert.paths.fullchainFile, '--key-path', cert.paths.keyFile, '--reason', 'affiliationchanged', '--json'], {env})
    expectOk(good)
    expect(parseJson<Revoked>(good).signedWith).to.equal('certificate-key')
    expect(await caStatus(pebble, cert.serial)).to.include({Status: 'Revoked', Reason: 3})
  })

  it('delete asks for consent, refuses the certificate a running serve uses, and deletes with --force', async () => {
    const unknown = await runCli(['cert', 'delete', '--cert-name', 'nope.mfc.example', '--yes'], {env})
    expect(unknown.code).to.equal(2)
    expect(unknown.stderr).to.contain('nope.mfc.example').and.contain('mfc cert list')
    const configured = (await list()).find((c) => c.configured)!
    const noConsent = await runCli(['cert', 'delete', '--cert-name', configured.name], {env})
    expect(noConsent.code).to.equal(2)
    const serve = await startServeProcess(env)
    try {
      const refused = await runCli(['cert', 'delete', '--cert-name', configured.name, '--yes'], {env})
      expect(refused.code, refused.stderr).to.equal(7)
      expect(refused.stderr).to.contain(`pid ${serve.pid}`).and.contain('mfc stop')
      expect((await list()).map((c) => c.name)).to.include(configured.name)
      const forced = await runCli(['cert', 'delete', '--cert-name', configured.name, '--force', '--json'], {env})
      expectOk(forced)
      expect(parseJson<{servePid: number}>(forced).servePid).to.equal(serve.pid)
    } finally {
      await serve.stop()
    }

    expect((await list()).map((c) => c.name)).to.not.include(configured.name)
    expect(await fs.readdir(join(t.stateDir, 'certs'))).to.not.include(configured.name)
  })
})

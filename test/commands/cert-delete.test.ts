import {promises as fs} from 'node:fs'
import {hostname} from 'node:os'
import {join} from 'node:path'

import {expect} from 'chai'

import {BIN, type RunResult, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {TmuxSession} from '../helpers/tty.js'

function expectOk(result: RunResult): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).to.equal(0)
}

describe('mfc cert delete and cert list (local CA certificates)', function () {
  this.timeout(60_000)
  let t: TempEnv
  const sessions: TmuxSession[] = []
  const names = async () => parseJson<{certificates: {name: string}[]}>(await runCli(['cert', 'list', '--json'], {env: t.env})).certificates.map((c) => c.name)

  before(async () => {
    t = await tempEnv('mfc-delete-')
    expectOk(await runCli(['ssl', 'init', '--domain', 'keep.test'], {env: t.env}))
    expectOk(await runCli(['ssl', 'init', '--domain', 'drop.test', '--force'], {env: t.env}))
    expectOk(await runCli(['ssl', 'init', '--domain', 'keep.test', '--force'], {env: t.env}))
  })

  after(async () => {
    for (const s of sessions.splice(0)) s.close()
    await t.cleanup()
  })

  it('lists both lineages with the local CA as issuer and the configured one marked', async () => {
    const {certificates} = parseJson<{certificates: {name: string; issuerKind: string; configured: boolean; versions: number; renewal: {renewable: boolean}}[]}>(await runCli(['cert', 'list', '--json'], {env: t.env}))
    expect(certificates.map((c) => [c.name, c.issuerKind, c.configured, c.versions, c.renewal.renewable])).to.deep.equal([['drop.test', 'local-ca', false, 1, true], ['keep.test', 'local-ca', true, 2, true]])
  })

  it('asks on a terminal: "no" keeps the lineage (exit 2), "yes" deletes it whole', async () => {
    const no = new TmuxSession(`${process.execPath} ${BIN} cert delete --cert-name drop.test`, t.env)
    sessions.push(no)
    await no.waitFor(/Delete certificate "drop\.test" and all its versions and keys\?/)
    no.send('n', 'Enter')
    expect(await no.exitCode()).to.equal(2)
    expect(await names()).to.include('drop.test')

    const yes = new TmuxSession(`${process.execPath} ${BIN} cert delete --cert-name drop.test`, t.env)
    sessions.push(yes)
    await yes.waitFor(/Delete certificate "drop\.test"/)
    yes.send('y', 'Enter')
    expect(await yes.exitCode()).to.equal(0)
    expect(await names()).to.deep.equal(['keep.test'])
    // Nothing of it is left, not even the renamed-aside copy.
    expect(await fs.readdir(join(t.stateDir, 'certs'))).to.deep.equal(['keep.test'])
  })

  it('takes the lock: a held lock stops it with exit 7 and nothing deleted', async () => {
    const lockFile = join(t.stateDir, '.mfc.lock')
    await fs.writeFile(lockFile, JSON.stringify({pid: process.pid, host: hostname(), command: 'test holder', since: new Date().toISOString()}))
    try {
      const result = await runCli(['cert', 'delete', '--cert-name', 'keep.test', '--yes'], {env: t.env})
      expect(result.code).to.equal(7)
      expect(result.stderr).to.contain('test holder')
    } finally {
      await fs.rm(lockFile, {force: true})
    }

    expect(await names()).to.deep.equal(['keep.test'])
  })

  it('says when the config still points at the deleted certificate', async () => {
    const result = await runCli(['cert', 'delete', '--cert-name', 'keep.test', '--yes'], {env: t.env})
    expectOk(result)
    expect(result.stdout).to.contain('still points at it (cert_file)')
    expect(await names()).to.deep.equal([])
  })
})

import {expect} from 'chai'
import {chmod, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {MonitorReport} from '../../src/services/certificates/monitor.js'
import {mintCa, mintLeaf} from '../helpers/certs.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'

const DAY = 86_400_000

describe('mfc cert monitor', function () {
  this.timeout(60_000)
  let t: TempEnv
  beforeEach(async () => {
    t = await tempEnv()
  })
  afterEach(() => t.cleanup())

  /** A 90-day certificate with `left` days remaining, written as a PEM file. */
  async function certWithDaysLeft(left: number): Promise<string> {
    const ca = await mintCa()
    const leaf = await mintLeaf(ca, ['aging.test'], {notBefore: new Date(Date.now() - (90 - left) * DAY), days: 90})
    const file = join(t.dir, `aging-${left}.pem`)
    await writeFile(file, leaf.certPem + ca.certPem)
    return file
  }

  it('exits 3 (UNKNOWN) and says what to do when nothing exists yet', async () => {
    const result = await runCli(['cert', 'monitor'], {env: t.env})
    expect(result.code).to.equal(3)
    expect(result.stdout).to.contain('fullchain.pem not found. Create the certificate with `mfc ssl init`.')
  })

  it('reports a fresh certificate with every fact, exit 0, the same in JSON', async () => {
    expect((await runCli(['ssl', 'init', '--domain', 'localhost'], {env: t.env})).code).to.equal(0)
    const human = await runCli(['cert', 'monitor'], {env: t.env})
    expect(human.code, human.stderr).to.equal(0)
    expect(human.stdout).to.contain('OK  localhost').and.contain('ECDSA P-256').and.contain('localhost, 127.0.0.1').and.contain('mode 0600')

    const json = await runCli(['cert', 'monitor', '--json'], {env: t.env})
    expect(json.code).to.equal(0)
    const report = parseJson<MonitorReport>(json)
    expect(report.exitCode).to.equal(0)
    expect(report.certificates).to.have.length(1)
    const [cert] = report.certificates
    expect(cert).to.include({name: 'localhost', status: 'ok', issuer: 'local-ca', keyMode: '0600', error: null})
    expect(cert.daysLeft).to.be.within(88, 89)
    expect(cert.certificate).to.include({keyType: 'ECDSA', curve: 'P-256', isCa: false})
    expect(cert.certificate!.sans).to.include.members(['localhost', '127.0.0.1'])
    expect(cert.certificate!.issuer).to.contain('mfc local CA')
    expect(cert.renewal!.renew).to.equal(false)
    expect(cert.warnings).to.deep.equal([])
  })

  const windows: [number, number, string][] = [
    [60, 0, 'ok'],
    [20, 1, 'due'],
    [5, 2, 'critical'],
  ]
  for (const [left, code, status] of windows) {
    it(`exits ${code} (${status}) for a 90-day certificate with ${left} days left`, async () => {
      const file = await certWithDaysLeft(left)
      const result = await runCli(['cert', 'monitor', '--cert-file', file, '--json'], {env: t.env})
      expect(result.code).to.equal(code)
      const report = parseJson<MonitorReport>(result)
      expect(report.exitCode).to.equal(code)
      expect(report.certificates[0].status).to.equal(status)
    })
  }

  it('exits 2 for an expired certificate and 3 for an unreadable file; the worst decides', async () => {
    const expired = await certWithDaysLeft(-3)
    const garbage = join(t.dir, 'garbage.pem')
    await writeFile(garbage, 'not a certificate')
    const fine = await certWithDaysLeft(60)
    const expiredRun = await runCli(['cert', 'monitor', expired, '--json'], {env: t.env})
    expect(expiredRun.code).to.equal(2)
    const [expiredCert] = parseJson<MonitorReport>(expiredRun).certificates
    expect(expiredCert.status).to.equal('expired')
    expect(expiredCert.daysLeft).to.be.within(-4, -3)
    const unreadable = await runCli(['cert', 'monitor', '--cert-file', garbage, '--cert-file', fine], {env: t.env})
    expect(unreadable.code).to.equal(3)
    expect(unreadable.stdout).to.contain('UNKNOWN').and.contain('holds no PEM certificate')
    expect((await runCli(['cert', 'monitor', '--cert-file', garbage, '--cert-file', expired], {env: t.env})).code).to.equal(2)
  })

  it('warns about a world-readable key', async () => {
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--json'], {env: t.env})
    await chmod(parseJson<{keyFile: string}>(init).keyFile, 0o644)
    const result = await runCli(['cert', 'monitor', '--json'], {env: t.env})
    const [cert] = parseJson<MonitorReport>(result).certificates
    expect(cert.keyMode).to.equal('0644')
    expect(cert.warnings.join('\n')).to.contain('world-readable').and.contain('chmod 600')
  })

  it('reads a Python-era config and reports its cert_file', async () => {
    const file = await certWithDaysLeft(45)
    const key = join(t.dir, 'key.pem')
    await writeFile(key, 'unused')
    await writeFile(join(t.dir, 'py.json'), JSON.stringify({cert_file: file, key_file: key, ca_file: null, use_letsencrypt: true, domain: 'aging.test', email: 'a@b.c', staging: false, renewal_days_before: 30}))
    const result = await runCli(['cert', 'monitor', '--json'], {env: {...t.env, MFC_SSL_CONFIG: join(t.dir, 'py.json')}})
    expect(result.code).to.equal(0)
    expect(parseJson<MonitorReport>(result).certificates[0]).to.include({certFile: file, source: 'config', status: 'ok'})
  })

  it('gives a one-line config error naming the key and file, exit 3, no stack trace', async () => {
    const bad = await runCli(['cert', 'monitor'], {env: {...t.env, MFC_HTTPS_API_PORT: 'abc'}})
    expect(bad.code).to.equal(3)
    expect(bad.stderr.split('\n')[0]).to.equal('Error: Invalid value "abc" for "https_port_api" in environment variable MFC_HTTPS_API_PORT: expected a port number (0-65535).')
    expect(bad.stderr).not.to.match(/\n\s+at /)
    await writeFile(join(t.dir, 'broken.json'), '{"domain": ')
    const broken = await runCli(['cert', 'monitor', '--json'], {env: {...t.env, MFC_SSL_CONFIG: join(t.dir, 'broken.json')}})
    expect(broken.code).to.equal(3)
    expect(parseJson<{error: {code: string; message: string}}>(broken).error).to.include({code: 'MFC_CONFIG_PARSE'})
    const debug = await runCli(['cert', 'monitor', '--debug'], {env: {...t.env, MFC_HTTPS_API_PORT: 'abc'}})
    expect(debug.stderr).to.match(/\n\s+at /)
  })
})

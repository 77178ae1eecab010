import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {connect} from 'node:net'
import {join} from 'node:path'

import {expect} from 'chai'

import type {ProbeReport} from '../../src/services/probe/probe.js'
import {type Services, startServices} from '../helpers/backends.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type ComparisonRow, compareFindings, runTestssl} from '../helpers/testssl.js'
import {type MintedCerts, freePort, mintCerts} from '../helpers/tls-peers.js'

function waitForPort(port: number): Promise<void> {
  return new Promise((resolve) => {
    const attempt = () => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.end()
        resolve()
      })
      socket.once('error', () => setTimeout(attempt, 50))
    }

    attempt()
  })
}

function disagreements(rows: ComparisonRow[]): ComparisonRow[] {
  return rows.filter((r) => r.mfc !== null && r.testssl !== null && r.mfc !== r.testssl)
}

describe('mfc test-ssl (agrees with testssl.sh)', function () {
  this.timeout(180_000)
  let temp: TempEnv
  let certs: MintedCerts
  let weak: ChildProcess
  let weakPort: number
  let services: Services

  before(async function () {
    temp = await tempEnv('mfc-testssl-')
    certs = await mintCerts(join(temp.dir, 'certs'), ['localhost', '127.0.0.1'], 'rsa')
    weakPort = await freePort()
    // TLS 1.0 only, one CBC suite with RSA key exchange: what an unmaintained server offers.
    weak = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${weakPort}`, '-cert', certs.fullchainFile, '-key', certs.keyFile, '-tls1', '-cipher', 'AES128-SHA:@SECLEVEL=0', '-www', '-quiet'], {stdio: 'ignore'})
    await waitForPort(weakPort)
    services = await startServices({cert: certs.certPem + certs.caPem, key: certs.keyPem})
  })

  after(async () => {
    weak?.kill()
    await services?.close()
    await temp?.cleanup()
  })

  const probe = async (args: string[]) => {
    const result = await runCli(['test-ssl', ...args, '--ca-file', certs.caFile, '--json'], {env: temp.env})
    return {code: result.code, report: parseJson<ProbeReport>(result)}
  }

  it('flags the weak server (TLS 1.0, CBC, RSA key exchange) and exits 1', async () => {
    const {code, report} = await probe([`127.0.0.1:${weakPort}`])
    expect(code).to.equal(1)
    const status = Object.fromEntries(report.targets[0].checks.map((c) => [c.id, c.status]))
    expect(status).to.include({'protocol.tls1': 'fail', 'protocol.tls1_1': 'pass', 'protocol.tls1_2': 'fail', 'cipher.cbc': 'fail', 'cipher.rsa_kex': 'fail', 'cipher.null': 'pass', handshake: 'fail', chain: 'pass', hostname: 'pass'})
  })

  it('passes the strong services: API and dashboard with headers, streamer with a WSS upgrade', async () => {
    const {code, report} = await probe([`https://127.0.0.1:${services.ports.api}/health`, `https://127.0.0.1:${services.ports.frontend}/`, `wss://127.0.0.1:${services.ports.streamer}/`])
    const failed = report.targets.flatMap((t) => t.checks.filter((c) => c.status === 'fail').map((c) => `${t.target} ${c.id}: ${c.detail}`))
    expect(failed).to.deep.equal([])
    expect(code).to.equal(0)
    expect(report.targets[2].checks.find((c) => c.id === 'wss.upgrade')?.status).to.equal('pass')
    expect(report.targets[0].checks.map((c) => c.id)).to.include.members(['headers.hsts', 'headers.csp', 'headers.nosniff', 'headers.frame_options'])
  })

  it('without arguments checks the three configured services, trusting the config\'s ca_file', async () => {
    const {writeFile, mkdir} = await import('node:fs/promises')
    await mkdir(temp.configDir, {recursive: true})
    await writeFile(join(temp.configDir, 'ssl-config.json'), JSON.stringify({domain: 'localhost', ca_file: certs.caFile, host: '127.0.0.1'}))
    const env = {...temp.env, MFC_HTTPS_API_PORT: String(services.ports.api), MFC_HTTPS_FRONTEND_PORT: String(services.ports.frontend), MFC_WSS_STREAMING_PORT: String(services.ports.streamer)}
    const result = await runCli(['test-ssl'], {env})
    expect(result.code, result.stdout).to.equal(0)
    expect(result.stdout).to.match(/PASS {2}api \(127\.0\.0\.1:\d+, https/)
    expect(result.stdout).to.match(/PASS {2}WSS upgrade +101 Switching Protocols/)
    expect(result.stdout).to.include('All 3 target(s) passed')
    await writeFile(join(temp.configDir, 'ssl-config.json'), '{}')
  })

  it('reports a closed port as unreachable without hanging', async () => {
    const {code, report} = await probe([`127.0.0.1:${await freePort()}`])
    expect(code).to.equal(1)
    expect(report.targets[0].checks).to.have.length(1)
    expect(report.targets[0].checks[0]).to.include({id: 'tcp', status: 'fail'})
  })

  it('agrees with testssl.sh on every finding both report, on both servers', async function () {
    if (spawnSync('testssl', ['--version']).error) this.skip()
    const weakTestssl = runTestssl(['--add-ca', certs.caFile, '-p', '-s', '-S', `127.0.0.1:${weakPort}`], join(temp.dir, 'weak.json'))
    const strongTestssl = runTestssl(['--add-ca', certs.caFile, '-p', '-s', '-S', '-h', `https://127.0.0.1:${services.ports.api}/health`], join(temp.dir, 'strong.json'))
    const [weakMfc, strongMfc] = await Promise.all([probe([`127.0.0.1:${weakPort}`]), probe([`https://127.0.0.1:${services.ports.api}/health`])])
    const weakRows = compareFindings(weakMfc.report.targets[0], await weakTestssl)
    const strongRows = compareFindings(strongMfc.report.targets[0], await strongTestssl)
    expect(disagreements(weakRows), 'weak server').to.deep.equal([])
    expect(disagreements(strongRows), 'strong server').to.deep.equal([])
    // The comparison is not vacuous: both tools reported these, and they differ between the servers.
    const both = (rows: ComparisonRow[]) => rows.filter((r) => r.mfc !== null && r.testssl !== null).map((r) => r.finding)
    expect(both(weakRows)).to.include.members(['TLS 1.0 offered', 'TLS 1.2 offered', 'CBC (obsolete) ciphers offered', 'Chain of trust passed', 'Session resumption'])
    expect(both(strongRows)).to.include.members(['TLS 1.3 offered', 'HSTS sent', 'Content-Security-Policy sent'])
    const value = (rows: ComparisonRow[], finding: string) => rows.find((r) => r.finding === finding)?.mfc
    expect([value(weakRows, 'TLS 1.0 offered'), value(strongRows, 'TLS 1.0 offered')]).to.deep.equal([true, false])
    expect([value(weakRows, 'CBC (obsolete) ciphers offered'), value(strongRows, 'CBC (obsolete) ciphers offered')]).to.deep.equal([true, false])
  })
})

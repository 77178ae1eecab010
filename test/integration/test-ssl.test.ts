import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {connect} from 'node:net'
import {join} from 'node:path'

import {expect} from 'chai'

import type {ProbeReport} from '../../src/services/probe/probe.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {TEST_TOKEN} from '../helpers/serve.js'
import {type ServeProcess, startServeProcess} from '../helpers/serve-process.js'
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

describe('mfc test-ssl against a weak server and a real mfc serve (agrees with testssl.sh)', function () {
  this.timeout(360_000)
  let temp: TempEnv
  let certs: MintedCerts
  let weak: ChildProcess
  let weakPort: number
  let serve: ServeProcess

  before(async function () {
    temp = await tempEnv('mfc-testssl-')
    certs = await mintCerts(join(temp.dir, 'certs'), ['localhost', '127.0.0.1'], 'rsa')
    weakPort = await freePort()
    // TLS 1.0 only, one CBC suite with RSA key exchange: what an unmaintained server offers.
    weak = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${weakPort}`, '-cert', certs.fullchainFile, '-key', certs.keyFile, '-tls1', '-cipher', 'AES128-SHA:@SECLEVEL=0', '-www', '-quiet'], {stdio: 'ignore'})
    await waitForPort(weakPort)
    // serve bootstraps its certificate through the local CA, as on a fresh machine.
    serve = await startServeProcess(temp.env)
  })

  after(async () => {
    weak?.kill()
    await serve?.stop()
    await temp?.cleanup()
  })

  const probe = async (args: string[], env = temp.env) => {
    const result = await runCli(['test-ssl', ...args, '--ca-file', certs.caFile, '--json'], {env})
    return {code: result.code, report: parseJson<ProbeReport>(result)}
  }
  const servePorts = () => serve.ports

  it('flags the weak server (TLS 1.0, CBC, RSA key exchange) and exits 1', async () => {
    const {code, report} = await probe([`127.0.0.1:${weakPort}`])
    expect(code).to.equal(1)
    const status = Object.fromEntries(report.targets[0].checks.map((c) => [c.id, c.status]))
    expect(status).to.include({'protocol.tls1': 'fail', 'protocol.tls1_1': 'pass', 'protocol.tls1_2': 'fail', 'cipher.cbc': 'fail', 'cipher.rsa_kex': 'fail', 'cipher.null': 'pass', handshake: 'fail', chain: 'pass', hostname: 'pass'})
  })

  it('without arguments checks the running mfc serve (ports from its pid file, its token for the WSS upgrade) and passes', async () => {
    const result = await runCli(['test-ssl'], {env: {...temp.env, MFC_API_TOKEN: TEST_TOKEN}})
    expect(result.code, result.stdout).to.equal(0)
    for (const [name, port] of [['api', servePorts().api], ['dashboard', servePorts().dashboard], ['streamer', servePorts().streamer]] as const) {
      expect(result.stdout).to.include(`PASS  ${name} (127.0.0.1:${port}, ${name === 'streamer' ? 'wss' : 'https'}`)
    }

    // One line per target by default; --verbose lists every check.
    expect(result.stdout.split('\n').filter((line) => /^ {2}\S/.test(line))).to.deep.equal([])
    expect(result.stdout).to.match(/^PASS {2}api .*: \d+ passed$/m)
    expect(result.stdout).to.include('All 3 target(s) passed')
    expect(result.stdout).not.to.include(TEST_TOKEN)
    const verbose = await runCli(['test-ssl', '--verbose'], {env: {...temp.env, MFC_API_TOKEN: TEST_TOKEN}})
    expect(verbose.stdout).to.match(/PASS {2}WSS upgrade +101 Switching Protocols/)
    expect(verbose.stdout).to.match(/PASS {2}Strict-Transport-Security +max-age=31536000/)
    expect(verbose.stdout).not.to.match(/^ {2}(FAIL|WARN) /m)
    expect(verbose.stdout).not.to.include(TEST_TOKEN)
  })

  it('without the token the streamer\'s upgrade is a warning, not a pass; a foreign name never gets the token', async () => {
    const streamer = `wss://127.0.0.1:${servePorts().streamer}/`
    const anonymous = await probe([streamer, '--ca-file', serve.caFile])
    expect(anonymous.report.targets[0].checks.find((c) => c.id === 'wss.upgrade')).to.include({status: 'warn'})
    expect(anonymous.code).to.equal(0)
    const withToken = await probe([streamer, '--ca-file', serve.caFile], {...temp.env, MFC_API_TOKEN: TEST_TOKEN})
    expect(withToken.report.targets[0].checks.find((c) => c.id === 'wss.upgrade')).to.include({status: 'pass'})
    const foreign = await probe([streamer, '--servername', 'other.example', '--ca-file', serve.caFile], {...temp.env, MFC_API_TOKEN: TEST_TOKEN})
    expect(foreign.report.targets[0].checks.find((c) => c.id === 'wss.upgrade')).to.include({status: 'warn'})
  })

  it('reports a closed port as unreachable without hanging', async () => {
    const {code, report} = await probe([`127.0.0.1:${await freePort()}`])
    expect(code).to.equal(1)
    expect(report.targets[0].checks).to.have.length(1)
    expect(report.targets[0].checks[0]).to.include({id: 'tcp', status: 'fail'})
  })

  it('agrees with testssl.sh on every finding both report, on the weak server and on mfc serve', async function () {
    expect(spawnSync('testssl', ['--version']).error, 'testssl.sh (Debian package testssl.sh) must be installed: .ci/run installs it').to.equal(undefined)
    const api = `https://127.0.0.1:${servePorts().api}/health`
    const weakTestssl = runTestssl(['--add-ca', certs.caFile, '-p', '-s', '-S', `127.0.0.1:${weakPort}`], join(temp.dir, 'weak.json'))
    const strongTestssl = runTestssl(['--add-ca', serve.caFile, '-p', '-s', '-S', '-h', api], join(temp.dir, 'strong.json'))
    const [weakMfc, strongMfc] = await Promise.all([probe([`127.0.0.1:${weakPort}`]), probe([api, '--ca-file', serve.caFile])])
    const weakRows = compareFindings(weakMfc.report.targets[0], await weakTestssl)
    const strongRows = compareFindings(strongMfc.report.targets[0], await strongTestssl)
    expect(disagreements(weakRows), 'weak server').to.deep.equal([])
    expect(disagreements(strongRows), 'mfc serve').to.deep.equal([])
    // The comparison is not vacuous: both tools reported these, and they differ between the servers.
    const both = (rows: ComparisonRow[]) => rows.filter((r) => r.mfc !== null && r.testssl !== null).map((r) => r.finding)
    expect(both(weakRows)).to.include.members(['TLS 1.0 offered', 'TLS 1.2 offered', 'CBC (obsolete) ciphers offered', 'Chain of trust passed', 'Session resumption'])
    expect(both(strongRows)).to.include.members(['TLS 1.3 offered', 'Chain of trust passed', 'HSTS sent', 'Content-Security-Policy sent', 'X-Frame-Options sent'])
    const value = (rows: ComparisonRow[], finding: string) => rows.find((r) => r.finding === finding)?.mfc
    expect([value(weakRows, 'TLS 1.0 offered'), value(strongRows, 'TLS 1.0 offered')]).to.deep.equal([true, false])
    expect([value(weakRows, 'CBC (obsolete) ciphers offered'), value(strongRows, 'CBC (obsolete) ciphers offered')]).to.deep.equal([true, false])
  })
})

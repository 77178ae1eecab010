import {type ChildProcess, spawn} from 'node:child_process'
import {connect as connectTcp} from 'node:net'
import {join} from 'node:path'
import {connect} from 'node:tls'

import {expect} from 'chai'

import {type Running, type TestSite, startServe, testSite} from '../helpers/serve.js'
import {type TestsslFinding, describeFinding, judgeTestssl, runTestssl} from '../helpers/testssl.js'
import {freePort, mintCerts} from '../helpers/tls-peers.js'

/** A handshake with a given protocol range; resolves with the negotiated protocol or the error. */
function handshake(port: number, ca: string, options: {minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'; maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'; ciphers?: string}): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({host: '127.0.0.1', port, ca, servername: 'localhost', ...options}, () => {
      resolve(`${socket.getProtocol()} ${socket.getCipher().name}`)
      socket.end()
    })
    socket.on('error', (error) => resolve(`refused: ${(error as NodeJS.ErrnoException).code ?? error.message}`))
  })
}

function waitForPort(port: number): Promise<void> {
  return new Promise((resolve) => {
    const attempt = () => {
      const socket = connectTcp(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.end()
        resolve()
      })
      socket.once('error', () => setTimeout(attempt, 50))
    }

    attempt()
  })
}

/** Scanner notes are the scanner's business: shown in the test log, never part of the verdict. */
function logNotes(label: string, findings: TestsslFinding[]): void {
  for (const note of judgeTestssl(findings).notes) console.log(`      testssl.sh note (${label}, not counted): ${describeFinding(note)}`)
}

const SCAN = ['-p', '-s', '-f', '-E', '-U', '--ip', '127.0.0.1']

describe('mfc serve: TLS configuration as an auditor sees it', function () {
  this.timeout(420_000)
  let site: TestSite
  let serve: Running
  let weak: ChildProcess | undefined

  before(async () => {
    site = await testSite()
    serve = await startServe(site)
  })
  after(async () => {
    weak?.kill()
    await serve?.close()
    await site?.temp.cleanup()
  })

  it('TLS 1.0/1.1 and weak suites are refused; 1.2 and 1.3 negotiate AEAD suites', async () => {
    const port = Number(new URL(serve.url('api')).port)
    expect(await handshake(port, site.caPem, {minVersion: 'TLSv1', maxVersion: 'TLSv1.1'})).to.match(/^refused/)
    expect(await handshake(port, site.caPem, {maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA'})).to.match(/^refused/)
    expect(await handshake(port, site.caPem, {maxVersion: 'TLSv1.2'})).to.match(/^TLSv1\.2 ECDHE-ECDSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/)
    expect(await handshake(port, site.caPem, {minVersion: 'TLSv1.3'})).to.match(/^TLSv1\.3 TLS_/)
  })

  it('testssl.sh (protocols, cipher categories, forward secrecy, ciphers per protocol, vulnerabilities) finds nothing at LOW or above', async () => {
    const port = new URL(serve.url('streamer')).port
    const findings = await runTestssl([...SCAN, `localhost:${port}`], join(site.temp.dir, 'testssl.json'))
    logNotes('mfc serve', findings)
    expect(findings.length).to.be.above(30)
    expect(judgeTestssl(findings).problems.map(describeFinding)).to.deep.equal([])
    const offered = findings.filter((f) => /^cipher-tls1_[23]/.test(f.id)).map((f) => f.finding)
    expect(offered.length).to.be.above(3)
    for (const cipher of offered) expect(cipher).to.match(/GCM|CHACHA20/)
    expect(findings.find((f) => f.id === 'TLS1_3')?.finding).to.match(/offered/)
    expect(findings.find((f) => f.id === 'TLS1_1')?.finding).to.equal('not offered')
  })

  it('the same scan and verdict fail a deliberately weak openssl s_server (the check can fail)', async () => {
    const temp = join(site.temp.dir, 'weak')
    const certs = await mintCerts(temp, ['localhost', '127.0.0.1'], 'rsa')
    const port = await freePort()
    // TLS 1.0 only, one CBC suite with RSA key exchange: what an unmaintained server offers.
    weak = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', certs.fullchainFile, '-key', certs.keyFile, '-tls1', '-cipher', 'AES128-SHA:@SECLEVEL=0', '-www', '-quiet'], {stdio: 'ignore'})
    await waitForPort(port)
    const findings = await runTestssl(['-p', '-s', '-f', '--ip', '127.0.0.1', `localhost:${port}`], join(temp, 'testssl.json'))
    logNotes('weak s_server', findings)
    const problems = judgeTestssl(findings).problems.map((f) => f.id)
    // Each weakness by id, so a renamed message cannot hide it: TLS 1.0 offered, TLS 1.2 missing, CBC.
    expect(problems).to.include.members(['TLS1', 'TLS1_2', 'cipherlist_AVERAGE'])
    // No forward secrecy: testssl.sh 3.0 files it as PFS, 3.1+ as FS.
    expect(problems.some((id) => id === 'FS' || id === 'PFS'), problems.join(', ')).to.equal(true)
  })
})

import {expect} from 'chai'
import {execFile} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {connect} from 'node:tls'

import {type Running, type TestSite, startServe, testSite} from '../helpers/serve.js'

interface Finding {
  id: string
  severity: string
  finding: string
}

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

describe('mfc serve: TLS configuration as an auditor sees it', function () {
  this.timeout(240_000)
  let site: TestSite
  let serve: Running

  before(async () => {
    site = await testSite()
    serve = await startServe(site)
  })
  after(async () => {
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

  it('testssl.sh (protocols, cipher categories, forward secrecy, ciphers per protocol, vulnerabilities) finds nothing', async () => {
    const port = new URL(serve.url('streamer')).port
    const jsonFile = join(site.temp.dir, 'testssl.json')
    await new Promise<void>((resolve, reject) => {
      execFile('testssl', ['--quiet', '--color', '0', '--warnings', 'off', '--jsonfile', jsonFile, '-p', '-s', '-f', '-E', '-U', '--ip', '127.0.0.1', `localhost:${port}`],
        {timeout: 220_000, maxBuffer: 16 * 1024 * 1024}, (error) => {
          if (error && !(error as {code?: number}).code) reject(error as Error)
          else resolve()
        })
    })
    const findings = JSON.parse(readFileSync(jsonFile, 'utf8')) as Finding[]
    expect(findings.length).to.be.above(30)
    const bad = findings.filter((f) => !['OK', 'INFO'].includes(f.severity)).map((f) => `${f.id} ${f.severity}: ${f.finding}`)
    expect(bad).to.deep.equal([])
    const offered = findings.filter((f) => /^cipher-tls1_[23]/.test(f.id)).map((f) => f.finding)
    expect(offered.length).to.be.above(3)
    for (const cipher of offered) expect(cipher).to.match(/GCM|CHACHA20/)
    expect(findings.find((f) => f.id === 'TLS1_3')?.finding).to.match(/offered/)
    expect(findings.find((f) => f.id === 'TLS1_1')?.finding).to.equal('not offered')
  })
})

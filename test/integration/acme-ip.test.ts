import {execFile} from 'node:child_process'
import {promises as fs} from 'node:fs'
import {join} from 'node:path'
import {connect} from 'node:tls'
import {promisify} from 'node:util'

import {expect} from 'chai'

import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type Pebble, startPebble} from '../helpers/pebble.js'
import {startServeProcess} from '../helpers/serve-process.js'

const run = promisify(execFile)

/** The certificate served at 127.0.0.1:port, verified against `ca` and checked against the IP itself (no SNI). */
function servedForIp(port: number, ca: string): Promise<{serial: string; san: string}> {
  return new Promise((resolve, reject) => {
    const socket = connect({host: '127.0.0.1', port, ca}, () => {
      const peer = socket.getPeerCertificate()
      resolve({serial: peer.serialNumber, san: peer.subjectaltname ?? ''})
      socket.end()
    })
    socket.on('error', reject)
  })
}

describe('IP-address certificates (RFC 8738) from Pebble over HTTP-01', function () {
  this.timeout(120_000)
  let pebble: Pebble
  let t: TempEnv

  before(async () => {
    pebble = await startPebble({validityPeriod: 7_776_000})
    t = await tempEnv('maint-ip-')
  })

  after(async () => {
    await pebble?.stop()
    await t?.cleanup()
  })

  it('ssl init --ip-address 127.0.0.1: an ip identifier, openssl verify passes, serve serves it on https://127.0.0.1, test-ssl checks the IP SAN', async () => {
    const env = {...t.env, ...pebble.env}
    const init = await runCli(['ssl', 'init', '--agree-tos', '--ip-address', '127.0.0.1', '--email', 'ops@mfc.example', '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort), '--json'], {env})
    expect(init.code, init.stderr).to.equal(0)
    const out = parseJson<{domains: string[]; certFile: string; chainFile: string}>(init)
    expect(out.domains).to.deep.equal(['127.0.0.1'])
    const text = (await run('openssl', ['x509', '-in', out.certFile, '-noout', '-ext', 'subjectAltName'])).stdout
    expect(text).to.match(/IP Address:127\.0\.0\.1/)
    expect(text).to.not.match(/DNS:/)

    const rootFile = join(t.dir, 'root.pem')
    await fs.writeFile(rootFile, await pebble.root())
    const verified = await run('openssl', ['verify', '-CAfile', rootFile, '-untrusted', out.chainFile, out.certFile])
    expect(verified.stdout).to.match(/OK/)

    const serve = await startServeProcess(env)
    try {
      const served = await servedForIp(serve.ports.api, await pebble.root())
      expect(served.san).to.equal('IP Address:127.0.0.1')
      const probe = await runCli(['test-ssl', `127.0.0.1:${serve.ports.api}`, '--ca-file', rootFile, '--json'], {env})
      const report = JSON.stringify(parseJson(probe))
      expect(report).to.match(/"id":"hostname","[^}]*"status":"pass"/)
      expect(report).to.include('IP Address:127.0.0.1')
    } finally {
      await serve.stop()
    }
  })

  it('rejects an --ip-address that is not an address, naming it (exit 3)', async () => {
    const result = await runCli(['ssl', 'init', '--agree-tos', '--ip-address', '300.1.2.3', '--acme-directory', pebble.directory, '--json'], {env: {...t.env, ...pebble.env}})
    expect(result.code).to.equal(3)
    expect(result.stdout + result.stderr).to.include('--ip-address 300.1.2.3 is not an IPv4 or IPv6 address')
  })
})

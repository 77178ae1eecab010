import {expect} from 'chai'
import {createServer} from 'node:net'
import {join} from 'node:path'

import {collectStatus} from '../../src/services/daemon/status.js'
import {type Running, type TestSite, TEST_TOKEN, startServe, testSite} from '../helpers/serve.js'
import {mintCerts} from '../helpers/tls-peers.js'

async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('status probes (undici, HTTPS with the configured CA, WSS handshake)', function () {
  let site: TestSite
  let serve: Running
  const port = (name: 'api' | 'dashboard' | 'streamer') => Number(new URL(serve.url(name)).port)

  before(async () => {
    site = await testSite()
    serve = await startServe(site)
  })
  after(async () => {
    await serve?.close()
    await site?.temp.cleanup()
  })

  it('all three answering: healthy, exit 0, even without a pid file (a serve started elsewhere)', async () => {
    const config = site.reconfig({https_port_api: port('api'), https_port_frontend: port('dashboard'), wss_port_streaming: port('streamer')})
    const report = await collectStatus(config, {now: new Date(), token: TEST_TOKEN})
    expect(report.status).to.equal('healthy')
    expect(report.exitCode).to.equal(0)
    expect(report.mode).to.equal(null)
    expect(report.certificate.daysLeft).to.be.within(88, 90)
  })

  it('one service not answering: degraded, exit 1, naming it', async () => {
    const config = site.reconfig({https_port_api: port('api'), https_port_frontend: port('dashboard'), wss_port_streaming: await closedPort()})
    const report = await collectStatus(config, {now: new Date(), token: TEST_TOKEN})
    expect(report.status).to.equal('degraded')
    expect(report.exitCode).to.equal(1)
    expect(report.problems.join()).to.match(/^streamer: WSS handshake failed/)
  })

  it('the streamer probe authenticates: without the token the handshake fails', async () => {
    const config = site.reconfig({https_port_api: port('api'), https_port_frontend: port('dashboard'), wss_port_streaming: port('streamer')})
    const report = await collectStatus(config, {now: new Date()})
    expect(report.services[2].healthy).to.equal(false)
  })

  it('a chain this machine does not trust: alive (probed against the loaded certificate), with a trust warning', async () => {
    const config = site.reconfig({https_port_api: port('api'), https_port_frontend: port('dashboard'), wss_port_streaming: port('streamer'), ca_file: null})
    const report = await collectStatus(config, {now: new Date(), token: TEST_TOKEN})
    expect(report.status).to.equal('healthy')
    expect(report.trust).to.deep.include({trusted: false})
    expect(report.trust?.error).to.match(/UNABLE_TO_VERIFY|self.signed|unable to get/i)
    expect(report.warnings.join()).to.match(/not trusted on this machine/)
  })

  it('a server presenting another certificate than cert_file fails the probe (the pin is no verification bypass)', async () => {
    const other = await mintCerts(join(site.temp.dir, 'other-cert'), ['localhost'])
    const config = site.reconfig({https_port_api: port('api'), https_port_frontend: port('dashboard'), wss_port_streaming: port('streamer'), ca_file: null, cert_file: other.fullchainFile})
    const report = await collectStatus(config, {now: new Date(), token: TEST_TOKEN})
    expect(report.status).to.not.equal('healthy')
    expect(report.services.every((s) => !s.healthy)).to.equal(true)
  })
})

import {expect} from 'chai'
import {type ChildProcess, spawn} from 'node:child_process'
import {X509Certificate} from 'node:crypto'
import {cpSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync} from 'node:fs'
import {Agent} from 'node:https'
import {join} from 'node:path'
import WebSocket from 'ws'

import {generatePrivateKey} from '../../src/services/certificates/x509-builder.js'
import {FileCertStore} from '../../src/services/store/file-cert-store.js'
import {MfcEventBus} from '../../src/lib/events.js'
import {BIN} from '../helpers/cli.js'
import {type TestSite, bearer, fetchText, startServe, testSite} from '../helpers/serve.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Clients hammering /health while the certificate changes: new connections and one keep-alive. */
class Load {
  failures: string[] = []
  requests = 0
  serials = new Set<string>()
  private running = true
  private readonly loops: Promise<void>[]
  private readonly keepAlive = new Agent({keepAlive: true, maxSockets: 1})

  constructor(private readonly url: string, private readonly ca: string) {
    this.loops = [this.loop(false), this.loop(false), this.loop(true)]
  }

  private async loop(keepAlive: boolean): Promise<void> {
    while (this.running) {
      try {
        const reply = await fetchText(this.url, {ca: this.ca, agent: keepAlive ? this.keepAlive : false})
        this.requests++
        if (reply.status !== 200) this.failures.push(`HTTP ${reply.status}`)
        if (!keepAlive && reply.peerCert?.serialNumber) this.serials.add(reply.peerCert.serialNumber)
      } catch (error) {
        this.failures.push((error as Error).message)
      }
    }
  }

  /** The serial a brand-new connection sees now. */
  async currentSerial(): Promise<string> {
    return (await fetchText(this.url, {ca: this.ca})).peerCert!.serialNumber
  }

  async until(serial: string): Promise<void> {
    while ((await this.currentSerial()) !== serial) await sleep(50)
  }

  async stop(): Promise<void> {
    this.running = false
    await Promise.all(this.loops)
    this.keepAlive.destroy()
  }
}

async function openSession(url: string, ca: string): Promise<WebSocket> {
  const ws = new WebSocket(url, {ca, headers: bearer(), servername: 'localhost'} as WebSocket.ClientOptions)
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  return ws
}

async function pingPong(ws: WebSocket): Promise<string> {
  const reply = new Promise<string>((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const msg = JSON.parse(data.toString())
      if (msg.type !== 'pong') return
      ws.off('message', onMessage)
      resolve(msg.type)
    }

    ws.on('message', onMessage)
  })
  ws.send(JSON.stringify({type: 'ping'}))
  return reply
}

function serialOf(pemFile: string): string {
  return new X509Certificate(readFileSync(pemFile)).serialNumber
}

describe('mfc serve: hot certificate reload under load', function () {
  this.timeout(120_000)
  let site: TestSite

  before(async () => {
    site = await testSite({rate_limit_per_minute: 0})
  })
  after(async () => site?.temp.cleanup())

  it('a new store version is picked up through the file watcher: zero failed requests, WS session survives, bad pair rejected', async () => {
    const events = new MfcEventBus()
    const failures: string[] = []
    events.on('server:reload-failed', ({error}) => failures.push(error.message))
    const serve = await startServe(site, {events})
    const load = new Load(`${serve.url('api')}/health`, site.caPem)
    const ws = await openSession(serve.url('streamer'), site.caPem)
    try {
      const before = await load.currentSerial()
      const {serial} = await site.reissue()
      expect(serial).not.to.equal(before)
      await load.until(serial)

      // A version whose key does not match its certificate: rejected, the good one keeps serving.
      const store = new FileCertStore(site.config.paths.storeDir)
      const live = (await store.live('localhost'))!
      await store.put('localhost', {certPem: readFileSync(live.certFile, 'utf8'), chainPem: '', keyPem: await generatePrivateKey({type: 'ecdsa', curve: 'P-256'}), meta: live.meta})
      while (failures.length === 0) await sleep(50)
      expect(failures.join()).to.include('does not belong')
      expect(await load.currentSerial()).to.equal(serial)
      for (const service of ['api', 'dashboard'] as const) {
        expect((await fetchText(`${serve.url(service)}/health`, {ca: site.caPem})).peerCert!.serialNumber).to.equal(serial)
      }

      expect(await pingPong(ws)).to.equal('pong')
      await load.stop()
      expect(load.failures).to.deep.equal([])
      expect([...load.serials]).to.include.members([before, serial])
      expect(load.requests).to.be.above(10)
    } finally {
      ws.close()
      await load.stop()
      await serve.close()
    }
  })

  it('SIGHUP to a running `mfc serve` reloads a change no watcher can see (a symlink switch above the watched directory)', async () => {
    const root = join(site.temp.dir, 'sighup')
    const store = new FileCertStore(site.config.paths.storeDir)
    const copyLive = async (into: string) => {
      const live = (await store.live('localhost'))!
      mkdirSync(join(root, into, 'tls'), {recursive: true})
      cpSync(live.fullchainFile, join(root, into, 'tls', 'fullchain.pem'))
      cpSync(live.keyFile, join(root, into, 'tls', 'privkey.pem'))
      return serialOf(live.fullchainFile)
    }

    await site.reissue()
    const first = await copyLive('v1')
    await site.reissue()
    const second = await copyLive('v2')
    mkdirSync(join(root, 'v3', 'tls'), {recursive: true})
    cpSync(join(root, 'v2', 'tls', 'fullchain.pem'), join(root, 'v3', 'tls', 'fullchain.pem'))
    writeFileSync(join(root, 'v3', 'tls', 'privkey.pem'), await generatePrivateKey({type: 'ecdsa', curve: 'P-256'}))
    symlinkSync(join(root, 'v1'), join(root, 'current'))
    const switchTo = (version: string) => {
      symlinkSync(join(root, version), join(root, 'next'))
      renameSync(join(root, 'next'), join(root, 'current'))
    }

    const env = {...site.env, MFC_RATE_LIMIT_PER_MINUTE: '0', MFC_SSL_CERT_FILE: join(root, 'current', 'tls', 'fullchain.pem'), MFC_SSL_KEY_FILE: join(root, 'current', 'tls', 'privkey.pem')}
    const child: ChildProcess = spawn(process.execPath, [BIN, 'serve', '--api-port', '0', '--dashboard-port', '0', '--stream-port', '0', '--no-http'], {env, stdio: ['ignore', 'pipe', 'pipe']})
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    let load: Load | undefined
    let ws: WebSocket | undefined
    try {
      let ports: {api: number; streamer: number} | undefined
      while (!ports) {
        await sleep(100)
        try {
          const record = JSON.parse(readFileSync(site.config.paths.pidFile, 'utf8'))
          if (record.ready) ports = record.ports
        } catch {}
      }

      load = new Load(`https://127.0.0.1:${ports.api}/health`, site.caPem)
      ws = await openSession(`wss://127.0.0.1:${ports.streamer}`, site.caPem)
      expect(await load.currentSerial()).to.equal(first)
      switchTo('v2')
      child.kill('SIGHUP')
      await load.until(second)

      switchTo('v3')
      child.kill('SIGHUP')
      const logFile = site.config.paths.logFile
      while (!readFileSync(logFile, 'utf8').includes('Certificate reload rejected')) await sleep(50)
      expect(await load.currentSerial()).to.equal(second)
      expect(await pingPong(ws)).to.equal('pong')
      await load.stop()
      expect(load.failures).to.deep.equal([])
      expect([...load.serials]).to.include.members([first, second])
    } finally {
      ws?.close()
      await load?.stop()
      child.kill('SIGTERM')
    }

    expect(await exited).to.equal(0)
  })
})

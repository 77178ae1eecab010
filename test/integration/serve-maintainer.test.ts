import {existsSync, promises as fs, readFileSync, writeFileSync} from 'node:fs'
import {Agent, request} from 'node:https'
import {join} from 'node:path'

import {expect} from 'chai'

import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type WebhookPeer, startWebhook} from '../helpers/notify-peers.js'
import {type Pebble, startPebble} from '../helpers/pebble.js'
import {type ServeProcess, servedSerial, startServeProcess} from '../helpers/serve-process.js'

interface Health {
  renewal?: {last_check: string | null; next_check: string | null; certificates: {name: string; last_result: string | null; next_renewal: string | null; consecutive_failures: number}[]}
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** GET https://127.0.0.1:port/path verifying the certificate for `servername` against `ca`. */
function get(port: number, path: string, options: {ca: string; servername: string; agent?: Agent}): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    const req = request({host: '127.0.0.1', port, path, ca: options.ca, servername: options.servername, agent: options.agent, timeout: 5000}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => {
        body += c
      })
      res.on('end', () => resolve({status: res.statusCode ?? 0, body}))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, tries = 600, everyMs = 100): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    await sleep(everyMs)
  }

  throw new Error(`gave up waiting for ${what}`)
}

describe('serve keeps its own certificates (CertificateMaintainer, real Pebble)', function () {
  this.timeout(180_000)
  let t: TempEnv
  const cleanups: (() => Promise<unknown>)[] = []

  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => {})
  })

  /** ssl init from `pebble` for `domain`, then a foreground serve answering HTTP-01 on Pebble's port. */
  async function issueAndServe(pebble: Pebble, domain: string, extraConfig: Record<string, unknown> = {}, beforeServe?: (env: NodeJS.ProcessEnv) => Promise<void>): Promise<{serve: ServeProcess; env: NodeJS.ProcessEnv; name: string}> {
    t = await tempEnv('maint-serve-')
    cleanups.push(() => t.cleanup())
    const env = {...t.env, ...pebble.env}
    const init = await runCli(['ssl', 'init', '--agree-tos', '--domain', domain, '--email', 'ops@mfc.example', '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort), '--json'], {env})
    expect(init.code, init.stderr).to.equal(0)
    const {name} = parseJson<{name: string}>(init)
    if (Object.keys(extraConfig).length > 0) {
      const file = join(t.configDir, 'ssl-config.json')
      writeFileSync(file, JSON.stringify({...JSON.parse(readFileSync(file, 'utf8')), ...extraConfig}, null, 2))
    }

    await beforeServe?.(env)
    const serve = await startServeProcess(env, {httpPort: pebble.httpPort})
    cleanups.push(() => serve.stop())
    return {serve, env, name}
  }

  const versions = (name: string) => fs.readdir(join(t.stateDir, 'certs', name, 'versions'))

  describe('on a Pebble issuing 20-second certificates', () => {
    let pebble: Pebble
    before(async () => {
      pebble = await startPebble({validityPeriod: 20})
    })
    after(async () => pebble?.stop())

    it('renews by itself several times while a client makes requests: no failed request, each new serial on all three ports, same pid', async () => {
      const domain = 'self.mfc.example'
      // The client asks ~30 times a second: above serve's default per-address limit (60/min).
      const {serve, env} = await issueAndServe(pebble, domain, {rate_limit_per_minute: 100_000})
      const ca = await pebble.root()
      const tls = {ca, servername: domain}
      const agent = new Agent({keepAlive: true, maxSockets: 2})
      let ok = 0
      const failures: string[] = []
      let running = true
      const client = (async () => {
        while (running) {
          try {
            const response = await get(serve.ports.api, '/health', {...tls, agent})
            if (response.status === 200) ok++
            else failures.push(`HTTP ${response.status}`)
          } catch (error) {
            failures.push((error as Error).message)
          }

          await sleep(30)
        }
      })()
      try {
        const serials = [await servedSerial(serve.ports.api, tls)]
        while (serials.length < 4) {
          const serial = await until('a renewed certificate on the API port', async () => {
            const now = await servedSerial(serve.ports.api, tls)
            return now === serials.at(-1) ? undefined : now
          })
          // The same new certificate on the dashboard and the streamer, without a restart.
          for (const port of [serve.ports.dashboard, serve.ports.streamer]) {
            await until(`serial ${serial} on port ${port}`, async () => (await servedSerial(port, tls)) === serial || undefined, 50)
          }

          serials.push(serial)
        }

        expect(new Set(serials).size).to.equal(4)
      } finally {
        running = false
        await client
        agent.destroy()
      }

      expect(failures, `failed requests: ${failures.slice(0, 5).join('; ')}`).to.deep.equal([])
      expect(ok).to.be.greaterThan(20)
      expect(serve.child.exitCode).to.equal(null)
      expect(JSON.parse(readFileSync(serve.pidFile, 'utf8')).pid).to.equal(serve.pid)
      const health = JSON.parse((await get(serve.ports.api, '/health', tls)).body) as Health
      expect(health.renewal?.certificates.map((c) => c.consecutive_failures)).to.deep.equal([0])
      expect(serve.output()).to.not.match(/renewal failed/)
      // A short-lived certificate with serve's maintainer running: cert monitor has nothing to say about renewal.
      const monitored = parseJson<{certificates: {warnings: string[]}[]}>(await runCli(['cert', 'monitor', '--json'], {env}))
      expect(monitored.certificates.flatMap((c) => c.warnings).join('\n')).to.not.match(/auto_renew/)
    })

    it('auto_renew false: serve renews nothing and /health shows no maintainer', async () => {
      const domain = 'off.mfc.example'
      const {serve, name, env} = await issueAndServe(pebble, domain, {auto_renew: false})
      const ca = await pebble.root()
      const health = JSON.parse((await get(serve.ports.api, '/health', {ca, servername: domain})).body) as Health
      expect(health.renewal).to.equal(undefined)
      // Past the renewal date (half of 20 s) with nothing renewed.
      await sleep(12_000)
      expect(await versions(name)).to.have.length(1)
      const monitored = parseJson<{certificates: {warnings: string[]}[]}>(await runCli(['cert', 'monitor', '--json'], {env}))
      expect(monitored.certificates[0].warnings.join('\n')).to.match(/lives (19|20) seconds and no `mfc serve` with auto_renew runs here/)
    })
  })

  describe('on a Pebble issuing 40-second certificates', () => {
    let pebble: Pebble
    before(async () => {
      pebble = await startPebble({validityPeriod: 40})
    })
    after(async () => pebble?.stop())

    it('serve\'s maintainer and a cron renew-if-needed at the same instant order once (counted at Pebble)', async () => {
      const domain = 'race.mfc.example'
      const {serve, env, name} = await issueAndServe(pebble, domain)
      const meta = JSON.parse(await fs.readFile(join(t.stateDir, 'certs', name, 'live', 'meta.json'), 'utf8')) as {notBefore: string; notAfter: string}
      const [notBefore, notAfter] = [Date.parse(meta.notBefore), Date.parse(meta.notAfter)]
      const renewAt = notAfter - (notAfter - notBefore) / 2
      const before = pebble.finalizedOrders()
      // The CLI needs a moment to start: launched a little early, it reaches its check as the maintainer does.
      await sleep(Math.max(0, renewAt - Date.now() - 300))
      const cron = await runCli(['cert', 'renew-if-needed', '--no-random-sleep', '--json'], {env})
      expect(cron.code, cron.stderr).to.equal(0)
      const outcome = parseJson<{outcomes: {status: string; reason: string}[]}>(cron).outcomes[0]
      await until('the maintainer to have checked after the renewal', async () => {
        const health = JSON.parse((await get(serve.ports.api, '/health', {ca: await pebble.root(), servername: domain})).body) as Health
        const cert = health.renewal?.certificates[0]
        return cert && cert.next_renewal && Date.parse(cert.next_renewal) > renewAt + 5000 ? true : undefined
      })
      expect(pebble.finalizedOrders() - before, `cron said ${outcome.status}: ${outcome.reason}`).to.equal(1)
      expect(await versions(name)).to.have.length(2)
      expect(['renewed', 'skipped', 'not-due']).to.include(outcome.status)
    })
  })

  describe('serve --daemon on a Pebble certificate (a chain this machine does not trust)', () => {
    let pebble: Pebble
    before(async () => {
      pebble = await startPebble({validityPeriod: 3600})
    })
    after(async () => pebble?.stop())

    it('starts (readiness is liveness with the loaded certificate) and status warns that the chain is not trusted', async () => {
      t = await tempEnv('maint-daemon-')
      cleanups.push(() => t.cleanup())
      // NODE_EXTRA_CA_CERTS trusts Pebble's listener (the ACME API), not the root it issues under.
      const env = {...t.env, ...pebble.env, MFC_API_TOKEN: 'maint-daemon-token-0123456789abcdef'}
      const init = await runCli(['ssl', 'init', '--agree-tos', '--domain', 'daemon.mfc.example', '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort), '--json'], {env})
      expect(init.code, init.stderr).to.equal(0)
      cleanups.push(() => runCli(['stop', '--timeout', '5'], {env}))
      const started = await runCli(['serve', '--daemon', '--api-port', '0', '--dashboard-port', '0', '--stream-port', '0', '--no-http', '--start-timeout', '20'], {env})
      expect(started.code, started.stderr).to.equal(0)
      const status = await runCli(['status', '--json'], {env})
      const report = parseJson<{status: string; trust: {trusted: boolean; error: string}; warnings: string[]; renewal: {certificates: unknown[]} | null}>(status)
      expect(report.status).to.equal('healthy')
      expect(report.trust.trusted).to.equal(false)
      expect(report.trust.error).to.match(/issuer|self.signed|verify/i)
      expect(report.warnings.join('\n')).to.match(/not trusted on this machine/)
      expect(report.renewal?.certificates).to.have.length(1)
      const human = await runCli(['status'], {env})
      expect(human.stdout).to.match(/Warning: The certificate chain is not trusted on this machine/)
      expect(human.stdout).to.match(/Renewal\s+daemon\.mfc\.example: last check/)
    })
  })

  describe('when the CA goes away', () => {
    let pebble: Pebble
    let hook: WebhookPeer
    beforeEach(async () => {
      pebble = await startPebble({validityPeriod: 30})
      hook = await startWebhook(200)
    })
    afterEach(async () => Promise.all([pebble?.stop(), hook?.close()]))
    const notifySetup = async (env: NodeJS.ProcessEnv) => {
      const setup = await runCli(['notify', 'setup', '--webhook', hook.url, '--level', 'all'], {env})
      expect(setup.code, setup.stderr).to.equal(0)
    }

    it('keeps serving the old certificate, logs and notifies the failure, backs off, and notifies the recovery', async () => {
      const domain = 'down.mfc.example'
      const {serve: served, name} = await issueAndServe(pebble, domain, {}, (env) => notifySetup(env))
      const ca = await pebble.root()
      const tls = {ca, servername: domain}
      const first = await servedSerial(served.ports.api, tls)
      await pebble.stopCa()
      const failed = await hook.waitFor((b) => JSON.stringify(b).includes('FAILED'))
      expect(JSON.stringify(failed)).to.include(domain)
      const health = await until('two failures in a row, the second retry further out', async () => {
        const body = JSON.parse((await get(served.ports.api, '/health', tls)).body) as Health
        const cert = body.renewal?.certificates[0]
        return cert && cert.consecutive_failures >= 2 ? cert : undefined
      }, 900)
      expect(health.last_result).to.equal('failed')
      expect(await servedSerial(served.ports.api, tls)).to.equal(first)
      expect(await versions(name)).to.have.length(1)
      const log = await fs.readFile(served.logFile, 'utf8')
      expect(log).to.match(/certificate renewal failed; the current certificate stays in place/)
      // Backoff: the retries logged are spaced by growing delays (their scheduled times, not a measured duration).
      const retries = log.split('\n').filter((l) => l.includes('certificate renewal failed')).map((l) => JSON.parse(l) as {retryAt: string; failures: number})
      expect(retries.length).to.be.at.least(2)

      await pebble.startCa()
      const recovered = await hook.waitFor((b) => JSON.stringify(b).includes('recovered'))
      expect(JSON.stringify(recovered)).to.include(domain)
      const root = await pebble.root()
      await until('the renewed certificate from the restarted CA', async () => (await servedSerial(served.ports.api, {ca: root, servername: domain})) !== first || undefined)
      expect(served.child.exitCode).to.equal(null)
    })

    it('SIGTERM during an order: serve stops, the order is cancelled, nothing is half-written, nothing is notified', async () => {
      const domain = 'term.mfc.example'
      // Down before the renewal date: the order is then stuck in the issuer's transport retries.
      const {serve: served, name} = await issueAndServe(pebble, domain, {}, async (env) => {
        await notifySetup(env)
        await pebble.stopCa()
      })
      const liveBefore = await fs.readFile(join(t.stateDir, 'certs', name, 'live', 'fullchain.pem'), 'utf8')
      await until('the maintainer to start renewing', async () => /Renewing certificate/.test(await fs.readFile(served.logFile, 'utf8')) || undefined, 600)
      expect(await served.stop()).to.equal(0)
      expect(await versions(name)).to.have.length(1)
      expect(await fs.readFile(join(t.stateDir, 'certs', name, 'live', 'fullchain.pem'), 'utf8')).to.equal(liveBefore)
      expect(existsSync(join(t.stateDir, '.mfc.lock'))).to.equal(false)
      expect(await fs.readdir(join(t.stateDir, 'acme-challenges')).catch(() => [])).to.deep.equal([])
      expect(hook.bodies.filter((b) => JSON.stringify(b).includes('FAILED'))).to.deep.equal([])
    })
  })
})

import {existsSync, promises as fs} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'

import {type RunResult, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type HttpsStub, sendJson, startHttpsStub} from '../helpers/https-stub.js'
import {type ListenerTls, type Pebble, mintListenerTls, startPebble} from '../helpers/pebble.js'
import {freePort} from '../helpers/ports.js'

interface InitJson {name: string; certFile: string; keyFile: string; notBefore: string; notAfter: string}
interface RenewJson {outcomes: {status: string; version: string; error?: {code: string; message: string}}[]}
interface ErrorJson {error: {code: string; message: string; exitCode: number; suggestions: string[]}}

function expectOk(result: RunResult): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).to.equal(0)
}

const VALIDITY_S = 16

describe('ACME failure handling (integration)', function () {
  this.timeout(120_000)

  describe('against a Pebble that rejects half of all nonces, with 16-second certificates', () => {
    let pebble: Pebble
    let t: TempEnv
    let env: NodeJS.ProcessEnv

    before(async () => {
      pebble = await startPebble({nonceReject: 50, validityPeriod: VALIDITY_S})
      t = await tempEnv('mfc-acme-fail-')
      env = {...t.env, ...pebble.env}
      await fs.mkdir(t.configDir, {recursive: true})
      // Only the lifetime rule decides for these short certificates (16 s < 10 days: renew at half).
      await fs.writeFile(join(t.configDir, 'ssl-config.json'), JSON.stringify({renewal_days_before: 0}))
    })

    after(async () => {
      await pebble?.stop()
      await t?.cleanup()
    })

    it('survives badNonce at 50 % through issuance and two forced renewals', async () => {
      const init = await runCli(['ssl', 'init', '--agree-tos', '--domain', 'nonce.mfc.example', '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort), '--json'], {env})
      expectOk(init)
      for (const version of ['0002', '0003']) {
        const result = await runCli(['cert', 'renew', '--force', '--json'], {env})
        expectOk(result)
        expect(parseJson<RenewJson>(result).outcomes.map((o) => o.version)).to.deep.equal([version])
      }
    })

    it('renew-if-needed leaves a short-lived certificate alone before half its lifetime and renews it after', async function () {
      const created = parseJson<InitJson>(await runCli(['ssl', 'init', '--domain', 'nonce.mfc.example', '--force', '--json'], {env}))
      const early = await runCli(['cert', 'renew-if-needed', '--no-random-sleep'], {env})
      const halfway = new Date(created.notBefore).getTime() + (VALIDITY_S * 1000 / 2)
      // Skip rather than pass vacuously if this machine was too slow to ask before the halfway mark.
      if (Date.now() >= halfway) this.skip()
      expectOk(early)
      expect(early.stdout + early.stderr).to.equal('')
      const versionBefore = await fs.readlink(join(t.stateDir, 'certs', created.name, 'live'))
      while (Date.now() < halfway + 500) await new Promise((resolve) => setTimeout(resolve, 200))
      const due = await runCli(['cert', 'renew-if-needed', '--no-random-sleep'], {env})
      expectOk(due)
      expect(due.stdout).to.match(/^Renewed nonce\.mfc\.example/)
      expect(await fs.readlink(join(t.stateDir, 'certs', created.name, 'live'))).not.to.equal(versionBefore)
    })

    it('when the CA goes down: retries with backoff, then fails clearly, runs the post-hook with FAILED_DOMAINS and leaves the certificate untouched', async () => {
      const live = join(t.stateDir, 'certs', 'nonce.mfc.example', 'live')
      const before = {link: await fs.readlink(live), cert: await fs.readFile(join(live, 'fullchain.pem'), 'utf8'), key: await fs.readFile(join(live, 'privkey.pem'), 'utf8')}
      await pebble.stopCa()
      const log = join(t.dir, 'post.log')
      const result = await runCli(['cert', 'renew', '--force', '--json', '--post-hook', `echo "[$RENEWED_DOMAINS] [$FAILED_DOMAINS]" > ${log}`], {env})
      expect(result.code).to.equal(1)
      const [outcome] = parseJson<RenewJson>(result).outcomes
      expect(outcome.status).to.equal('failed')
      expect(outcome.error!.code).to.equal('MFC_ISSUER_UNREACHABLE')
      expect(outcome.error!.message).to.include(`The CA at ${pebble.directory} could not be reached`).and.include('after 4 attempts').and.include('ECONNREFUSED')
      expect(await fs.readFile(log, 'utf8')).to.equal('[] [nonce.mfc.example]\n')
      expect({link: await fs.readlink(live), cert: await fs.readFile(join(live, 'fullchain.pem'), 'utf8'), key: await fs.readFile(join(live, 'privkey.pem'), 'utf8')}).to.deep.equal(before)

      const cron = await runCli(['cert', 'renew-if-needed', '--no-random-sleep', '--dry-run'], {env})
      expect(cron.code).to.equal(1)
      expect(cron.stderr.trim().split('\n')).to.have.length(1)
      expect(cron.stderr).to.match(/^mfc: 1 of 1 certificate renewal\(s\) failed\. nonce\.mfc\.example: The CA .* could not be reached/)
    })
  })

  describe('against a CA that is not there or rate-limits', () => {
    let tls: ListenerTls
    let t: TempEnv
    let env: NodeJS.ProcessEnv
    let stub: HttpsStub | undefined

    before(async () => {
      tls = await mintListenerTls()
    })

    after(async () => {
      await fs.rm(tls.dir, {force: true, recursive: true})
    })

    beforeEach(async () => {
      t = await tempEnv('mfc-acme-429-')
      env = {...t.env, NODE_EXTRA_CA_CERTS: tls.caFile}
    })

    afterEach(async () => {
      await stub?.close()
      stub = undefined
      await t.cleanup()
    })

    it('ssl init against a closed port fails with the directory URL and a next step', async () => {
      const port = await freePort()
      const result = await runCli(['ssl', 'init', '--agree-tos', '--domain', 'down.mfc.example', '--acme-directory', `https://127.0.0.1:${port}/dir`, '--http-port', String(await freePort()), '--json'], {env})
      expect(result.code).to.equal(5)
      const {error} = parseJson<ErrorJson>(result)
      expect(error.code).to.equal('MFC_ISSUER_UNREACHABLE')
      expect(error.message).to.include(`https://127.0.0.1:${port}/dir could not be reached`)
      expect(error.suggestions.join(' ')).to.include('curl -sS')
      expect(existsSync(join(t.stateDir, 'certs'))).to.equal(false)
    })

    /** A directory (with nonces) whose every other ACME request gets `status` and the problem `problem`. */
    function failingCa(status: number, problem: {type: string; detail: string}, extraHeaders: Record<string, string> = {}): Promise<HttpsStub> {
      let nonce = 0
      return startHttpsStub(tls, (req, res, base) => {
        const headers = {'Replay-Nonce': `nonce-${++nonce}`, 'Cache-Control': 'no-store'}
        if (req.url === '/dir') return sendJson(res, 200, {newNonce: `${base}/nonce`, newAccount: `${base}/acct`, newOrder: `${base}/order`, revokeCert: `${base}/revoke`, keyChange: `${base}/key`})
        if (req.url === '/nonce') {
          res.writeHead(200, headers)
          res.end()
          return
        }

        sendJson(res, status, {...problem, status}, {...headers, ...extraHeaders})
      })
    }

    /** A directory whose newAccount always answers 429 rateLimited with the given Retry-After. */
    function rateLimitingCa(retryAfter: string): Promise<HttpsStub> {
      return failingCa(429, {type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many new registrations (10) from this IP address in the last 3h0m0s'}, {'Retry-After': retryAfter})
    }

    it('a CA answering 5xx is retried with backoff, then fails clearly and writes nothing', async () => {
      stub = await failingCa(503, {type: 'urn:ietf:params:acme:error:serverInternal', detail: 'the CA is having a bad day'})
      const result = await runCli(['ssl', 'init', '--agree-tos', '--domain', 'flaky.mfc.example', '--acme-directory', `${stub.url}/dir`, '--http-port', String(await freePort()), '--json'], {env})
      expect(result.code).to.equal(5)
      const {error} = parseJson<ErrorJson>(result)
      expect(error.code).to.be.oneOf(['MFC_ISSUER_FAILED', 'MFC_ISSUER_UNREACHABLE'])
      expect(error.message).to.include(stub.url)
      const posts = stub.requests.filter((r) => r.path === '/acct')
      expect(posts.length).to.be.greaterThan(1) // retried, not failed on the first 503
      for (let i = 1; i < posts.length; i++) expect(posts[i].at - posts[i - 1].at).to.be.at.least(250) // with backoff
      expect(existsSync(join(t.stateDir, 'certs'))).to.equal(false)
    })

    it('a long Retry-After on 429 rateLimited is not slept through: it says when to try again', async () => {
      stub = await rateLimitingCa('3600')
      const started = Date.now()
      const result = await runCli(['ssl', 'init', '--agree-tos', '--domain', 'limited.mfc.example', '--acme-directory', `${stub.url}/dir`, '--http-port', String(await freePort()), '--json'], {env})
      expect(result.code).to.equal(5)
      const {error} = parseJson<ErrorJson>(result)
      expect(error.code).to.equal('MFC_ISSUER_RATE_LIMITED')
      expect(error.message).to.include('too many new registrations')
      const when = new Date(error.message.match(/Try again after (\S+?)\.$/)![1]).getTime()
      expect(when).to.be.within(started + 3_590_000, Date.now() + 3_600_000)
      expect(stub.requests.filter((r) => r.path === '/acct')).to.have.length(1)
    })

    it('a short Retry-After is honoured between retries before giving up', async () => {
      stub = await rateLimitingCa('1')
      const result = await runCli(['ssl', 'init', '--agree-tos', '--domain', 'limited.mfc.example', '--acme-directory', `${stub.url}/dir`, '--http-port', String(await freePort()), '--json'], {env})
      expect(result.code).to.equal(5)
      expect(parseJson<ErrorJson>(result).error.code).to.equal('MFC_ISSUER_RATE_LIMITED')
      const posts = stub.requests.filter((r) => r.path === '/acct')
      expect(posts).to.have.length(4)
      for (let i = 1; i < posts.length; i++) expect(posts[i].at - posts[i - 1].at).to.be.at.least(1000)
    })
  })
})

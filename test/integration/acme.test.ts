import {execFile} from 'node:child_process'
import {existsSync, promises as fs} from 'node:fs'
import {createServer, type Server} from 'node:http'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {expect} from 'chai'

import {type RunResult, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type HttpsStub, sendJson, startHttpsStub} from '../helpers/https-stub.js'
import {type Pebble, httpsGet, startPebble} from '../helpers/pebble.js'
import {servedSerial, startServeProcess} from '../helpers/serve-process.js'

const run = promisify(execFile)

interface InitJson {name: string; issuer: string; version: string; certFile: string; keyFile: string; chainFile: string; acmeDirectory: string}
interface RenewJson {outcomes: {name: string; status: string; version: string; reason: string; error?: {code: string; message: string}}[]; hooks: {kind: string; ok: boolean}[]; reloadedPid: number | null}

/** Verifies the installed chain against Pebble's root with openssl (leaf + intermediates). */
async function opensslVerify(pebble: Pebble, dir: string, live: {certFile: string; chainFile: string}): Promise<string> {
  const rootFile = join(dir, 'pebble-root.pem')
  await fs.writeFile(rootFile, await pebble.root())
  const leafFile = join(dir, 'leaf.pem')
  const [leaf] = (await fs.readFile(live.certFile, 'utf8')).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!
  await fs.writeFile(leafFile, leaf)
  const {stdout} = await run('openssl', ['verify', '-CAfile', rootFile, '-untrusted', live.chainFile, leafFile])
  return stdout
}

function expectOk(result: RunResult): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).to.equal(0)
}

/** A plain HTTP server on `port` serving files from `root` (a web server in front of --webroot, or serve's stand-in). */
async function fileServer(port: number, root: (path: string) => string | undefined): Promise<Server> {
  const server = createServer((req, res) => {
    const file = root(req.url ?? '/')
    void (file ? fs.readFile(file, 'utf8').catch(() => undefined) : Promise.resolve(undefined)).then((body) => {
      res.writeHead(body === undefined ? 404 : 200, {Connection: 'close'})
      res.end(body ?? 'not found')
    })
  })
  await new Promise<void>((resolve) => {
    server.listen(port, () => resolve())
  })
  return server
}

function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve()
  server.closeAllConnections()
  return new Promise((resolve) => {
    server.close(() => resolve())
  })
}

describe('ACME issuance and renewal against Pebble (integration)', function () {
  this.timeout(120_000)
  let pebble: Pebble
  let t: TempEnv
  let env: NodeJS.ProcessEnv
  const cleanups: (() => Promise<unknown>)[] = []

  const init = (domains: string[], extra: string[] = [], e = env) =>
    runCli(['ssl', 'init', '--agree-tos', ...domains.flatMap((d) => ['--domain', d]), '--email', 'admin@mfc.example', '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort), '--json', ...extra], {env: e})

  before(async () => {
    pebble = await startPebble({validityPeriod: 7_776_000})
  })

  after(async () => {
    await pebble?.stop()
  })

  beforeEach(async () => {
    t = await tempEnv('mfc-acme-')
    env = {...t.env, ...pebble.env}
  })

  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!()
    await t.cleanup()
  })

  it('issues one certificate for several names with ssl init and installs a chain that openssl verifies against Pebble\'s root', async () => {
    const result = await init(['test1.mfc.example', 'www.test1.mfc.example'])
    expectOk(result)
    const out = parseJson<InitJson>(result)
    expect(out.issuer).to.equal('acme')
    expect(out.acmeDirectory).to.equal(pebble.directory)
    expect(await opensslVerify(pebble, t.dir, out)).to.match(/leaf.pem: OK/)
    const {stdout: text} = await run('openssl', ['x509', '-in', out.certFile, '-noout', '-ext', 'subjectAltName'])
    expect(text).to.include('DNS:test1.mfc.example').and.include('DNS:www.test1.mfc.example')
    const config = JSON.parse(await fs.readFile(join(t.configDir, 'ssl-config.json'), 'utf8'))
    expect(config).to.include({use_letsencrypt: true, acme_directory: pebble.directory, http_port: pebble.httpPort, cert_file: out.certFile, key_file: out.keyFile})
    expect((await fs.stat(out.keyFile)).mode & 0o777).to.equal(0o600)
  })

  it('keeps the account key 0600 in one directory per CA and reuses the account on the next order', async () => {
    expectOk(await init(['reuse.mfc.example']))
    const [accountDir] = await fs.readdir(join(t.stateDir, 'acme'))
    const keyFile = join(t.stateDir, 'acme', accountDir, 'account-key.pem')
    expect((await fs.stat(keyFile)).mode & 0o777).to.equal(0o600)
    const before = {key: await fs.readFile(keyFile, 'utf8'), record: await fs.readFile(join(t.stateDir, 'acme', accountDir, 'account.json'), 'utf8')}
    const second = await runCli(['ssl', 'init', '--domain', 'reuse.mfc.example', '--force'], {env: {...env}})
    expectOk(second)
    expect(second.stdout).not.to.include('Registering an ACME account')
    expect(await fs.readdir(join(t.stateDir, 'acme'))).to.deep.equal([accountDir])
    expect(await fs.readFile(keyFile, 'utf8')).to.equal(before.key)
    expect(await fs.readFile(join(t.stateDir, 'acme', accountDir, 'account.json'), 'utf8')).to.equal(before.record)
  })

  it('a new --email updates the existing account\'s contact at the CA (no second account)', async () => {
    expectOk(await init(['contact.mfc.example']))
    const [accountDir] = await fs.readdir(join(t.stateDir, 'acme'))
    const recordFile = join(t.stateDir, 'acme', accountDir, 'account.json')
    const before = JSON.parse(await fs.readFile(recordFile, 'utf8')) as {url: string; email: string}
    expect(before.email).to.equal('admin@mfc.example')

    const second = await runCli(['ssl', 'init', '--domain', 'contact.mfc.example', '--email', 'ops@mfc.example', '--force'], {env})
    expectOk(second)
    expect(second.stdout).to.include("Updating the account's contact to ops@mfc.example").and.not.include('Registering an ACME account')
    const after = JSON.parse(await fs.readFile(recordFile, 'utf8')) as {url: string; email: string}
    expect(after).to.include({url: before.url, email: 'ops@mfc.example'})
    // What the CA itself now has for this account key.
    const script = `const acme = require('acme-client'); const fs = require('node:fs');
      new acme.Client({directoryUrl: process.argv[1], accountKey: fs.readFileSync(process.argv[2])})
        .createAccount({onlyReturnExisting: true}).then((a) => console.log(JSON.stringify(a.contact)))`
    const {stdout} = await run(process.execPath, ['-e', script, pebble.directory, join(t.stateDir, 'acme', accountDir, 'account-key.pem')], {env: {...process.env, ...pebble.env}})
    expect(JSON.parse(stdout)).to.deep.equal(['mailto:ops@mfc.example'])
  })

  it('answers HTTP-01 through --webroot files served by an existing web server', async () => {
    const webroot = join(t.dir, 'www')
    await fs.mkdir(webroot)
    const seen: string[] = []
    const server = await fileServer(pebble.httpPort, (path) => {
      seen.push(path)
      return join(webroot, path)
    })
    cleanups.push(() => closeServer(server))
    const result = await init(['webroot.mfc.example'], ['--webroot', webroot])
    expectOk(result)
    expect(seen.some((p) => p.startsWith('/.well-known/acme-challenge/'))).to.equal(true)
    expect(await fs.readdir(join(webroot, '.well-known', 'acme-challenge')).catch(() => [])).to.deep.equal([])
    expect(JSON.parse(await fs.readFile(join(t.configDir, 'ssl-config.json'), 'utf8')).webroot).to.equal(webroot)
  })

  it('lets a running mfc serve answer from the shared challenge directory on its HTTP port instead of binding the port', async () => {
    const serve = await startServeProcess(env, {httpPort: pebble.httpPort})
    cleanups.push(() => serve.stop())
    const result = await init(['served.mfc.example'])
    expectOk(result)
    expect(await fs.readdir(join(t.stateDir, 'acme-challenges'))).to.deep.equal([])
  })

  it('binds its own listener when the running serve does not hold the HTTP port (--no-http)', async () => {
    const serve = await startServeProcess(env)
    cleanups.push(() => serve.stop())
    expect(serve.ports.http).to.equal(null)
    expectOk(await init(['unserved.mfc.example']))
  })

  it('names the port and the three ways out when the HTTP port is taken', async () => {
    const blocker = await fileServer(pebble.httpPort, () => undefined)
    cleanups.push(() => closeServer(blocker))
    const result = await runCli(['ssl', 'init', '--agree-tos', '--domain', 'busy.mfc.example', '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort)], {env})
    expect(result.code).to.equal(6)
    expect(result.stderr).to.include(`Port ${pebble.httpPort} is already in use`)
    expect(result.stderr).to.include('--webroot DIR').and.include('mfc serve').and.include('Stop the program')
  })

  it('reports the CA\'s problem detail and the URL it tried when validation fails', async () => {
    const webroot = join(t.dir, 'nobody-serves-this')
    await fs.mkdir(webroot)
    const result = await init(['fail.mfc.example'], ['--webroot', webroot])
    expect(result.code).to.equal(5)
    const {error} = parseJson<{error: {code: string; message: string}}>(result)
    expect(error.code).to.equal('MFC_CHALLENGE_FAILED')
    expect(error.message).to.include('could not validate fail.mfc.example')
    expect(error.message).to.match(/connection refused/)
    expect(error.message).to.match(new RegExp(`It fetched http://fail\\.mfc\\.example:${pebble.httpPort}/\\.well-known/acme-challenge/[A-Za-z0-9_-]+`))
    expect(existsSync(join(t.stateDir, 'certs', 'fail.mfc.example'))).to.equal(false)
  })

  it('renews with --force through the store, runs pre/deploy/post hooks with certbot\'s variables, and the running serve reloads', async () => {
    const first = parseJson<InitJson>(await init(['hooks.mfc.example', 'www.hooks.mfc.example']))
    const log = join(t.dir, 'hooks.log')
    // serve holds the HTTP port: it answers the renewal's challenge and must pick up the new certificate.
    const serve = await startServeProcess(env, {httpPort: pebble.httpPort})
    cleanups.push(() => serve.stop())
    const root = await pebble.root()
    const serial = () => servedSerial(serve.ports.api, {ca: root, servername: 'hooks.mfc.example'})
    const before = await serial()
    const result = await runCli(['cert', 'renew', '--force', '--json',
      '--pre-hook', `echo "pre" >> ${log}`,
      '--deploy-hook', `echo "deploy $RENEWED_LINEAGE|$RENEWED_DOMAINS" >> ${log}`,
      '--post-hook', `echo "post $RENEWED_DOMAINS|$FAILED_DOMAINS" >> ${log}; exit 3`], {env})
    expectOk(result)
    const report = parseJson<RenewJson>(result)
    expect(report.outcomes.map((o) => [o.name, o.status, o.version])).to.deep.equal([['hooks.mfc.example', 'renewed', '0002']])
    expect(report.reloadedPid).to.equal(serve.pid)
    expect((await fs.readFile(log, 'utf8')).trim().split('\n')).to.deep.equal([
      'pre',
      `deploy ${join(t.stateDir, 'certs', 'hooks.mfc.example', 'live')}|hooks.mfc.example www.hooks.mfc.example`,
      'post hooks.mfc.example www.hooks.mfc.example|',
    ])
    expect(report.hooks.map((h) => [h.kind, h.ok])).to.deep.equal([['pre', true], ['deploy', true], ['post', false]])
    while (await serial() === before) await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await fs.readFile(join(serve.logFile), 'utf8')).to.match(/"reason":"(SIGHUP|file change)".*"msg":"Certificate reloaded"/)
    expect(await fs.readFile(first.certFile, 'utf8')).not.to.equal('')
    expect(await opensslVerify(pebble, t.dir, {certFile: first.certFile, chainFile: join(t.stateDir, 'certs', 'hooks.mfc.example', 'live', 'chain.pem')})).to.match(/OK/)
  })

  it('renew-if-needed is silent with exit 0 on a fresh 90-day certificate and renews once renewal_days_before puts it in the window', async () => {
    const first = parseJson<InitJson>(await init(['window.mfc.example']))
    const quiet = await runCli(['cert', 'renew-if-needed', '--no-random-sleep', '--pre-hook', `touch ${join(t.dir, 'pre-ran')}`], {env})
    expectOk(quiet)
    expect(quiet.stdout + quiet.stderr).to.equal('')
    expect(existsSync(join(t.dir, 'pre-ran'))).to.equal(false)
    const configFile = join(t.configDir, 'ssl-config.json')
    const config = JSON.parse(await fs.readFile(configFile, 'utf8'))
    await fs.writeFile(configFile, JSON.stringify({...config, renewal_days_before: 90}))
    const due = await runCli(['cert', 'renew-if-needed', '--no-random-sleep'], {env})
    expectOk(due)
    expect(due.stdout).to.match(/^Renewed window\.mfc\.example \(window\.mfc\.example\): version 0002, valid until /)
    expect(await fs.readlink(join(t.stateDir, 'certs', first.name, 'live'))).to.equal('versions/0002')
  })

  it('--dry-run orders from the CA but writes nothing', async () => {
    const first = parseJson<InitJson>(await init(['dry.mfc.example']))
    const snapshot = async () => ({
      config: await fs.readFile(join(t.configDir, 'ssl-config.json'), 'utf8'),
      versions: await fs.readdir(join(t.stateDir, 'certs', first.name, 'versions')),
      cert: await fs.readFile(first.certFile, 'utf8'),
      acme: await fs.readdir(join(t.stateDir, 'acme')),
    })
    const before = await snapshot()
    const result = await runCli(['cert', 'renew', '--dry-run', '--json', '--deploy-hook', `touch ${join(t.dir, 'deployed')}`], {env})
    expectOk(result)
    expect(parseJson<RenewJson>(result).outcomes.map((o) => o.status)).to.deep.equal(['dry-run-ok'])
    expect(await snapshot()).to.deep.equal(before)
    expect(existsSync(join(t.dir, 'deployed'))).to.equal(false)
  })

  it('fails the second of two concurrent renewals fast on the lock (exit 7)', async () => {
    parseJson<InitJson>(await init(['lock.mfc.example']))
    const started = join(t.dir, 'started')
    const first = runCli(['cert', 'renew', '--force', '--pre-hook', `touch ${started}; sleep 3`], {env})
    for (let i = 0; i < 100 && !existsSync(started); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    expect(existsSync(started), 'the first renewal never reached its pre-hook').to.equal(true)
    const second = await runCli(['cert', 'renew', '--force'], {env})
    expect(second.code).to.equal(7)
    expect(second.stderr).to.match(/Another mfc process \(pid \d+, "cert renew"/)
    expectOk(await first)
  })

  it('renews a local-CA certificate through the same path', async () => {
    const created = parseJson<InitJson>(await runCli(['ssl', 'init', '--domain', 'localhost', '--json'], {env}))
    expect(created.issuer).to.equal('local-ca')
    const notDue = parseJson<RenewJson>(await runCli(['cert', 'renew', '--json'], {env}))
    expect(notDue.outcomes.map((o) => o.status)).to.deep.equal(['not-due'])
    const result = await runCli(['cert', 'renew', '--force', '--cert-name', 'localhost', '--json'], {env})
    expectOk(result)
    expect(parseJson<RenewJson>(result).outcomes.map((o) => [o.status, o.version])).to.deep.equal([['renewed', '0002']])
    const {stdout} = await run('openssl', ['verify', '-CAfile', join(t.stateDir, 'ca', 'ca.crt'), join(t.stateDir, 'certs', 'localhost', 'live', 'cert.pem')])
    expect(stdout).to.match(/OK/)
  })

  describe('ACME Renewal Information (RFC 9773) from a directory that offers renewalInfo', () => {
    let stub: HttpsStub
    let window: 'past' | 'future' | 'error' = 'future'
    const certIds: string[] = []

    before(async () => {
      // Pebble 2.4 has no ARI: the stub serves Pebble's directory plus renewalInfo, so the order
      // itself still goes to Pebble and only the ARI fetch reaches the stub.
      stub = await startHttpsStub(pebble.tls, async (req, res, base) => {
        if (req.url === '/dir') {
          const directory = JSON.parse((await httpsGet(pebble.directory, pebble.tls.ca)).body)
          return sendJson(res, 200, {...directory, renewalInfo: `${base}/renewal-info`})
        }

        certIds.push(decodeURIComponent((req.url ?? '').replace('/renewal-info/', '')))
        if (window === 'error') return sendJson(res, 500, {type: 'urn:ietf:params:acme:error:serverInternal', detail: 'ARI is down'})
        const day = 86_400_000
        const start = Date.now() + (window === 'past' ? -2 * day : 40 * day)
        sendJson(res, 200, {suggestedWindow: {start: new Date(start).toISOString(), end: new Date(start + day).toISOString()}}, {'Retry-After': '21600'})
      })
    })

    after(async () => {
      await stub?.close()
    })

    const initViaStub = (name: string) => runCli(['ssl', 'init', '--agree-tos', '--domain', name, '--acme-directory', `${stub.url}/dir`, '--http-port', String(pebble.httpPort), '--json'], {env})

    it('asks for the window with the RFC 9773 CertID (AKI keyIdentifier "." serial) and stays quiet while it is in the future', async () => {
      const first = parseJson<InitJson>(await initViaStub('ari.mfc.example'))
      window = 'future'
      certIds.length = 0
      const result = await runCli(['cert', 'renew-if-needed', '--no-random-sleep'], {env})
      expectOk(result)
      expect(result.stdout).to.equal('')
      const {stdout: text} = await run('openssl', ['x509', '-in', first.certFile, '-noout', '-serial', '-ext', 'authorityKeyIdentifier'])
      const serialHex = text.match(/serial=([0-9A-F]+)/)![1]
      const serial = Buffer.from((serialHex.length % 2 ? '0' : '') + serialHex, 'hex')
      const serialDer = serial[0] & 0x80 ? Buffer.concat([Buffer.from([0]), serial]) : serial
      const aki = Buffer.from(text.match(/Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/)![1].replaceAll(':', ''), 'hex')
      expect(certIds).to.deep.equal([`${aki.toString('base64url')}.${serialDer.toString('base64url')}`])
    })

    it('renews a fresh certificate early when the CA\'s window has opened', async () => {
      const first = parseJson<InitJson>(await initViaStub('ari-early.mfc.example'))
      window = 'past'
      const result = await runCli(['cert', 'renew', '--json'], {env})
      expectOk(result)
      const [outcome] = parseJson<RenewJson>(result).outcomes
      expect(outcome).to.include({status: 'renewed', version: '0002'})
      expect(outcome.reason).to.include('renewal information (ARI)')
      expect(await fs.readlink(join(t.stateDir, 'certs', first.name, 'live'))).to.equal('versions/0002')
    })

    it('never lets an ARI failure block a renewal that is due by the policy', async () => {
      parseJson<InitJson>(await initViaStub('ari-down.mfc.example'))
      window = 'error'
      expectOk(await runCli(['cert', 'renew-if-needed', '--no-random-sleep'], {env}))
      const configFile = join(t.configDir, 'ssl-config.json')
      await fs.writeFile(configFile, JSON.stringify({...JSON.parse(await fs.readFile(configFile, 'utf8')), renewal_days_before: 90}))
      const result = await runCli(['cert', 'renew', '--json'], {env})
      expectOk(result)
      const [outcome] = parseJson<RenewJson & {outcomes: {ari: {error: string}}[]}>(result).outcomes
      expect(outcome.status).to.equal('renewed')
      expect(outcome.ari.error).to.include('HTTP 500')
    })
  })
})

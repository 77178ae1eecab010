import {execFile} from 'node:child_process'
import {X509Certificate, createHash, createPrivateKey, createPublicKey} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {createServer, type Server} from 'node:http'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {expect} from 'chai'

import {type RunResult, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type Pebble, startPebble} from '../helpers/pebble.js'
import {servedSerial, startServeProcess} from '../helpers/serve-process.js'

const run = promisify(execFile)

interface Report {
  lineages: {name: string; domains: string[]; status: string; versionsImported: number; versionsTotal: number}[]
  accounts: {server: string; url: string; status: string}[]
  configured: string | null
  configFile: string | null
}

function expectOk(result: RunResult): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).to.equal(0)
}

const serialOf = async (file: string) => new X509Certificate(await fs.readFile(file)).serialNumber
const thumbprint = (key: ReturnType<typeof createPrivateKey>) => {
  const jwk = createPublicKey(key).export({format: 'jwk'})
  return createHash('sha256').update(JSON.stringify({e: jwk.e, kty: jwk.kty, n: jwk.n})).digest('base64url')
}

/** A plain HTTP server on `port` serving `root` (the web server in front of certbot's and mfc's --webroot). */
async function webrootServer(port: number, root: string): Promise<Server> {
  const server = createServer((req, res) => {
    fs.readFile(join(root, (req.url ?? '/').split('?')[0])).then((body) => {
      res.writeHead(200, {Connection: 'close'})
      res.end(body)
    }, () => {
      res.writeHead(404, {Connection: 'close'})
      res.end('not found')
    })
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()))
  return server
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

/**
 * Real certbot 2.x on Pebble makes the lineages (standalone with two renewals, webroot with an
 * RSA key and a deploy hook); mfc adopts them, renews them on certbot's account and serves them.
 */
describe('cert import --from-certbot: lineages made by real certbot on Pebble (integration)', function () {
  this.timeout(300_000)
  let pebble: Pebble
  let t: TempEnv
  let env: NodeJS.ProcessEnv
  let certbotDir: string
  let webroot: string

  const certbot = (args: string[]) => run('certbot', [
    '--config-dir', certbotDir, '--work-dir', join(t.dir, 'cb-work'), '--logs-dir', join(t.dir, 'cb-logs'),
    '--server', pebble.directory, '--non-interactive', '--agree-tos', '-m', 'certbot@mfc.example', ...args,
  ], {env: {PATH: process.env.PATH, HOME: t.dir, REQUESTS_CA_BUNDLE: pebble.tls.caFile}})
  const mfcImport = (extra: string[] = []) => runCli(['cert', 'import', '--from-certbot', certbotDir, '--json', ...extra], {env})
  const storeDir = () => join(t.stateDir, 'certs')

  before(async () => {
    // certbot retries a badNonce only once: no deliberate nonce rejections for its sake.
    pebble = await startPebble({validityPeriod: 7_776_000, nonceReject: 0})
    t = await tempEnv('mfc-certbot-')
    env = {...t.env, ...pebble.env}
    certbotDir = join(t.dir, 'letsencrypt')
    webroot = join(t.dir, 'www')
    await fs.mkdir(webroot)
    const port = String(pebble.httpPort)
    await certbot(['certonly', '--standalone', '--http-01-port', port, '-d', 'sa.mfc.example'])
    for (let i = 0; i < 2; i++) await certbot(['renew', '--cert-name', 'sa.mfc.example', '--force-renewal', '--no-random-sleep-on-renew'])
    const server = await webrootServer(pebble.httpPort, webroot)
    try {
      await certbot(['certonly', '--webroot', '-w', webroot, '-d', 'wr.mfc.example', '-d', 'www.wr.mfc.example', '--key-type', 'rsa', '--deploy-hook', 'true'])
    } finally {
      await closeServer(server)
    }

    // The guide's production ssl-config.json: pointing straight into certbot's live directory.
    await fs.mkdir(t.configDir, {recursive: true})
    await fs.writeFile(join(t.configDir, 'ssl-config.json'), JSON.stringify({
      cert_file: join(certbotDir, 'live', 'sa.mfc.example', 'fullchain.pem'), key_file: join(certbotDir, 'live', 'sa.mfc.example', 'privkey.pem'),
      ca_file: null, use_letsencrypt: true, domain: 'sa.mfc.example', email: '', staging: false, renewal_days_before: 30,
    }, null, 2))
  })

  after(async () => {
    await pebble?.stop()
    await t?.cleanup()
  })

  it('before adoption, renew never reports success for the due certificate it does not manage', async () => {
    const config = join(t.configDir, 'ssl-config.json')
    const original = await fs.readFile(config, 'utf8')
    // 100 days before expiry: certbot's 90-day certificate is due now.
    await fs.writeFile(config, JSON.stringify({...JSON.parse(original), renewal_days_before: 100}))
    try {
      const due = await runCli(['cert', 'renew-if-needed', '--no-random-sleep'], {env})
      expect(due.code, due.stderr).to.equal(1)
      expect(due.stderr).to.contain(join(certbotDir, 'live', 'sa.mfc.example', 'fullchain.pem')).and.contain(`mfc cert import --from-certbot ${certbotDir}`)
      const json = parseJson<{outcomes: {status: string; error: {code: string}}[]}>(await runCli(['cert', 'renew', '--json'], {env}))
      expect(json.outcomes.map((o) => [o.status, o.error?.code])).to.deep.equal([['failed', 'MFC_CERT_UNMANAGED']])
    } finally {
      await fs.writeFile(config, original)
    }

    // Not due: said so, exit 0.
    const quiet = await runCli(['cert', 'renew', '--json'], {env})
    expectOk(quiet)
    expect(parseJson<{outcomes: {status: string; reason: string}[]}>(quiet).outcomes[0]).to.include({status: 'skipped'})
  })

  it('--dry-run shows what would be adopted and writes nothing', async () => {
    const config = await fs.readFile(join(t.configDir, 'ssl-config.json'), 'utf8')
    const result = await mfcImport(['--dry-run'])
    expectOk(result)
    const report = parseJson<Report>(result)
    expect(report.lineages.map((l) => [l.name, l.status, l.versionsImported])).to.deep.equal([['sa.mfc.example', 'would-adopt', 3], ['wr.mfc.example', 'would-adopt', 1]])
    expect(report.accounts.map((a) => a.status)).to.deep.equal(['would-adopt'])
    expect(report.configured).to.equal('sa.mfc.example')
    expect(await fs.readdir(storeDir()).catch(() => [])).to.deep.equal([])
    expect(await fs.readFile(join(t.configDir, 'ssl-config.json'), 'utf8')).to.equal(config)
  })

  it('adopts every archive version, the account and the settings; the config points at mfc\'s live files', async () => {
    const result = await mfcImport()
    expectOk(result)
    const report = parseJson<Report>(result)
    expect(report.lineages.map((l) => [l.name, l.status, l.versionsImported, l.versionsTotal])).to.deep.equal([['sa.mfc.example', 'adopted', 3, 3], ['wr.mfc.example', 'adopted', 1, 1]])
    expect(report.lineages[1].domains).to.deep.equal(['wr.mfc.example', 'www.wr.mfc.example'])
    const [accountId] = await fs.readdir(join(certbotDir, 'accounts', new URL(pebble.directory).host, 'dir'))
    const regr = JSON.parse(await fs.readFile(join(certbotDir, 'accounts', new URL(pebble.directory).host, 'dir', accountId, 'regr.json'), 'utf8')) as {uri: string}
    expect(report.accounts).to.deep.equal([{server: pebble.directory, url: regr.uri, email: 'certbot@mfc.example', status: 'adopted', reason: `adopted certbot's account ${accountId}`}])

    // Versions in archive order, certbot's live one live; keys 0600.
    const sa = join(storeDir(), 'sa.mfc.example')
    expect(await fs.readdir(join(sa, 'versions'))).to.deep.equal(['0001', '0002', '0003'])
    for (const [i, v] of ['0001', '0002', '0003'].entries()) {
      expect(await serialOf(join(sa, 'versions', v, 'cert.pem'))).to.equal(await serialOf(join(certbotDir, 'archive', 'sa.mfc.example', `cert${i + 1}.pem`)))
      expect((await fs.stat(join(sa, 'versions', v, 'privkey.pem'))).mode & 0o777).to.equal(0o600)
    }

    expect(await serialOf(join(sa, 'live', 'cert.pem'))).to.equal(await serialOf(join(certbotDir, 'live', 'sa.mfc.example', 'cert.pem')))
    const config = JSON.parse(await fs.readFile(join(t.configDir, 'ssl-config.json'), 'utf8'))
    expect(config).to.include({cert_file: join(sa, 'live', 'fullchain.pem'), key_file: join(sa, 'live', 'privkey.pem'), acme_directory: pebble.directory, http_port: pebble.httpPort, key_type: 'ecdsa', email: 'certbot@mfc.example'})
    // The webroot lineage keeps its own webroot beside it.
    expect(JSON.parse(await fs.readFile(join(storeDir(), 'wr.mfc.example', 'renewal.json'), 'utf8'))).to.include({webroot})
    const list = parseJson<{certificates: {name: string; keyType: string}[]}>(await runCli(['cert', 'list', '--json'], {env}))
    expect(list.certificates.map((c) => [c.name, c.keyType])).to.deep.equal([['sa.mfc.example', 'ECDSA P-256'], ['wr.mfc.example', 'RSA 2048']])
    // certbot's directory is only read.
    expect((await fs.readdir(join(certbotDir, 'renewal'))).sort()).to.deep.equal(['sa.mfc.example.conf', 'wr.mfc.example.conf'])
    const text = await runCli(['cert', 'import', '--from-certbot', certbotDir], {env})
    expect(text.stdout).to.contain(`mv ${join(certbotDir, 'renewal', 'sa.mfc.example.conf')} `).and.contain('certbot.timer')
  })

  it('re-running the import is a no-op', async () => {
    const configBefore = await fs.readFile(join(t.configDir, 'ssl-config.json'), 'utf8')
    const report = parseJson<Report>(await mfcImport())
    expect(report.lineages.map((l) => [l.name, l.status, l.versionsImported])).to.deep.equal([['sa.mfc.example', 'unchanged', 0], ['wr.mfc.example', 'unchanged', 0]])
    expect(report.accounts.map((a) => a.status)).to.deep.equal(['unchanged'])
    expect(report.configFile).to.equal(null)
    expect(await fs.readFile(join(t.configDir, 'ssl-config.json'), 'utf8')).to.equal(configBefore)
    expect(await fs.readdir(join(storeDir(), 'sa.mfc.example', 'versions'))).to.have.length(3)
  })

  it('mfc serve serves the adopted certificate', async () => {
    const serve = await startServeProcess(env)
    try {
      const served = await servedSerial(serve.ports.api, {ca: await pebble.root(), servername: 'sa.mfc.example'})
      expect(served).to.equal(await serialOf(join(certbotDir, 'live', 'sa.mfc.example', 'cert.pem')))
    } finally {
      await serve.stop()
    }
  })

  it('mfc renews both lineages on certbot\'s account (standalone port and webroot as certbot had them)', async () => {
    const [accountDir] = await fs.readdir(join(t.stateDir, 'acme'))
    const recordBefore = await fs.readFile(join(t.stateDir, 'acme', accountDir, 'account.json'), 'utf8')
    const standalone = await runCli(['cert', 'renew', '--cert-name', 'sa.mfc.example', '--force', '--json'], {env})
    expectOk(standalone)
    expect(parseJson<{outcomes: {name: string; status: string; version: string}[]}>(standalone).outcomes.map((o) => [o.name, o.status, o.version])).to.deep.equal([['sa.mfc.example', 'renewed', '0004']])
    const server = await webrootServer(pebble.httpPort, webroot)
    try {
      const wr = await runCli(['cert', 'renew', '--cert-name', 'wr.mfc.example', '--force', '--json'], {env})
      expectOk(wr)
      expect(parseJson<{outcomes: {status: string}[]}>(wr).outcomes[0].status).to.equal('renewed')
    } finally {
      await closeServer(server)
    }

    // Still certbot's account: no new registration, the same URL and certbot's key.
    expect(await fs.readdir(join(t.stateDir, 'acme'))).to.deep.equal([accountDir])
    expect(await fs.readFile(join(t.stateDir, 'acme', accountDir, 'account.json'), 'utf8')).to.equal(recordBefore)
    const [id] = await fs.readdir(join(certbotDir, 'accounts', new URL(pebble.directory).host, 'dir'))
    const certbotKey = createPrivateKey({key: JSON.parse(await fs.readFile(join(certbotDir, 'accounts', new URL(pebble.directory).host, 'dir', id, 'private_key.json'), 'utf8')), format: 'jwk'})
    const mfcKey = createPrivateKey(await fs.readFile(join(t.stateDir, 'acme', accountDir, 'account-key.pem')))
    expect(thumbprint(mfcKey)).to.equal(thumbprint(certbotKey))
    const show = parseJson<{url: string; ca: {status: string}}>(await runCli(['account', 'show', '--server', pebble.directory, '--json'], {env}))
    expect(show).to.deep.include({url: JSON.parse(recordBefore).url, ca: {status: 'valid', contact: ['mailto:certbot@mfc.example'], termsOfServiceAgreed: null}})
    // The renewed version verifies against Pebble's root.
    const rootFile = join(t.dir, 'root.pem')
    await fs.writeFile(rootFile, await pebble.root())
    const live = join(storeDir(), 'sa.mfc.example', 'live')
    const {stdout} = await run('openssl', ['verify', '-CAfile', rootFile, '-untrusted', join(live, 'chain.pem'), join(live, 'cert.pem')])
    expect(stdout).to.contain(': OK')
    // A later import sees mfc's own renewal as nothing to copy.
    expect(parseJson<Report>(await mfcImport()).lineages.map((l) => l.status)).to.deep.equal(['unchanged', 'unchanged'])
    // certbot, not yet stopped, renews again: mfc's version stays live, and the report says to stop certbot.
    await certbot(['renew', '--cert-name', 'sa.mfc.example', '--force-renewal', '--no-random-sleep-on-renew'])
    const liveSerial = await serialOf(join(live, 'cert.pem'))
    const again = parseJson<Report & {lineages: {reason: string}[]}>(await mfcImport())
    expect(again.lineages[0]).to.include({status: 'unchanged', versionsImported: 0})
    expect(again.lineages[0].reason).to.contain('not copied: stop certbot renewing it')
    expect(await serialOf(join(live, 'cert.pem'))).to.equal(liveSerial)
  })
})

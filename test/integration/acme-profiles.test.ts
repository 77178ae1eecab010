import {promises as fs} from 'node:fs'
import {type Server, createServer} from 'node:https'
import {join} from 'node:path'

import {expect} from 'chai'

import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type ListenerTls, type Pebble, mintListenerTls, startPebble} from '../helpers/pebble.js'

const PROFILES = {classic: 'The same profile you know and love', shortlived: 'A short-lived certificate (about 6 days)'}

/**
 * A stub ACME CA whose directory advertises profiles (Debian's Pebble 2.4 has none, as the
 * issue allows): it registers accounts and records every newOrder payload, then refuses the
 * order. Enough to see what mfc asks for; issuance itself is tested against Pebble.
 */
interface ProfileStub {
  directory: string
  orders: Record<string, unknown>[]
  close(): Promise<void>
}

async function startProfileStub(tls: ListenerTls): Promise<ProfileStub> {
  const orders: Record<string, unknown>[] = []
  let nonce = 0
  let base = ''
  const server: Server = createServer({cert: tls.cert, key: tls.key}, (req, res) => {
    let body = ''
    req.on('data', (c) => {
      body += c
    })
    req.on('end', () => {
      const headers = {'Replay-Nonce': `stub-nonce-${++nonce}`, 'Cache-Control': 'no-store', 'Content-Type': 'application/json'}
      if (req.url === '/dir') {
        res.writeHead(200, headers).end(JSON.stringify({newNonce: `${base}/nonce`, newAccount: `${base}/acct`, newOrder: `${base}/order`, revokeCert: `${base}/revoke`, keyChange: `${base}/key`, meta: {profiles: PROFILES}}))
      } else if (req.url === '/nonce') {
        res.writeHead(200, headers).end()
      } else if (req.url === '/acct') {
        res.writeHead(201, {...headers, Location: `${base}/acct/1`}).end(JSON.stringify({status: 'valid', contact: []}))
      } else if (req.url === '/order') {
        orders.push(JSON.parse(Buffer.from((JSON.parse(body) as {payload: string}).payload, 'base64url').toString('utf8')) as Record<string, unknown>)
        res.writeHead(400, {...headers, 'Content-Type': 'application/problem+json'}).end(JSON.stringify({type: 'urn:ietf:params:acme:error:malformed', detail: 'profile stub: order recorded, not issued', status: 400}))
      } else {
        res.writeHead(404, headers).end('{}')
      }
    })
  })
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve())
  })
  base = `https://127.0.0.1:${(server.address() as {port: number}).port}`
  return {directory: `${base}/dir`, orders, close: () => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })}
}

describe('ACME profiles (stub directory with meta.profiles; Pebble for issuance)', function () {
  this.timeout(120_000)
  let tls: ListenerTls
  let stub: ProfileStub
  let pebble: Pebble
  let t: TempEnv
  let env: NodeJS.ProcessEnv

  before(async () => {
    tls = await mintListenerTls()
    ;[stub, pebble] = await Promise.all([startProfileStub(tls), startPebble({tls, validityPeriod: 7_776_000})])
  })

  after(async () => {
    await Promise.all([stub?.close(), pebble?.stop()])
    await fs.rm(tls.dir, {recursive: true, force: true})
  })

  beforeEach(async () => {
    t = await tempEnv('maint-profiles-')
    env = {...t.env, NODE_EXTRA_CA_CERTS: tls.caFile}
    stub.orders.length = 0
  })

  afterEach(async () => t?.cleanup())

  const init = (directory: string, extra: string[]) => runCli(['ssl', 'init', '--agree-tos', '--domain', 'prof.mfc.example', '--email', 'ops@mfc.example', '--acme-directory', directory, '--http-port', String(pebble.httpPort), '--json', ...extra], {env})

  it('ssl profiles lists what the CA offers, with descriptions; a CA without profiles says so', async () => {
    const listed = await runCli(['ssl', 'profiles', '--acme-directory', stub.directory, '--json'], {env})
    expect(listed.code, listed.stderr).to.equal(0)
    expect(parseJson<{profiles: unknown[]}>(listed).profiles).to.deep.equal(Object.entries(PROFILES).map(([name, description]) => ({name, description})))
    const human = await runCli(['ssl', 'profiles', '--acme-directory', stub.directory], {env})
    expect(human.stdout).to.match(/shortlived\s+A short-lived certificate/)
    const none = await runCli(['ssl', 'profiles', '--acme-directory', pebble.directory], {env})
    expect(none.stdout).to.include('offers no profiles')
  })

  it('--profile shortlived: the newOrder carries the profile', async () => {
    const result = await init(stub.directory, ['--profile', 'shortlived'])
    expect(result.code).to.equal(5)
    expect(stub.orders).to.have.length(1)
    expect(stub.orders[0]).to.deep.include({profile: 'shortlived', identifiers: [{type: 'dns', value: 'prof.mfc.example'}]})
  })

  it('--required-profile the CA lacks: exit 2 naming the profiles offered, no order placed', async () => {
    const result = await init(stub.directory, ['--required-profile', 'tlsserver'])
    expect(result.code).to.equal(2)
    const {error} = parseJson<{error: {message: string; suggestions: string[]}}>(result)
    expect(error.message).to.include('does not offer the required profile "tlsserver" (it offers "classic", "shortlived")')
    expect(stub.orders).to.deep.equal([])
  })

  it('--preferred-profile the CA lacks (Pebble): the default with a warning; the lineage keeps the profile and a renewal asks for it again', async () => {
    const result = await init(pebble.directory, ['--preferred-profile', 'shortlived'])
    expect(result.code, result.stderr).to.equal(0)
    const {name, profile, warnings} = parseJson<{name: string; profile: string; warnings: string[]}>(result)
    expect(warnings.join('\n')).to.include('does not offer the profile "shortlived" (it offers no profiles): ordered its default instead')
    expect(profile).to.equal('shortlived')
    const human = await runCli(['ssl', 'init', '--agree-tos', '--domain', 'prof2.mfc.example', '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort), '--profile', 'shortlived', '--yes'], {env})
    expect(human.code, human.stderr).to.equal(0)
    // oclif wraps warnings ("›" continuation marks) to the terminal width.
    expect(human.stderr.replaceAll(/\s*›\s*/g, ' ').replaceAll(/\s+/g, ' ')).to.include('does not offer the profile "shortlived"')
    const metaFile = join(t.stateDir, 'certs', name, 'live', 'meta.json')
    const meta = JSON.parse(await fs.readFile(metaFile, 'utf8')) as {profile?: string; acmeDirectory: string}
    expect(meta.profile).to.equal('shortlived')
    // The lineage's CA now offers profiles (pointed at the stub): the renewal orders under the kept profile.
    await fs.writeFile(metaFile, JSON.stringify({...meta, acmeDirectory: stub.directory}))
    const renewed = await runCli(['cert', 'renew', '--force', '--cert-name', name, '--json'], {env})
    expect(parseJson<{outcomes: {status: string}[]}>(renewed).outcomes[0].status).to.equal('failed')
    expect(stub.orders).to.have.length(1)
    expect(stub.orders[0]).to.deep.include({profile: 'shortlived'})
  })
})

import {execFile} from 'node:child_process'
import {promises as fs} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {expect} from 'chai'

import {type Bind, startBind} from '../helpers/bind.js'
import {type RunResult, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type Pebble, startPebble} from '../helpers/pebble.js'

const run = promisify(execFile)

interface InitJson {name: string; domains: string[]; certFile: string; chainFile: string; challenge: string}
interface ErrorJson {error: {code: string; message: string; exitCode: number; suggestions: string[]}}

function expectOk(result: RunResult): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).to.equal(0)
}

describe('DNS-01 and wildcards through a real BIND9 (RFC 2136 + TSIG, manual hooks) against Pebble (integration)', function () {
  this.timeout(120_000)
  let bind: Bind
  let pebble: Pebble
  let t: TempEnv
  let env: NodeJS.ProcessEnv
  let credentials: string
  const record = '_acme-challenge.mfc.example'

  before(async () => {
    bind = await startBind()
    pebble = await startPebble({dnsServer: `127.0.0.1:${bind.port}`, nonceReject: 0})
  })

  after(async () => {
    await pebble?.stop()
    await bind?.stop()
  })

  beforeEach(async () => {
    t = await tempEnv('mfc-dns-')
    env = {...t.env, ...pebble.env}
    credentials = join(t.dir, 'rfc2136.ini')
    await fs.writeFile(credentials, `# certbot-dns-rfc2136 credentials
dns_rfc2136_server = 127.0.0.1
dns_rfc2136_port = ${bind.port}
dns_rfc2136_name = ${bind.keyName}
dns_rfc2136_secret = ${bind.secret}
dns_rfc2136_algorithm = HMAC-SHA256
`, {mode: 0o600})
  })

  afterEach(async () => {
    await t.cleanup()
  })

  const init = (args: string[]) => runCli(['ssl', 'init', '--acme-directory', pebble.directory, '--agree-tos', '--email', 'admin@mfc.example', '--json', ...args], {env})

  async function verify(out: InitJson): Promise<string> {
    const rootFile = join(t.dir, 'root.pem')
    await fs.writeFile(rootFile, await pebble.root())
    const leafFile = join(t.dir, 'leaf.pem')
    const [leaf] = (await fs.readFile(out.certFile, 'utf8')).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!
    await fs.writeFile(leafFile, leaf)
    const {stdout} = await run('openssl', ['verify', '-CAfile', rootFile, '-untrusted', out.chainFile, leafFile])
    const {stdout: text} = await run('openssl', ['x509', '-in', leafFile, '-noout', '-ext', 'subjectAltName'])
    return stdout + text
  }

  it('issues *.mfc.example + mfc.example over RFC 2136, openssl verifies it, the records are gone, the secret is never shown, and renewal reuses DNS-01', async () => {
    const result = await init(['-d', '*.mfc.example', '-d', 'mfc.example', '--preferred-challenges', 'dns', '--dns-rfc2136-credentials', credentials])
    expectOk(result)
    const out = parseJson<InitJson>(result)
    expect(out.domains).to.deep.equal(['*.mfc.example', 'mfc.example'])
    expect(out.challenge).to.equal('dns-01')
    const checked = await verify(out)
    expect(checked).to.contain(': OK')
    expect(checked).to.match(/DNS:\*\.mfc\.example/).and.match(/DNS:mfc\.example/)
    expect(await bind.txt(record), 'TXT records left behind').to.deep.equal([])

    const storeFiles = await run('grep', ['-rl', bind.secret, t.dir]).then((r) => r.stdout, () => '')
    expect(storeFiles.split('\n').filter((f) => f && f !== credentials), 'files holding the TSIG secret').to.deep.equal([])
    expect(result.stdout + result.stderr).not.to.contain(bind.secret)

    // Renewal: no challenge flags given; the lineage's record says DNS-01 with this file.
    const renewed = await runCli(['cert', 'renew', '--force-renewal', '--json'], {env})
    expectOk(renewed)
    const report = parseJson<{outcomes: {status: string}[]}>(renewed)
    expect(report.outcomes.map((o) => o.status)).to.deep.equal(['renewed'])
    expect(renewed.stdout + renewed.stderr).not.to.contain(bind.secret)
    expect(await bind.txt(record)).to.deep.equal([])
  })

  it('removes the records it added when the order fails part-way (a name outside the zone)', async () => {
    const mark = bind.logs().length
    const result = await init(['-d', '*.mfc.example', '-d', 'elsewhere.example', '--preferred-challenges', 'dns-01', '--dns-rfc2136-credentials', credentials])
    expect(result.code, result.stdout).to.equal(5)
    const {error} = parseJson<ErrorJson>(result)
    expect(error.code).to.equal('MFC_DNS_UPDATE')
    expect(error.message).to.contain('_acme-challenge.elsewhere.example').and.contain(`127.0.0.1:${bind.port}`)
    // The wildcard's record was really added (then deleted): this is a cleanup, not a no-op.
    const log = bind.logs().slice(mark)
    expect(log).to.match(/adding an RR at '_acme-challenge\.mfc\.example' TXT/).and.match(/deleting an RR at _acme-challenge\.mfc\.example TXT/)
    expect(await bind.txt(record), 'TXT records left behind').to.deep.equal([])
    await fs.access(join(t.stateDir, 'store', 'mfc.example')).then(() => expect.fail('a lineage was written'), () => undefined)
  })

  it('refuses a credentials file that group or others can read, with the chmod to run, before asking the CA', async () => {
    await fs.chmod(credentials, 0o644)
    const result = await init(['-d', 'mfc.example', '--preferred-challenges', 'dns', '--dns-rfc2136-credentials', credentials])
    expect(result.code).to.equal(3)
    const {error} = parseJson<ErrorJson>(result)
    expect(error.code).to.equal('MFC_DNS_CREDENTIALS')
    expect(error.message).to.contain(credentials)
    expect(error.suggestions.join(' ')).to.contain(`chmod 600 ${credentials}`)
    expect(result.stdout + result.stderr).not.to.contain(bind.secret)
  })

  it('reports a key the server does not accept (TSIG BADSIG from BIND) naming the credentials keys to check, without the secret', async () => {
    const wrong = Buffer.alloc(32, 7).toString('base64')
    await fs.writeFile(credentials, (await fs.readFile(credentials, 'utf8')).replace(bind.secret, wrong))
    const result = await init(['-d', 'mfc.example', '--preferred-challenges', 'dns', '--dns-rfc2136-credentials', credentials])
    expect(result.code, result.stdout).to.equal(5)
    const {error} = parseJson<ErrorJson>(result)
    expect(error.code).to.equal('MFC_DNS_UPDATE')
    expect(error.message).to.match(/refused to add TXT _acme-challenge\.mfc\.example in zone mfc\.example \(NOTAUTH, TSIG BADSIG\)/)
    expect(error.suggestions.join(' ')).to.contain('dns_rfc2136_secret').and.contain(credentials)
    expect(result.stdout + result.stderr).not.to.contain(wrong)
    expect(await bind.txt(record)).to.deep.equal([])
  })

  it('refuses a wildcard over HTTP-01 and DNS-01 without a way to answer it (exit 2)', async () => {
    const result = await init(['-d', '*.mfc.example'])
    expect(result.code).to.equal(2)
    expect(parseJson<ErrorJson>(result).error.suggestions.join(' ')).to.contain('--preferred-challenges dns')
  })

  describe('certbot-style --manual-auth-hook / --manual-cleanup-hook scripts that call nsupdate', () => {
    let auth: string
    let cleanup: string
    let log: string

    beforeEach(async () => {
      log = join(t.dir, 'hooks.log')
      auth = join(t.dir, 'auth.sh')
      cleanup = join(t.dir, 'cleanup.sh')
      const update = (verb: string) => `printf 'server 127.0.0.1 ${bind.port}\\nupdate ${verb} _acme-challenge.%s 60 TXT "%s"\\nsend\\n' "$CERTBOT_DOMAIN" "$CERTBOT_VALIDATION" | nsupdate -y hmac-sha256:${bind.keyName}:${bind.secret}`
      await fs.writeFile(auth, `#!/bin/sh\nset -e\necho "auth domain=$CERTBOT_DOMAIN remaining=$CERTBOT_REMAINING_CHALLENGES all=$CERTBOT_ALL_DOMAINS token=\${CERTBOT_TOKEN:+set}" >> ${log}\n${update('add')}\necho added-$CERTBOT_DOMAIN\n`, {mode: 0o700})
      await fs.writeFile(cleanup, `#!/bin/sh\necho "cleanup domain=$CERTBOT_DOMAIN output=$CERTBOT_AUTH_OUTPUT" >> ${log}\n${update('delete')}\n`, {mode: 0o700})
    })

    it('issues a wildcard + apex with the hooks run one by one (certbot\'s variables), then cleans up', async () => {
      const result = await init(['-d', '*.mfc.example', '-d', 'mfc.example', '--manual', '--preferred-challenges', 'dns', '--manual-auth-hook', auth,
        '--manual-cleanup-hook', cleanup, '--dns-nameserver', `127.0.0.1:${bind.port}`])
      expectOk(result)
      expect(await verify(parseJson<InitJson>(result))).to.contain(': OK')
      const lines = (await fs.readFile(log, 'utf8')).trim().split('\n')
      expect(lines.filter((l) => l.startsWith('auth'))).to.deep.equal([
        'auth domain=mfc.example remaining=1 all=*.mfc.example,mfc.example token=set',
        'auth domain=mfc.example remaining=0 all=*.mfc.example,mfc.example token=set',
      ])
      expect(lines.filter((l) => l.startsWith('cleanup'))).to.deep.equal(['cleanup domain=mfc.example output=added-mfc.example', 'cleanup domain=mfc.example output=added-mfc.example'])
      expect(await bind.txt(record)).to.deep.equal([])

      // The renewal runs the same hooks (recorded with the lineage), with no flags given.
      await fs.writeFile(log, '')
      const renewed = await runCli(['cert', 'renew', '--force-renewal', '--json'], {env})
      expectOk(renewed)
      expect(parseJson<{outcomes: {status: string}[]}>(renewed).outcomes.map((o) => o.status)).to.deep.equal(['renewed'])
      expect((await fs.readFile(log, 'utf8')).match(/^auth /gm)).to.have.length(2)
      expect(await bind.txt(record)).to.deep.equal([])
    })

    it('a failing auth hook fails the order with MFC_AUTH_HOOK_FAILED, exit 5 (the challenge could not be answered), with its output', async () => {
      await fs.writeFile(auth, '#!/bin/sh\necho "no credentials" >&2\nexit 3\n', {mode: 0o700})
      const result = await init(['-d', 'mfc.example', '--preferred-challenges', 'dns', '--manual-auth-hook', auth, '--manual-cleanup-hook', cleanup,
        '--dns-nameserver', `127.0.0.1:${bind.port}`])
      expect(result.code, result.stdout).to.equal(5)
      const {error} = parseJson<ErrorJson>(result)
      expect(error).to.include({code: 'MFC_AUTH_HOOK_FAILED', exitCode: 5})
      expect(error.message).to.contain('The manual auth hook failed for mfc.example (exit 3)').and.contain('no credentials')
    })

    it('times out naming the record, the server asked and what it answered, when the record never appears; cleanup still runs', async () => {
      await fs.writeFile(auth, `#!/bin/sh\necho "auth domain=$CERTBOT_DOMAIN" >> ${log}\n`, {mode: 0o700})
      const result = await init(['-d', 'mfc.example', '--preferred-challenges', 'dns', '--manual-auth-hook', auth, '--manual-cleanup-hook', cleanup,
        '--dns-nameserver', `127.0.0.1:${bind.port}`, '--dns-propagation-timeout', '2', '--dns-poll-interval', '1'])
      expect(result.code, result.stdout).to.equal(5)
      const {error} = parseJson<ErrorJson>(result)
      expect(error.code).to.equal('MFC_DNS_PROPAGATION')
      expect(error.message).to.contain(record).and.contain(`ns.mfc.example (127.0.0.1:${bind.port})`).and.contain('answered NOERROR with no TXT record')
      expect(error.suggestions.join(' ')).to.contain(`dig @127.0.0.1 -p ${bind.port} ${record} TXT`)
      expect(await fs.readFile(log, 'utf8')).to.match(/^cleanup domain=mfc\.example/m)
      expect(await bind.txt(record)).to.deep.equal([])
    })
  })
})

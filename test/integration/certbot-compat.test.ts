import {execFile} from 'node:child_process'
import {existsSync, promises as fs} from 'node:fs'
import {type Server, createServer} from 'node:http'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {expect} from 'chai'

import {type RunResult, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type Pebble, startPebble} from '../helpers/pebble.js'

const run = promisify(execFile)

/** `certbot certonly` -> `mfc ssl init`, `certbot renew` -> `mfc cert renew`; the rest as certbot users type it. */
function certbotToMfc(line: string): string[] {
  const words = [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2])
  expect(words[0]).to.equal('certbot')
  const verb = {certonly: ['ssl', 'init'], renew: ['cert', 'renew']}[words[1]]
  expect(verb, words[1]).to.be.an('array')
  return [...verb!, ...words.slice(2)]
}

describe('certbot command lines work as mfc command lines, against Pebble (integration)', function () {
  this.timeout(180_000)
  let pebble: Pebble
  let t: TempEnv
  let env: NodeJS.ProcessEnv
  let server: Server | undefined

  before(async () => {
    pebble = await startPebble({validityPeriod: 7_776_000})
    t = await tempEnv('mfc-certbot-')
    // --test-cert and --dry-run go to the configured staging twin: this Pebble.
    env = {...t.env, ...pebble.env, MFC_ACME_STAGING_DIRECTORY: pebble.directory}
  })

  after(async () => {
    server?.closeAllConnections()
    server?.close()
    await pebble?.stop()
    await t?.cleanup()
  })

  const cli = async (line: string): Promise<RunResult> => {
    const args = certbotToMfc(line.replaceAll('$DIR', pebble.directory).replaceAll('$PORT', String(pebble.httpPort)).replaceAll('$TMP', t.dir))
    return runCli(args, {env})
  }

  const ok = (result: RunResult, line: string) => expect(result.code, `${line}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).to.equal(0)
  const meta = async (name: string) => JSON.parse(await fs.readFile(join(t.stateDir, 'certs', name, 'live', 'meta.json'), 'utf8')) as {domains: string[]; serial: string; acmeDirectory: string}
  const keyText = async (name: string) => (await run('openssl', ['pkey', '-in', join(t.stateDir, 'certs', name, 'live', 'privkey.pem'), '-noout', '-text'])).stdout

  it('never agrees to the terms silently: -n without --agree-tos exits 2 naming the flag and the terms URL, and registers nothing', async () => {
    const line = 'certbot certonly --standalone -d tos.mfc.example -m admin@mfc.example -n --server $DIR --http-01-port $PORT'
    const result = await cli(line)
    expect(result.code, result.stderr).to.equal(2)
    expect(result.stderr).to.contain('--agree-tos').and.contain('terms of service (data:text/plain,Do%20what%20thou%20wilt)')
    expect(existsSync(join(t.stateDir, 'certs', 'tos.mfc.example'))).to.equal(false)
    const accounts = await fs.readdir(join(t.stateDir, 'acme')).catch(() => [] as string[])
    for (const dir of accounts) expect(await fs.readdir(join(t.stateDir, 'acme', dir))).not.to.include('account.json')
  })

  const table: {line: string; check: (result: RunResult) => Promise<void>}[] = [
    {line: 'certbot certonly --standalone -d a.mfc.example -m admin@mfc.example --agree-tos -n --server $DIR --http-01-port $PORT', async check() {
      expect((await meta('a.mfc.example')).domains).to.deep.equal(['a.mfc.example'])
    }},
    {line: 'certbot certonly --standalone -d a.mfc.example --non-interactive --server $DIR', async check(result) {
      expect(result.stdout).to.contain('Already have a certificate for a.mfc.example')
    }},
    {line: 'certbot certonly --standalone -d a.mfc.example -d b.mfc.example --expand -n --server $DIR --http-01-port $PORT', async check() {
      expect((await meta('a.mfc.example')).domains).to.deep.equal(['a.mfc.example', 'b.mfc.example'])
    }},
    {line: 'certbot certonly --standalone --key-type ecdsa --elliptic-curve secp384r1 --cert-name ec-cert -d ec.mfc.example -n --server $DIR', async check() {
      expect(await keyText('ec-cert')).to.contain('NIST CURVE: P-384')
    }},
    {line: 'certbot certonly --standalone --key-type rsa --rsa-key-size 3072 -d rsa.mfc.example -n --server $DIR', async check() {
      expect(await keyText('rsa.mfc.example')).to.contain('3072 bit')
    }},
    {line: 'certbot certonly --standalone --cert-name ec-cert -d ec.mfc.example --force-renewal -n --server $DIR', async check(result) {
      expect(parseJson<{version: string}>(result).version).to.equal('0002')
    }},
    {line: 'certbot certonly --dry-run --standalone -d dry.mfc.example -n', async check(result) {
      expect(result.stdout).to.contain('The dry run succeeded')
      expect(existsSync(join(t.stateDir, 'certs', 'dry.mfc.example'))).to.equal(false)
    }},
    {line: 'certbot certonly --test-cert --standalone -d staging.mfc.example -n --pre-hook "touch $TMP/pre" --post-hook "touch $TMP/post" --deploy-hook "touch $TMP/deploy"', async check() {
      expect((await meta('staging.mfc.example')).acmeDirectory).to.equal(pebble.directory)
      for (const hook of ['pre', 'deploy', 'post']) expect(existsSync(join(t.dir, hook)), `${hook} hook ran`).to.equal(true)
    }},
    {line: 'certbot renew --cert-name a.mfc.example --force-renewal --no-random-sleep-on-renew --deploy-hook "touch $TMP/renewed" --http-01-port $PORT', async check() {
      expect(existsSync(join(t.dir, 'renewed'))).to.equal(true)
    }},
    {line: 'certbot renew --dry-run --no-random-sleep-on-renew', async check(result) {
      expect(result.stdout).to.match(/dry/i)
    }},
    {line: 'certbot renew -n', async check(result) {
      expect(result.stdout).to.match(/not due/i)
    }},
    {line: 'certbot renew -q --no-random-sleep-on-renew', async check(result) {
      expect(result.stdout).to.equal('')
    }},
    {line: 'certbot certonly --webroot -w $TMP/www -d web.mfc.example --agree-tos -n --server $DIR', async check() {
      expect((await meta('web.mfc.example')).domains).to.deep.equal(['web.mfc.example'])
    }},
  ]

  for (const {line, check} of table) {
    it(line, async () => {
      if (line.includes('--webroot')) {
        // The web server that owns port 80 in a webroot setup, serving the directory given to -w.
        const root = join(t.dir, 'www')
        await fs.mkdir(root, {recursive: true})
        server = createServer((req, res) => {
          void fs.readFile(join(root, (req.url ?? '/').split('?')[0]), 'utf8').catch(() => undefined).then((body) => {
            res.writeHead(body === undefined ? 404 : 200, {Connection: 'close'})
            res.end(body ?? 'not found')
          })
        })
        await new Promise<void>((resolve) => {
          server!.listen(pebble.httpPort, () => resolve())
        })
      }

      const result = await cli(line.includes('force-renewal -n') ? `${line} --json` : line)
      ok(result, line)
      await check(result)
    })
  }

  it('-h shows the help of ssl init and cert renew, with certbot\'s names in it', async () => {
    for (const args of [['ssl', 'init', '-h'], ['cert', 'renew', '-h']]) {
      const result = await runCli(args, {env})
      ok(result, args.join(' '))
      expect(result.stdout).to.contain('USAGE')
    }

    expect((await runCli(['ssl', 'init', '-h'], {env})).stdout).to.contain('--agree-tos').and.contain('--preferred-challenges').and.contain('--dns-rfc2136-credentials')
  })
})

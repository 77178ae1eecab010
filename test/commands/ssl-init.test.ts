import {expect} from 'chai'
import {X509Certificate} from 'node:crypto'
import {readFile, readlink, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {SslInitResult} from '../../src/commands/ssl/init.js'
import {mintCa, mintLeaf} from '../helpers/certs.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {openssl, opensslSans} from '../helpers/openssl.js'

describe('mfc ssl init', function () {
  this.timeout(60_000)
  let t: TempEnv
  beforeEach(async () => {
    t = await tempEnv()
  })
  afterEach(() => t.cleanup())

  it('names the configured API port, not the default, in its curl hint', async () => {
    const result = await runCli(['ssl', 'init', '--domain', 'localhost'], {env: {...t.env, MFC_HTTPS_API_PORT: '9443'}})
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.include('https://localhost:9443/health')
    expect(result.stdout).not.to.include(':8443')
  })

  it('creates a local CA and a localhost leaf that openssl verifies, with the right extensions and modes', async () => {
    const result = await runCli(['ssl', 'init', '--domain', 'localhost', '--json'], {env: t.env})
    expect(result.code, result.stderr).to.equal(0)
    const out = parseJson<SslInitResult>(result)
    expect(out.domains).to.deep.equal(['localhost', '127.0.0.1', '::1'])
    expect(out.issuer).to.equal('local-ca')
    expect(out.caFile).to.equal(join(t.stateDir, 'ca', 'ca.crt'))

    expect(openssl('verify', '-CAfile', out.caFile!, out.certFile)).to.contain(': OK')
    const leaf = openssl('x509', '-in', out.certFile, '-noout', '-text')
    expect(opensslSans(out.certFile)).to.deep.equal(['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'])
    expect(leaf).to.match(/Extended Key Usage:\s*\n\s*TLS Web Server Authentication/)
    expect(leaf).to.match(/CA:FALSE/)
    expect(leaf).to.contain('ASN1 OID: prime256v1')
    const days = (new Date(out.notAfter).getTime() - new Date(out.notBefore).getTime()) / 86_400_000
    expect(days).to.be.closeTo(90, 0.01)

    const ca = openssl('x509', '-in', out.caFile!, '-noout', '-text')
    expect(ca).to.match(/Basic Constraints: critical\s*\n\s*CA:TRUE, pathlen:0/)
    expect(ca).to.match(/Key Usage: critical\s*\n\s*Digital Signature, Certificate Sign, CRL Sign/)
    const caCert = new X509Certificate(await readFile(out.caFile!))
    expect((new Date(caCert.validTo).getTime() - Date.now()) / 86_400_000 / 365).to.be.closeTo(10, 0.02)

    expect((await stat(out.keyFile)).mode & 0o777).to.equal(0o600)
    expect((await stat(join(t.stateDir, 'ca', 'ca.key'))).mode & 0o777).to.equal(0o600)
    expect((await stat(t.stateDir)).mode & 0o777).to.equal(0o700)
    expect((await stat(join(t.stateDir, 'certs'))).mode & 0o777).to.equal(0o700)

    const config = JSON.parse(await readFile(join(t.configDir, 'ssl-config.json'), 'utf8'))
    expect(config.cert_file).to.equal(out.certFile)
    expect(config.key_file).to.equal(out.keyFile)
    expect(config.domain).to.equal('localhost')
    expect(config.use_letsencrypt).to.equal(false)
    // Only what this run set: no copied defaults (verify_mode, ports, limits...), so a later
    // release's better default still reaches this install.
    expect(Object.keys(config).sort()).to.deep.equal(['ca_file', 'cert_file', 'domain', 'domains', 'key_file', 'use_letsencrypt'])
    expect(openssl('pkey', '-in', config.key_file, '-pubout')).to.equal(openssl('x509', '-in', config.cert_file, '-noout', '-pubkey'))
  })

  it('prints where everything is and how to trust the CA', async () => {
    const result = await runCli(['ssl', 'init', '--domain', 'localhost'], {env: t.env})
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.contain(join(t.stateDir, 'certs', 'localhost', 'live', 'fullchain.pem'))
    expect(result.stdout).to.contain('update-ca-certificates')
    expect(result.stdout).to.contain(`NODE_EXTRA_CA_CERTS=${join(t.stateDir, 'ca', 'ca.crt')}`)
  })

  const keyCases: [string[], RegExp][] = [
    [['--key-type', 'rsa', '--rsa-key-size', '2048'], /Public-Key: \(2048 bit\)/],
    [['--key-type', 'rsa', '--rsa-key-size', '3072'], /Public-Key: \(3072 bit\)/],
    [['--key-type', 'ecdsa', '--elliptic-curve', 'P-384'], /ASN1 OID: secp384r1/],
  ]
  for (const [flags, expected] of keyCases) {
    it(`issues with ${flags.join(' ')}`, async () => {
      const result = await runCli(['ssl', 'init', '--domain', 'mfc.lab.test', '--domain', '10.0.0.5', ...flags, '--json'], {env: t.env})
      expect(result.code, result.stderr).to.equal(0)
      const out = parseJson<SslInitResult>(result)
      expect(openssl('x509', '-in', out.certFile, '-noout', '-text')).to.match(expected)
      expect(opensslSans(out.certFile)).to.deep.equal(['DNS:mfc.lab.test', 'IP:10.0.0.5'])
      expect(openssl('verify', '-CAfile', out.caFile!, out.certFile)).to.contain(': OK')
    })
  }

  it('is idempotent: the same names again do nothing (exit 0); new names need --expand, others --force; the old version is kept', async () => {
    expect((await runCli(['ssl', 'init', '--domain', 'localhost'], {env: t.env})).code).to.equal(0)
    const live = join(t.stateDir, 'certs', 'localhost', 'live')
    const again = await runCli(['ssl', 'init', '--domain', 'localhost', '--json'], {env: t.env})
    expect(again.code, again.stderr).to.equal(0)
    const kept = parseJson<SslInitResult>(again)
    expect(kept).to.include({action: 'unchanged', version: '0001', replaced: false})
    expect(kept.message).to.match(/^Already have a certificate for localhost, 127\.0\.0\.1, ::1 \(valid until .+\), not due for renewal until \d{4}-/)
    expect((await runCli(['ssl', 'init', '--domain', 'localhost'], {env: t.env})).stdout).to.contain('Already have a certificate for localhost')
    expect(await readlink(live)).to.equal('versions/0001')

    const more = await runCli(['ssl', 'init', '--domain', 'localhost', '--domain', 'mfc.lab.test'], {env: t.env})
    expect(more.code).to.equal(4)
    expect(more.stderr).to.contain('adds mfc.lab.test to the certificate "localhost"').and.contain('--expand').and.contain('--force')
    expect(more.stderr).not.to.match(/\bat .*\.js:\d+/)
    expect(await readlink(live)).to.equal('versions/0001')

    const expanded = await runCli(['ssl', 'init', '--domain', 'localhost', '--domain', 'mfc.lab.test', '--expand', '--json'], {env: t.env})
    expect(expanded.code, expanded.stderr).to.equal(0)
    expect(parseJson<SslInitResult>(expanded)).to.include({action: 'replaced', version: '0002', replaced: true})
    expect(parseJson<SslInitResult>(expanded).domains).to.include('mfc.lab.test')

    const fewer = await runCli(['ssl', 'init', '--domain', 'localhost', '--expand'], {env: t.env})
    expect(fewer.code).to.equal(4)
    expect(fewer.stderr).to.contain('differs from').and.contain('--force')
    const forced = await runCli(['ssl', 'init', '--domain', 'localhost', '--force', '--json'], {env: t.env})
    expect(forced.code, forced.stderr).to.equal(0)
    expect(parseJson<SslInitResult>(forced)).to.include({version: '0003', replaced: true})
    expect(await readlink(live)).to.equal('versions/0003')
  })

  it('never prompts without a terminal and says what is missing', async () => {
    const result = await runCli(['ssl', 'init'], {env: t.env})
    expect(result.code).to.equal(3)
    expect(result.stderr).to.contain('No domain given').and.contain('--domain')
  })

  it('reports usage errors with exit 2, in JSON too', async () => {
    const result = await runCli(['ssl', 'init', '--domain', 'localhost', '--key-type', 'dsa', '--json'], {env: t.env})
    expect(result.code).to.equal(2)
    expect(parseJson<{error: {code: string}}>(result).error.code).to.equal('MFC_USAGE')
  })

  it('names the missing flag when --cert-file comes without --key-file', async () => {
    const result = await runCli(['ssl', 'init', '--domain', 'custom.test', '--cert-file', 'x.pem'], {env: t.env})
    expect(result.code).to.equal(2)
    expect(result.stderr.split('\n')[0]).to.equal('Error: All of the following must be provided when using --cert-file: --key-file')
  })

  describe('with --cert-file/--key-file', () => {
    it('installs a valid custom pair into the store', async () => {
      const ca = await mintCa()
      const leaf = await mintLeaf(ca, ['custom.test'])
      await writeFile(join(t.dir, 'full.pem'), leaf.certPem + ca.certPem)
      await writeFile(join(t.dir, 'key.pem'), leaf.keyPem)
      const result = await runCli(['ssl', 'init', '--domain', 'custom.test', '--cert-file', join(t.dir, 'full.pem'), '--key-file', join(t.dir, 'key.pem'), '--json'], {env: t.env})
      expect(result.code, result.stderr).to.equal(0)
      const out = parseJson<SslInitResult>(result)
      expect(out.issuer).to.equal('custom')
      expect(await readFile(out.certFile, 'utf8')).to.equal(leaf.certPem + ca.certPem)
      expect((await stat(out.keyFile)).mode & 0o777).to.equal(0o600)
    })

    it('takes the names from the certificate, refuses a --domain it does not cover, and leaves an identical install alone', async () => {
      const ca = await mintCa()
      const leaf = await mintLeaf(ca, ['custom.test', '*.wild.test'])
      const certFile = join(t.dir, 'full.pem')
      await writeFile(certFile, leaf.certPem + ca.certPem)
      await writeFile(join(t.dir, 'key.pem'), leaf.keyPem)
      const install = (...extra: string[]) => runCli(['ssl', 'init', '--cert-file', certFile, '--key-file', join(t.dir, 'key.pem'), '--json', ...extra], {env: t.env})

      const refused = await install('--domain', 'custom.test', '--domain', 'other.test', '--domain', 'wild.test')
      expect(refused.code).to.equal(2)
      const {error} = parseJson<{error: {code: string; message: string}}>(refused)
      expect(error.code).to.equal('MFC_CERT_NAMES')
      expect(error.message).to.equal(`${certFile} does not cover other.test, wild.test (it is for custom.test, *.wild.test).`)

      const named = await install()
      expect(named.code, named.stderr).to.equal(0)
      expect(parseJson<SslInitResult>(named)).to.include({name: 'custom.test', action: 'issued'})
      expect(parseJson<SslInitResult>(named).domains).to.deep.equal(['custom.test', '*.wild.test'])
      const again = await install('--domain', 'custom.test')
      expect(again.code, again.stderr).to.equal(0)
      expect(parseJson<SslInitResult>(again)).to.include({action: 'unchanged', version: '0001'})

      const covered = await install('--domain', 'a.wild.test')
      expect(covered.code, covered.stderr).to.equal(0)
      expect(parseJson<SslInitResult>(covered)).to.include({name: 'a.wild.test', action: 'issued'})
    })

    const bad: [string, (files: {leaf: {certPem: string; keyPem: string}; other: {keyPem: string}; caPem: string; expired: {certPem: string; keyPem: string}}) => [string, string], RegExp][] = [
      ['a key that does not match', ({leaf, other}) => [leaf.certPem, other.keyPem], /does not belong to the certificate/],
      ['a chain in the wrong order', ({leaf, caPem}) => [caPem + leaf.certPem, leaf.keyPem], /out of order|does not belong/],
      ['an expired certificate', ({expired}) => [expired.certPem, expired.keyPem], /expired on/],
      ['a file that is not PEM', ({leaf}) => ['hello', leaf.keyPem], /holds no PEM certificate/],
    ]
    for (const [what, make, message] of bad) {
      it(`rejects ${what} before writing anything`, async () => {
        const ca = await mintCa()
        const files = {
          leaf: await mintLeaf(ca, ['custom.test']),
          other: await mintLeaf(ca, ['custom.test']),
          caPem: ca.certPem,
          expired: await mintLeaf(ca, ['custom.test'], {notBefore: new Date(Date.now() - 100 * 86_400_000), days: 30}),
        }
        const [certPem, keyPem] = make(files)
        await writeFile(join(t.dir, 'c.pem'), certPem)
        await writeFile(join(t.dir, 'k.pem'), keyPem)
        const result = await runCli(['ssl', 'init', '--domain', 'custom.test', '--cert-file', join(t.dir, 'c.pem'), '--key-file', join(t.dir, 'k.pem')], {env: t.env})
        expect(result.code).to.equal(4)
        expect(result.stderr).to.match(message)
        expect(result.stderr).to.contain(join(t.dir, what === 'a key that does not match' ? 'k.pem' : 'c.pem'))
        await stat(join(t.stateDir, 'certs')).then(() => expect.fail('the store was written'), () => {})
        await stat(join(t.configDir, 'ssl-config.json')).then(() => expect.fail('the config was written'), () => {})
      })
    }
  })
})

import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {expect} from 'chai'

import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type Pebble, startPebble} from '../helpers/pebble.js'

const run = promisify(execFile)
const KID = 'mfc-test-kid'
const HMAC = randomBytes(32).toString('base64url')

interface ErrorJson {error: {code: string; message: string; suggestions?: string[]}}

describe('ACME External Account Binding against a Pebble that requires it (integration)', function () {
  this.timeout(120_000)
  let pebble: Pebble
  let t: TempEnv
  let env: NodeJS.ProcessEnv

  const init = (extra: string[], e = env) =>
    runCli(['ssl', 'init', '--agree-tos', '--domain', 'eab.mfc.example', '--email', 'admin@mfc.example', '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort), '--json', ...extra], {env: e})
  const storeFiles = async () => (await fs.readdir(t.env.MFC_STATE_DIR!, {recursive: true})).filter((f) => String(f).includes('certs')).sort()

  before(async () => {
    pebble = await startPebble({externalAccountKeys: {[KID]: HMAC}})
  })
  after(async () => {
    await pebble?.stop()
  })
  beforeEach(async () => {
    t = await tempEnv('mfc-eab-')
    env = {...t.env, ...pebble.env}
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('without EAB the CA refuses the account: the error says which flags or variables to set, nothing is written', async () => {
    const result = await init([])
    expect(result.code, result.stdout + result.stderr).to.equal(5)
    const {error} = parseJson<ErrorJson>(result)
    expect(error.code).to.equal('MFC_ISSUER_FAILED')
    expect(error.message).to.include('externalAccountRequired')
    expect(error.suggestions?.join(' ')).to.include('--eab-kid').and.include('MFC_ACME_EAB_HMAC_KEY')
    expect(await storeFiles()).to.deep.equal([])
  })

  it('with --eab-kid/--eab-hmac-key it registers, issues a chain that verifies, and records the key ID but never the key', async () => {
    const result = await init(['--eab-kid', KID, '--eab-hmac-key', HMAC])
    expect(result.code, result.stdout + result.stderr).to.equal(0)
    expect(result.stdout + result.stderr).not.to.include(HMAC)
    const {certFile, chainFile} = parseJson<{certFile: string; chainFile: string}>(result)
    const rootFile = join(t.dir, 'root.pem')
    await fs.writeFile(rootFile, await pebble.root())
    const {stdout} = await run('openssl', ['verify', '-CAfile', rootFile, '-untrusted', chainFile, certFile])
    expect(stdout).to.include(': OK')

    const files = await fs.readdir(t.env.MFC_STATE_DIR!, {recursive: true})
    const record = files.find((f) => String(f).endsWith('account.json'))!
    expect(JSON.parse(await fs.readFile(join(t.env.MFC_STATE_DIR!, String(record)), 'utf8'))).to.include({eabKid: KID})
    for (const file of files) {
      const path = join(t.env.MFC_STATE_DIR!, String(file))
      if ((await fs.stat(path)).isFile()) expect(await fs.readFile(path, 'utf8'), String(file)).not.to.include(HMAC)
    }

    const config = await fs.readFile(join(t.env.MFC_CONFIG_DIR!, 'ssl-config.json'), 'utf8')
    expect(config).not.to.include(HMAC)
    // The account exists now: a forced renewal needs no EAB.
    const renew = await runCli(['cert', 'renew', '--force', '--json'], {env})
    expect(renew.code, renew.stdout + renew.stderr).to.equal(0)
  })

  it('takes MFC_ACME_EAB_KID and MFC_ACME_EAB_HMAC_KEY from the environment', async () => {
    const result = await init([], {...env, MFC_ACME_EAB_KID: KID, MFC_ACME_EAB_HMAC_KEY: HMAC})
    expect(result.code, result.stdout + result.stderr).to.equal(0)
  })

  it('a wrong HMAC key is refused by the CA with its own reason, and the key is not echoed', async () => {
    const wrong = randomBytes(32).toString('base64url')
    const result = await init(['--eab-kid', KID, '--eab-hmac-key', wrong])
    expect(result.code).to.equal(5)
    const {error} = parseJson<ErrorJson>(result)
    expect(error.code).to.equal('MFC_ISSUER_FAILED')
    expect(error.message).to.match(/external account binding/i)
    expect(error.suggestions?.join(' ')).to.include('--eab-hmac-key')
    expect(result.stdout + result.stderr).not.to.include(wrong)
  })

  it('bad EAB input fails before contacting the CA, naming the flag or variable (exit code for config errors)', async () => {
    const half = await init([], {...env, MFC_ACME_EAB_KID: KID})
    expect(half.code).to.equal(3)
    expect(parseJson<ErrorJson>(half).error.message).to.include('MFC_ACME_EAB_HMAC_KEY')
    const notBase64 = await init(['--eab-kid', KID, '--eab-hmac-key', 'not a key!'])
    expect(notBase64.code).to.equal(3)
    expect(parseJson<ErrorJson>(notBase64).error.message).to.include('--eab-hmac-key').and.not.include('not a key!')
    const local = await runCli(['ssl', 'init', '--domain', 'localhost', '--eab-kid', KID, '--eab-hmac-key', HMAC, '--json'], {env})
    expect(local.code).to.equal(3)
    expect(parseJson<ErrorJson>(local).error.message).to.include('--eab-kid')
  })
})

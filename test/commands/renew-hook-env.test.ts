import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'

import {type TempEnv, runCli, tempEnv} from '../helpers/cli.js'

/** Issue 16: hook commands get what they need, never mfc's secrets. */
describe('mfc cert renew: the environment hooks run with', function () {
  this.timeout(60_000)
  let temp: TempEnv
  before(async () => {
    temp = await tempEnv('mfc-hookenv-')
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--yes'], {env: temp.env})
    expect(init.code, init.stderr).to.equal(0)
  })
  after(async () => temp?.cleanup())

  it('pre, deploy and post hooks see PATH, HOME, LANG, the MFC paths and their RENEWED_* variables, but no token, EAB key or other secret', async () => {
    const secrets = {
      MFC_API_TOKEN: 'hook-env-token-0123456789abcdefghij', MFC_ACME_EAB_HMAC_KEY: 'eab-hmac-key-secret-value',
      MFC_SESSION_SECRET: 'session-secret-value', UNRELATED_CLOUD_KEY: 'cloud-secret-value',
    }
    const file = (kind: string) => join(temp.dir, `${kind}.env`)
    const result = await runCli([
      'cert', 'renew', '--force', '--json',
      '--pre-hook', `env > ${file('pre')}`, '--deploy-hook', `env > ${file('deploy')}`, '--post-hook', `env > ${file('post')}`,
    ], {env: {...temp.env, ...secrets}})
    expect(result.code, result.stderr).to.equal(0)
    const envOf = (kind: string) => Object.fromEntries(readFileSync(file(kind), 'utf8').trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]))
    for (const kind of ['pre', 'deploy', 'post']) {
      const env = envOf(kind)
      expect(env, kind).to.include({PATH: temp.env.PATH, HOME: temp.env.HOME, LANG: 'C.UTF-8', MFC_CONFIG_DIR: temp.configDir, MFC_STATE_DIR: temp.stateDir})
      const text = readFileSync(file(kind), 'utf8')
      for (const [name, value] of Object.entries(secrets)) {
        expect(env[name], `${kind}: ${name}`).to.equal(undefined)
        expect(text, `${kind}: the value of ${name}`).not.to.include(value)
      }
    }

    expect(envOf('deploy').RENEWED_LINEAGE).to.equal(join(temp.stateDir, 'certs/localhost/live'))
    expect(envOf('deploy').RENEWED_DOMAINS).to.equal('localhost 127.0.0.1 ::1')
    expect(envOf('post')).to.include({RENEWED_DOMAINS: 'localhost 127.0.0.1 ::1', FAILED_DOMAINS: ''})
  })
})

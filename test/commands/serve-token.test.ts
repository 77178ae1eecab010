import {execFileSync} from 'node:child_process'
import {chmodSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'

import {weakTokenReason} from '../../src/services/servers/auth.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {bearer, fetchText} from '../helpers/serve.js'
import {startServeProcess} from '../helpers/serve-process.js'

const PORTS = ['--api-port', '0', '--dashboard-port', '0', '--stream-port', '0', '--no-http']

describe('mfc serve: API tokens of at least 128 bits (issue 16)', function () {
  this.timeout(60_000)
  let temp: TempEnv
  const tokenFile = () => join(temp.stateDir, 'api-token')

  before(async () => {
    temp = await tempEnv('mfc-token-')
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--yes'], {env: temp.env})
    expect(init.code, init.stderr).to.equal(0)
  })
  after(async () => temp?.cleanup())

  it('refuses a weak MFC_API_TOKEN (short, repeated, few characters) with exit 3, naming the variable and how to make one', async () => {
    for (const [token, why] of [['short-token-123', 'characters long'], ['abcdefgh'.repeat(4), 'repeats "abcd..."'], ['0123456789abcdef0123456789abcde', 'at least 32'], ['ab'.repeat(20), 'fewer than 8']] as const) {
      const result = await runCli(['serve', ...PORTS, '--json'], {env: {...temp.env, MFC_API_TOKEN: token}})
      expect(result.code, `${token}: ${result.stdout}${result.stderr}`).to.equal(3)
      const {error} = parseJson<{error: {code: string; message: string; suggestions: string[]}}>(result)
      expect(error.code).to.equal('MFC_CONFIG_VALUE')
      expect(error.message).to.include('MFC_API_TOKEN')
      expect(error.message, token).to.include(why)
      expect(error.suggestions.join(' ')).to.include('openssl rand -base64 32')
      expect(result.stdout + result.stderr, 'the token is never printed').not.to.include(token)
    }
  })

  it('refuses a weak token file, naming the file', async () => {
    writeFileSync(tokenFile(), 'x'.repeat(40) + '\n', {mode: 0o600})
    const result = await runCli(['serve', ...PORTS, '--json'], {env: temp.env})
    expect(result.code).to.equal(3)
    const {error} = parseJson<{error: {message: string; suggestions: string[]}}>(result)
    expect(error.message).to.include(tokenFile())
    expect(error.message).to.include('fewer than 8 different characters')
    expect(error.suggestions.join(' ')).to.include('openssl rand -base64 32')
  })

  it('serves with `openssl rand` tokens, and warns when the token file is readable by others', async () => {
    const base64 = execFileSync('openssl', ['rand', '-base64', '32'], {encoding: 'utf8'}).trim()
    const hex = execFileSync('openssl', ['rand', '-hex', '16'], {encoding: 'utf8'}).trim()
    expect([weakTokenReason(base64), weakTokenReason(hex)]).to.deep.equal([undefined, undefined])
    writeFileSync(tokenFile(), base64 + '\n')
    chmodSync(tokenFile(), 0o644)
    const serve = await startServeProcess(temp.env, {token: null})
    try {
      // serve prints before it listens; the pipe may deliver it after the pid file says ready.
      for (let i = 0; i < 100 && !serve.output().includes('API token file'); i++) await new Promise((resolve) => setTimeout(resolve, 50))
      // oclif wraps warnings at the terminal width, continuing each line with " ›".
      expect(serve.output().replaceAll(/\s*\n\s*›?\s*/g, ' ')).to.include(`The API token file ${tokenFile()} is readable by everyone (mode 0644): run chmod 600 ${tokenFile()}`)
      expect((await fetchText(`${serve.url('api')}/system/info`, {ca: serve.caPem, headers: bearer(base64)})).status).to.equal(200)
    } finally {
      await serve.stop()
    }

    const envServe = await startServeProcess(temp.env, {token: hex})
    try {
      expect((await fetchText(`${envServe.url('api')}/system/info`, {ca: envServe.caPem, headers: bearer(hex)})).status).to.equal(200)
    } finally {
      await envServe.stop()
    }
  })
})

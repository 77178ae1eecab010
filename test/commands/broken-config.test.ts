import {expect} from 'chai'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')
  } catch {
    return false
  }
}

describe('stop and status with a broken config; an explicit config file that is missing', function () {
  this.timeout(120_000)
  let temp: TempEnv
  const ports = ['--api-port', '0', '--dashboard-port', '0', '--stream-port', '0', '--no-http']

  before(async () => {
    temp = await tempEnv('mfc-broken-config-')
  })
  after(async () => {
    // Whatever happened above: no daemon survives the test (the config may be broken still).
    writeFileSync(join(temp.configDir, 'ssl-config.json'), '{}')
    await runCli(['stop', '--timeout', '5'], {env: temp.env})
    await temp.cleanup()
  })

  it('a running daemon: status reports it healthy (exit 0) and stop stops it (exit 0), with a warning naming the file', async () => {
    const started = await runCli(['serve', '--daemon', ...ports], {env: temp.env})
    expect(started.code, started.stderr).to.equal(0)
    const record = JSON.parse(readFileSync(join(temp.stateDir, 'mfc.pid'), 'utf8'))
    const file = join(temp.configDir, 'ssl-config.json')
    mkdirSync(temp.configDir, {recursive: true})
    writeFileSync(file, '{,')

    const status = await runCli(['status', '--json'], {env: temp.env})
    expect(status.code, status.stdout + status.stderr).to.equal(0)
    expect(parseJson<{status: string}>(status).status).to.equal('healthy')
    expect(status.stderr).to.include(file).and.to.include('not valid JSON')
    const human = await runCli(['status'], {env: temp.env})
    expect(human.code).to.equal(0)
    expect(human.stderr).to.include(file)

    const stop = await runCli(['stop'], {env: temp.env})
    expect(stop.code, stop.stderr).to.equal(0)
    expect(stop.stderr).to.include(file)
    expect(stop.stdout).to.include(`Stopped mfc serve (pid ${record.pid}`)
    expect(isAlive(record.pid)).to.equal(false)
    expect(isAlive(record.supervisorPid)).to.equal(false)
    expect(existsSync(join(temp.stateDir, 'mfc.pid'))).to.equal(false)
    // Other commands still refuse the broken file.
    expect((await runCli(['cert', 'monitor'], {env: temp.env})).code).to.equal(3)
  })

  it('--config FILE / MFC_SSL_CONFIG that does not exist: exit 3 naming the path, with and without --json', async () => {
    const missing = join(temp.dir, 'typo', 'ssl-config.json')
    for (const [args, env] of [[['cert', 'monitor', '--config', missing], temp.env], [['setup-cron', '--dry-run'], {...temp.env, MFC_SSL_CONFIG: missing}]] as const) {
      const human = await runCli([...args], {env})
      expect(human.code, human.stderr).to.equal(3)
      expect(human.stderr).to.include(`Config file ${missing} not found`)
      const json = await runCli([...args, '--json'], {env})
      expect(json.code).to.equal(3)
      expect(parseJson<{error: {code: string; message: string}}>(json).error).to.include({code: 'MFC_CONFIG_NOT_FOUND'})
    }
  })

  it('ssl init --config NEW creates that file rather than refusing it', async () => {
    const fresh = join(temp.dir, 'new', 'ssl-config.json')
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--config', fresh, '--yes', '--force'], {env: temp.env})
    expect(init.code, init.stderr).to.equal(0)
    expect(JSON.parse(readFileSync(fresh, 'utf8')).domain).to.equal('localhost')
  })
})

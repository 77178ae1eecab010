import {expect} from 'chai'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')
  } catch {
    return false
  }
}

describe('mfc serve --daemon / status / stop (real processes)', function () {
  this.timeout(120_000)
  let temp: TempEnv
  const ports = ['--api-port', '0', '--dashboard-port', '0', '--stream-port', '0', '--no-http']
  const pidFile = () => join(temp.stateDir, 'mfc.pid')
  const record = () => JSON.parse(readFileSync(pidFile(), 'utf8'))

  before(async () => {
    temp = await tempEnv('mfc-daemon-')
  })
  after(async () => {
    await runCli(['stop', '--timeout', '5'], {env: temp.env})
    await temp.cleanup()
  })

  it('status says down (exit 2) before anything runs, and stop is a no-op (exit 0)', async () => {
    const status = await runCli(['status', '--json'], {env: temp.env})
    expect(status.code).to.equal(2)
    expect(parseJson(status).status).to.equal('down')
    const stop = await runCli(['stop'], {env: temp.env})
    expect(stop.code).to.equal(0)
    expect(stop.stdout).to.include('not running')
  })

  it('serve --daemon bootstraps a certificate and a token, returns once healthy; a second one exits 7', async () => {
    const started = await runCli(['serve', '--daemon', ...ports], {env: temp.env})
    expect(started.code, started.stderr).to.equal(0)
    expect(started.stdout).to.include('created one for localhost, 127.0.0.1, ::1 through the local CA')
    expect(started.stdout).to.match(/Read it with: cat .*api-token/)
    expect(started.stdout).to.match(/API\s+https:\/\/localhost:\d+/)
    const token = readFileSync(join(temp.stateDir, 'api-token'), 'utf8').trim()
    expect(started.stdout + started.stderr).not.to.include(token)

    const second = await runCli(['serve', '--daemon', ...ports], {env: temp.env})
    expect(second.code).to.equal(7)
    expect(second.stderr).to.include('already running')
  })

  it('status --json: every service healthy through real HTTPS/WSS probes, exit 0', async () => {
    const status = await runCli(['status', '--json'], {env: temp.env})
    expect(status.code, status.stdout).to.equal(0)
    const report = parseJson<any>(status)
    expect(report.mode).to.equal('daemon')
    expect(report.services.map((s: any) => [s.name, s.healthy])).to.deep.equal([['api', true], ['dashboard', true], ['streamer', true]])
    expect(report.services[2].probe.status).to.equal(101)
    expect(report.certificate.daysLeft).to.be.within(88, 90)
    expect(JSON.stringify(report)).not.to.include(readFileSync(join(temp.stateDir, 'api-token'), 'utf8').trim())
  })

  it('kill -9 of the server process: the supervisor restarts it and status counts the restart', async () => {
    const before = record()
    process.kill(before.pid, 'SIGKILL')
    while (!(record().pid !== before.pid && record().ready)) await sleep(100)
    const status = await runCli(['status', '--json'], {env: temp.env})
    const report = parseJson<any>(status)
    expect(status.code, status.stdout).to.equal(0)
    expect(report.restarts).to.equal(1)
    expect(report.supervisorPid).to.equal(before.supervisorPid)
    const log = readFileSync(join(temp.stateDir, 'logs', 'mfc.log'), 'utf8')
    expect(log).to.include('killed by SIGKILL; restarting in')
  })

  it('stop: SIGTERM, both processes gone, pid file removed; status down again', async () => {
    const {pid, supervisorPid} = record()
    const stop = await runCli(['stop', '--json'], {env: temp.env})
    expect(stop.code).to.equal(0)
    expect(parseJson(stop)).to.include({wasRunning: true, forced: false})
    expect(isAlive(pid)).to.equal(false)
    expect(isAlive(supervisorPid)).to.equal(false)
    expect(() => readFileSync(pidFile())).to.throw()
    expect((await runCli(['status'], {env: temp.env})).code).to.equal(2)
  })

  it('a stale pid file (its process died without cleaning up) is reported and reclaimed', async () => {
    writeFileSync(pidFile(), JSON.stringify({pid: 999_999, supervisorPid: 999_998, startedAt: '2020-01-01T00:00:00Z', ports: {api: 1, dashboard: 2, streamer: 3, http: null}, ready: true}))
    const status = parseJson<any>(await runCli(['status', '--json'], {env: temp.env}))
    expect(status.stalePidFile).to.equal(true)
    const started = await runCli(['serve', '--daemon', ...ports], {env: temp.env})
    expect(started.code, started.stderr).to.equal(0)
    expect(record().supervisorPid).not.to.equal(999_998)
    expect((await runCli(['stop'], {env: temp.env})).code).to.equal(0)
    writeFileSync(pidFile(), JSON.stringify({pid: 999_999, supervisorPid: null, startedAt: '2020-01-01T00:00:00Z'}))
    const stop = await runCli(['stop'], {env: temp.env})
    expect(stop.stdout).to.include('removed the stale pid file')
  })

  it('serve --daemon fails with the reason and the log path when a port is taken', async () => {
    const {createServer} = await import('node:net')
    const blocker = createServer().listen(0, '0.0.0.0')
    await new Promise((resolve) => blocker.once('listening', resolve))
    const port = (blocker.address() as {port: number}).port
    try {
      const args = ['serve', '--api-port', String(port), '--dashboard-port', '0', '--stream-port', '0', '--no-http', '--start-timeout', '10']
      // One cause, one exit code: 6 (network) in the foreground and with --daemon, with and without --json.
      const started = await runCli([...args, '--daemon'], {env: temp.env})
      expect(started.code, started.stderr).to.equal(6)
      expect(started.stderr).to.include(`The api port ${port} is already in use`)
      expect(started.stderr).to.include(join(temp.stateDir, 'logs', 'mfc.log'))
      const json = await runCli([...args, '--daemon', '--json'], {env: temp.env})
      expect(json.code).to.equal(6)
      expect(parseJson<{error: {code: string}}>(json).error.code).to.equal('MFC_PORT_IN_USE')
      const foreground = await runCli([...args, '--json'], {env: temp.env})
      expect(foreground.code).to.equal(6)
      expect(parseJson<{error: {code: string}}>(foreground).error.code).to.equal('MFC_PORT_IN_USE')
    } finally {
      blocker.close()
      await runCli(['stop', '--timeout', '5'], {env: temp.env})
    }
  })
})

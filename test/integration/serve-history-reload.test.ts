import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import Database from 'better-sqlite3'
import {Agent, fetch} from 'undici'

import {parseJson, runCli} from '../helpers/cli.js'
import {type ServeProcess, spawnServe, writeDataSettings} from '../helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../helpers/serve.js'

type Json = any

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('mfc restore while mfc serve runs: SIGHUP reopens the history database', function () {
  this.timeout(90_000)
  let site: TestSite
  let serve: ServeProcess
  let dispatcher: Agent

  const call = async (method: string, path: string, body?: unknown): Promise<Json> => {
    const response = await fetch(serve.url('api') + path, {
      method, dispatcher, body: body === undefined ? undefined : JSON.stringify(body),
      headers: {authorization: `Bearer ${TEST_TOKEN}`, ...(body === undefined ? {} : {'content-type': 'application/json'})},
    })
    if (response.status !== 200) expect.fail(`${method} ${path}: ${response.status} ${await response.text()}`)
    return response.json()
  }

  const readings = async () => (await call('GET', '/dashboard/info')).history.readings as number
  const threshold = async () => (await call('GET', '/alerts/config')).alerts.find((a: Json) => a.parameter === 'reservoir_concentration').threshold_min as number
  const setThreshold = (min: number) => call('POST', '/alerts/config', [{parameter: 'reservoir_concentration', threshold_min: min, threshold_max: 30}])
  /** What is in the file at the history path now, read by another connection (as sqlite3 would). */
  const onDisk = (sql: string, ...params: unknown[]) => {
    const db = new Database(site.config.paths.historyDb, {readonly: true})
    try {
      return db.prepare(sql).get(...params) as Record<string, number>
    } finally {
      db.close()
    }
  }

  const logLines = () => readFileSync(site.config.paths.logFile, 'utf8').split('\n').filter((line) => line.includes('history database reopened'))

  before(async () => {
    site = await testSite()
    writeDataSettings(site, {simulation_autostart: true, simulation_speed: 50, simulation_sample_ms: 100, rate_limit_per_minute: 0})
    serve = await spawnServe(site)
    dispatcher = new Agent({connect: {ca: site.caPem}})
  })
  after(async () => {
    await dispatcher?.close()
    if (serve) await serve.stop()
    await site?.temp.cleanup()
  })

  it('after `mfc restore` (rename into place + SIGHUP) new readings land in the restored file, and its thresholds apply', async () => {
    while (await readings() < 5) await sleep(100)
    await setThreshold(21)
    const archive = join(site.temp.dir, 'backup.tar.gz')
    const backup = await runCli(['backup', '--output', archive, '--json'], {env: site.env})
    expect(backup.code, backup.stderr).to.equal(0)
    const inBackup = onDisk('SELECT count(*) AS n FROM readings').n

    // Life goes on after the backup: more readings, another threshold.
    await setThreshold(23)
    while (await readings() < inBackup + 50) await sleep(100)
    const beforeRestore = await readings()

    const restore = await runCli(['restore', archive, '--json'], {env: site.env})
    expect(restore.code, restore.stderr).to.equal(0)
    expect(parseJson<{reloaded: number | null}>(restore).reloaded).to.equal(serve.pid)
    while (logLines().length === 0) await sleep(50)

    expect(await threshold(), 'the restored database\'s thresholds').to.equal(21)
    await call('POST', '/simulation/stop')
    const served = await readings()
    expect(served, 'the history went back to the backup').to.be.below(beforeRestore)
    expect(onDisk('SELECT count(*) AS n FROM readings').n, 'serve reads the file that is at the history path').to.equal(served)

    const marker = {timestamp: new Date().toISOString(), time_hours: 1, reservoir_concentration: 25, outlet_concentration: 24, total_power: 0.002}
    await call('POST', '/data/ingest', {source: 'after-restore', readings: [marker]})
    expect(onDisk("SELECT count(*) AS n FROM readings WHERE source = 'ingest:after-restore'").n, 'a new reading is in the restored file').to.equal(1)
  })

  it('a plain SIGHUP (no restore) reopens the same file and loses nothing', async () => {
    const before = await readings()
    const reopened = logLines().length
    process.kill(serve.pid, 'SIGHUP')
    while (logLines().length === reopened) await sleep(50)
    expect(await readings()).to.equal(before)
    const marker = {timestamp: new Date().toISOString(), time_hours: 2, reservoir_concentration: 25, outlet_concentration: 24, total_power: 0.002}
    await call('POST', '/data/ingest', {source: 'after-sighup', readings: [marker]})
    expect(onDisk("SELECT count(*) AS n FROM readings WHERE source = 'ingest:after-sighup'").n).to.equal(1)
    expect(await threshold()).to.equal(21)
  })
})

import {expect} from 'chai'

import Database from 'better-sqlite3'
import {Agent, fetch} from 'undici'

import {type ServeProcess, spawnServe, writeDataSettings} from '../helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../helpers/serve.js'

/** Recent enough to survive the retention prune at serve start. */
const HOUR_AGO = Math.floor(Date.now() / 1000) * 1000 - 3_600_000
const reading = (ts: number) => ({timestamp: ts, time_hours: 0, reservoir_concentration: 25, outlet_concentration: 24.9, total_power: 0.002, cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5]})

/**
 * Durability of HTTP ingest with the writer thread and group commit: serve is killed -9 while
 * 16 single-reading clients and a batch client are posting; every reading acknowledged (200)
 * before the kill is in the database afterwards, and serve starts again on the same file.
 */
describe('ingest durability: kill -9 of `mfc serve` right after acknowledgements', function () {
  this.timeout(120_000)
  let site: TestSite
  let serve: ServeProcess | undefined
  let dispatcher: Agent

  before(async () => {
    site = await testSite()
    writeDataSettings(site, {simulation_autostart: false, rate_limit_per_minute: 0, data_retention_days: 0})
    serve = await spawnServe(site)
    dispatcher = new Agent({connect: {ca: site.caPem}, connections: 32})
  })
  after(async () => {
    await dispatcher.close()
    await serve?.stop()
    await site.temp.cleanup()
  })

  it('every acknowledged reading (single and batched) is in the database after the kill', async () => {
    const url = `${serve!.url('api')}/data/ingest`
    const acked = new Set<string>()
    let killed = false
    const post = async (source: string, stamps: number[]) => {
      const response = await fetch(url, {method: 'POST', dispatcher, headers: {authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json'},
        body: JSON.stringify({source, readings: stamps.map((ts) => reading(ts))})})
      const body = await response.text()
      if (response.status !== 200) throw new Error(`ingest answered ${response.status}: ${body}`)
      for (const ts of stamps) acked.add(`${source}@${ts}`)
    }

    // Each client posts until the connection breaks (the kill); errors before it fail the test.
    const client = async (source: string, size: number) => {
      for (let i = 0; ; i++) {
        try {
          await post(source, Array.from({length: size}, (_, k) => HOUR_AGO + (i * size + k) * 10))
        } catch (error) {
          if (killed) return
          throw error
        }
      }
    }

    const clients = [...Array.from({length: 16}, (_, c) => client(`single-${c}`, 1)), client('batch', 1000)]
    while (acked.size < 3000) await new Promise((resolve) => setTimeout(resolve, 5))
    killed = true
    serve!.child.kill('SIGKILL')
    await new Promise((resolve) => serve!.child.once('exit', resolve))
    const ackedAtKill = new Set(acked)
    await Promise.all(clients)
    // Replies that raced the kill may have been counted after it: they were acknowledged too.
    for (const key of acked) ackedAtKill.add(key)

    // Read-write, so SQLite recovers the WAL the killed process left, as serve's next start would.
    const db = new Database(site.config.paths.historyDb)
    let stored: Set<string>
    try {
      stored = new Set((db.prepare('SELECT source, ts FROM readings').all() as {source: string; ts: number}[]).map((r) => `${r.source}@${r.ts}`))
    } finally {
      db.close()
    }

    const lost = [...ackedAtKill].filter((key) => !stored.has(key))
    expect(lost, 'acknowledged but not in the database').to.deep.equal([])
    expect([...ackedAtKill].some((k) => k.startsWith('single-')) && [...ackedAtKill].some((k) => k.startsWith('batch@')), 'both kinds were acknowledged').to.equal(true)

    serve = await spawnServe(site)
    const sources = await fetch(`${serve.url('api')}/sources/batch`, {dispatcher, headers: {authorization: `Bearer ${TEST_TOKEN}`}})
    expect(((await sources.json()) as {readings: number}).readings).to.be.at.least([...ackedAtKill].filter((k) => k.startsWith('batch@')).length)
  })
})

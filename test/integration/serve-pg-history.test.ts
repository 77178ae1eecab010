import {randomBytes} from 'node:crypto'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'
import {Agent, fetch} from 'undici'

import {migrate} from '../../src/services/storage/migrations.js'
import {openPostgres} from '../../src/services/storage/postgres.js'
import {type TestPostgres, startPostgres} from '../helpers/postgres.js'
import {series} from '../helpers/readings.js'
import {type ServeProcess, spawnServe, writeDataSettings} from '../helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../helpers/serve.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const BATCH = 50

describe('mfc serve with storage=postgres: the history in PostgreSQL (real PostgreSQL 15, real serve)', function () {
  this.timeout(240_000)
  let pg: TestPostgres
  let url: string
  let site: TestSite
  let serve: ServeProcess
  let dispatcher: Agent
  const database = () => new URL(url).pathname.slice(1)

  before(async () => {
    pg = await startPostgres()
    url = await pg.createDatabase()
    const db = await openPostgres({url})
    await migrate(db)
    await db.close()
    site = await testSite()
    // Cluster storage seals keys with a key every node shares (serve refuses to start without it).
    const keyFile = join(site.temp.configDir, 'storage.key')
    writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', {mode: 0o600})
    writeDataSettings(site, {storage: url, storage_key_file: keyFile, simulation_autostart: false, rate_limit_per_minute: 0})
    serve = await spawnServe(site)
    dispatcher = new Agent({connect: {ca: site.caPem}})
  })
  after(async () => {
    await dispatcher?.close()
    await serve?.stop()
    await site?.temp.cleanup()
    await pg?.stop()
  })

  const post = (start: number) => fetch(`${serve.url('api')}/data/ingest`, {
    method: 'POST', dispatcher, signal: AbortSignal.timeout(20_000), headers: {authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json'},
    body: JSON.stringify({source: 'rig-pg', readings: series(BATCH, start).map(({source: _s, run_id: _r, ...r}) => r)}),
  })

  it('stores ingested readings in PostgreSQL and answers /data/latest, /data/range and /sources from it', async () => {
    const start = Date.UTC(2026, 0, 1)
    const response = await post(start)
    expect(response.status, await response.clone().text()).to.equal(200)
    expect(await response.json()).to.include({status: 'stored', accepted: BATCH, duplicates: 0, source: 'rig-pg'})
    expect(await pg.psql("SELECT count(*) FROM mfc_readings WHERE source = 'rig-pg'", database())).to.equal(String(BATCH))
    const again = await post(start)
    expect(await again.json(), 'a retried POST stores nothing twice').to.include({accepted: BATCH, duplicates: BATCH})
    const get = async (path: string) => (await fetch(serve.url('api') + path, {dispatcher, headers: {authorization: `Bearer ${TEST_TOKEN}`}})).json() as Promise<unknown>
    const latest = await get('/data/latest?limit=3&source=rig-pg') as {timestamp: string}[]
    expect(latest.map((r) => r.timestamp)).to.deep.equal(series(BATCH, start).slice(-3).map((r) => r.timestamp))
    expect(await get(`/data/range?source=rig-pg&from=${start}&to=${start + 9000}`)).to.have.length(10)
    const {sources} = await get('/sources') as {sources: {name: string; readings: number}[]}
    expect(sources.find((s) => s.name === 'rig-pg')).to.include({readings: BATCH})
  })

  it('PostgreSQL stopped (-m immediate) and restarted mid-ingest: 503 + Retry-After meanwhile, never a 500; every acknowledged reading stored once', async () => {
    const acknowledged: number[] = []
    const statuses = new Map<number, number>()
    let retryAfter: string | null = null
    let next = Date.UTC(2026, 1, 1)
    let phase: 'before' | 'down' | 'after' = 'before'
    let ackedAfter = 0
    let stop = false
    // Two clients, each re-posting its batch until acknowledged, as a rig's uploader does.
    const client = async () => {
      while (!stop) {
        const start = next
        next += BATCH * 1000
        while (!stop) {
          let status = 0
          try {
            const response = await post(start)
            status = response.status
            if (status === 503) retryAfter = response.headers.get('retry-after')
            await response.arrayBuffer()
          } catch {
            status = -1 // the connection itself failed: not acknowledged, retry
          }

          statuses.set(status, (statuses.get(status) ?? 0) + 1)
          if (status === 200) {
            acknowledged.push(start)
            if (phase === 'after') ackedAfter++
            break
          }

          await sleep(100)
        }
      }
    }

    const clients = [client(), client()]
    const until = async (what: string, done: () => boolean, ms = 60_000) => {
      const deadline = Date.now() + ms
      while (!done()) {
        if (Date.now() > deadline) {
          stop = true
          throw new Error(`timed out waiting for ${what}; statuses ${JSON.stringify([...statuses])}; serve output:\n${serve.output().slice(-3000)}`)
        }

        await sleep(50)
      }
    }

    try {
      await until('10 acknowledged batches', () => acknowledged.length >= 10)
      await pg.crash()
      phase = 'down'
      await until('a 503 while PostgreSQL is down', () => statuses.has(503))
      await sleep(500)
      await pg.start()
      phase = 'after'
      await until('10 batches acknowledged after the restart', () => ackedAfter >= 10)
    } finally {
      stop = true
      await Promise.all(clients)
    }

    expect(statuses.get(503) ?? 0, `statuses seen: ${JSON.stringify([...statuses])}`).to.be.greaterThan(0)
    expect(Number(retryAfter)).to.be.greaterThan(0)
    expect(statuses.has(500), 'never a 500').to.equal(false)
    // Every acknowledged batch is in the database, each reading once.
    const rows = await pg.psql(`SELECT ts, count(*) FROM mfc_readings WHERE source = 'rig-pg' AND ts >= ${Date.UTC(2026, 1, 1)} GROUP BY ts`, database())
    const counts = new Map(rows.split('\n').filter(Boolean).map((line) => line.split('|').map(Number) as [number, number]))
    const missing = acknowledged.flatMap((start) => Array.from({length: BATCH}, (_, i) => start + i * 1000)).filter((ts) => counts.get(ts) !== 1)
    expect(missing, 'acknowledged readings missing or stored twice').to.deep.equal([])
    expect(await pg.psql("SELECT readings FROM mfc_sources WHERE name = 'rig-pg'", database())).to.equal(await pg.psql("SELECT count(*) FROM mfc_readings WHERE source = 'rig-pg'", database()))
    expect(serve.output()).not.to.match(/\n\s+at /)
  })
})

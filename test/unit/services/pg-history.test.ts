import {expect} from 'chai'

import {HistoryUnavailableError, type PgHistory, openPgHistory} from '../../../src/services/storage/pg-history.js'
import {migrate} from '../../../src/services/storage/migrations.js'
import {openPostgres} from '../../../src/services/storage/postgres.js'
import {reading, series} from '../../helpers/readings.js'
import {type TestPostgres, startPostgres} from '../../helpers/postgres.js'
import {historyContract} from '../data/history-contract.js'

const clock = {now: () => new Date(Date.UTC(2026, 0, 10))}

/** A fresh, migrated database; `node()` opens one more PgHistory on it (another serve node). */
async function freshHistory(pg: TestPostgres): Promise<{url: string; node(): Promise<PgHistory>}> {
  const url = await pg.createDatabase()
  const db = await openPostgres({url})
  await migrate(db)
  await db.close()
  return {url, node: () => openPgHistory({connect: () => openPostgres({url}), retentionDays: 7, clock})}
}

{
  // The same contract suite as the SQLite adapter (test/unit/data/history.test.ts): one suite, two adapters.
  let pg: TestPostgres | undefined
  historyContract('PostgreSQL', {
    async open() {
      pg ??= await startPostgres()
      return (await freshHistory(pg)).node()
    },
    async cleanup() {},
  })
  after(async () => {
    await pg?.stop()
  })
}

describe('PgHistory on a real PostgreSQL 15 (several nodes, one database)', function () {
  this.timeout(120_000)
  let pg: TestPostgres
  const open: PgHistory[] = []
  before(async () => {
    pg = await startPostgres()
  })
  afterEach(async () => {
    await Promise.all(open.splice(0).map((h) => h.close()))
  })
  after(async () => {
    await pg?.stop()
  })

  const nodes = async (n: number) => {
    const fresh = await freshHistory(pg)
    const list = await Promise.all(Array.from({length: n}, () => fresh.node()))
    open.push(...list)
    return list
  }

  it('three nodes writing overlapping batches at once store each (source, timestamp, seq) once; counts, sources and rollups agree', async () => {
    const [a, b, c] = await nodes(3)
    const start = Date.UTC(2026, 0, 1)
    // Each node posts the same 600 readings in its own chunking (a retried POST, an MQTT redelivery).
    const all = series(600, start, {source: 'rig-1'})
    const chunks = (size: number) => Array.from({length: Math.ceil(all.length / size)}, (_, i) => all.slice(i * size, (i + 1) * size))
    const results = await Promise.all([[a, 100], [b, 150], [c, 600]].map(async ([node, size]) => {
      let stored = 0
      for (const chunk of chunks(size as number)) stored += (await (node as PgHistory).insert(chunk)).length
      return stored
    }))
    expect(results.reduce((x, y) => x + y, 0), 'each reading acknowledged as new by exactly one node').to.equal(600)
    expect(await a.count()).to.equal(600)
    expect(await b.source('rig-1')).to.deep.include({readings: 600, first_seen: start, last_seen: start + 599_000, cells: 5})
    const minutes = await c.buckets({source: 'rig-1', from: start, to: start + 599_999, bucketMs: 60_000})
    expect(minutes.map((m) => m.n)).to.deep.equal(Array.from({length: 10}, () => 60))
    expect(Number(await pg.psql('SELECT count(*) FROM mfc_readings', new URL((a.file)).pathname.slice(1)))).to.equal(600)
  })

  it('a reader on another node sees whole batches only', async () => {
    const [writer, reader] = await nodes(2)
    const seen = new Set<number>()
    let writing = true
    const watch = (async () => {
      while (writing) seen.add(await reader.count())
    })()
    for (let i = 0; i < 10; i++) await writer.insert(series(1000, Date.UTC(2026, 0, 1) + i * 1_000_000, {source: 'rig-1'}))
    writing = false
    await watch
    seen.add(await reader.count())
    expect([...seen].every((n) => n % 1000 === 0), `counts seen: ${[...seen].join(', ')}`).to.equal(true)
    expect(Math.max(...seen)).to.equal(10_000)
  })

  it('takes a batch larger than the 65535-parameter limit of one multi-row INSERT in one statement', async () => {
    const [history] = await nodes(1)
    const batch = series(10_000, Date.UTC(2026, 0, 1), {source: 'rig-big'})
    expect(await history.insert(batch)).to.have.length(10_000)
    const exported = []
    for await (const page of history.pages({source: 'rig-big'})) exported.push(...page)
    expect(exported).to.deep.equal(batch)
  })

  it('two nodes pruning at once subtract each pruned reading once', async () => {
    const [a, b] = await nodes(2)
    await a.insert(series(500, Date.UTC(2025, 11, 1), {source: 'rig-1'}))
    await a.insert(series(20, Date.UTC(2026, 0, 9), {source: 'rig-1'}))
    const pruned = await Promise.all([a.prune(), b.prune()])
    expect(pruned[0] + pruned[1]).to.equal(500)
    expect(await b.source('rig-1')).to.deep.include({readings: 20, first_seen: Date.UTC(2026, 0, 9)})
    expect(await a.count()).to.equal(20)
  })

  it('settings (alert thresholds, follower offsets) are shared by every node', async () => {
    const [a, b] = await nodes(2)
    await a.putSetting('alerts:thresholds', '[{"parameter":"total_power"}]')
    expect(await b.getSetting('alerts:thresholds')).to.equal('[{"parameter":"total_power"}]')
    await b.insert([reading({source: 'file:x.csv'})], {seqs: [3], setting: {key: 'follow:x', value: '4'}})
    expect(await a.getSetting('follow:x')).to.equal('4')
    expect(await a.getSetting('missing')).to.equal(undefined)
  })

  // Last: it stops and restarts the cluster the other tests share.
  it('while PostgreSQL is down an insert rejects with MFC_HISTORY_UNAVAILABLE (retry later) and stores nothing; after the restart it works', async () => {
    const [history] = await nodes(1)
    await history.insert(series(10, Date.UTC(2026, 0, 1), {source: 'rig-1'}))
    await pg.crash()
    let error: unknown
    try {
      await history.insert(series(10, Date.UTC(2026, 0, 2), {source: 'rig-1'}))
    } catch (caught) {
      error = caught
    }

    expect(error).to.be.instanceOf(HistoryUnavailableError)
    expect((error as HistoryUnavailableError).code).to.equal('MFC_HISTORY_UNAVAILABLE')
    expect((error as HistoryUnavailableError).retryAfterSeconds).to.be.greaterThan(0)
    await pg.start()
    expect(await history.insert(series(10, Date.UTC(2026, 0, 2), {source: 'rig-1'}))).to.have.length(10)
    expect(await history.count()).to.equal(20)
  })
})

import {expect} from 'chai'
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, rename, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {exportChunks, exportFileName} from '../../../src/services/data/export.js'
import {type HistoryStore, openHistory} from '../../../src/services/data/history.js'
import {collect, reading, series} from '../../helpers/readings.js'
import {historyContract} from './history-contract.js'

{
  let dir = ''
  historyContract('SQLite', {
    async open() {
      dir = await mkdtemp(join(tmpdir(), 'mfc-history-contract-'))
      return openHistory(join(dir, 'history.sqlite'), {retentionDays: 7, clock: {now: () => new Date(Date.UTC(2026, 0, 10))}})
    },
    cleanup: () => rm(dir, {recursive: true, force: true}),
  })
}

describe('history store (SQLite, WAL)', () => {
  let dir: string
  let history: HistoryStore
  let now = Date.UTC(2026, 0, 10)
  const clock = {now: () => new Date(now)}

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-history-'))
    history = await openHistory(join(dir, 'state', 'history.sqlite'), {retentionDays: 7, clock})
  })
  afterEach(async () => {
    await history.close()
    await rm(dir, {recursive: true, force: true})
  })

  it('stores batches in WAL mode and returns the latest with their own timestamps, oldest first', async () => {
    await history.insert(series(50))
    const latest = await history.latest(3)
    expect(latest.map((r) => r.timestamp)).to.deep.equal(['2026-01-01T00:00:47.000Z', '2026-01-01T00:00:48.000Z', '2026-01-01T00:00:49.000Z'])
    expect(latest[2]).to.deep.equal(series(50)[49])
    // WAL mode keeps a -wal file beside the database while a connection is open.
    expect(existsSync(`${history.file}-wal`)).to.equal(true)
  })

  it('queries a time range, inclusive, with a limit', async () => {
    await history.insert(series(100))
    const from = Date.UTC(2026, 0, 1, 0, 0, 10)
    const rows = await history.range({from, to: from + 4000})
    expect(rows).to.have.length(5)
    expect(await history.range({from, limit: 2})).to.have.length(2)
    expect(await history.range({from: Date.UTC(2027, 0, 1)})).to.have.length(0)
  })

  it('commits nothing of a batch that fails half-way', async () => {
    const bad = [...series(3), reading({timestamp: 'not a date'})]
    expect(await history.insert(bad).then(() => undefined, (error: Error) => error.message)).to.match(/history database/)
    expect(await history.count()).to.equal(0)
  })

  it('prunes readings older than the retention', async () => {
    await history.insert(series(5, Date.UTC(2026, 0, 1)))
    await history.insert(series(5, Date.UTC(2026, 0, 9)))
    expect(await history.prune()).to.equal(5)
    expect(await history.count()).to.equal(5)
  })

  it('persists settings across reopen', async () => {
    await history.putSetting('k', 'v1')
    await history.putSetting('k', 'v2')
    await history.close()
    history = await openHistory(join(dir, 'state', 'history.sqlite'), {retentionDays: 7, clock})
    expect(await history.getSetting('k')).to.equal('v2')
    expect(await history.getSetting('missing')).to.equal(undefined)
  })

  it('reopen() switches to a database renamed into place (mfc restore); without it writes go to the replaced file', async () => {
    await history.insert(series(5))
    const replacement = join(dir, 'restored.sqlite')
    const restored = await openHistory(replacement, {retentionDays: 7, clock})
    await restored.insert(series(2, Date.UTC(2026, 0, 5)))
    await restored.putSetting('alerts:thresholds', '[]')
    await restored.close()
    // What restore does: side files and the old database aside, the new one renamed in.
    const live = history.file
    for (const extra of ['-wal', '-shm', '']) await rename(live + extra, `${live}${extra}.old`)
    await rename(replacement, live)

    await history.insert(series(1, Date.UTC(2026, 0, 6)))
    await history.reopen()
    await history.insert(series(1, Date.UTC(2026, 0, 7)))
    expect(await history.count()).to.equal(3)
    expect(await history.getSetting('alerts:thresholds')).to.equal('[]')
    expect((await history.latest(3)).map((r) => r.timestamp.slice(0, 10))).to.deep.equal(['2026-01-05', '2026-01-05', '2026-01-07'])
    // SQLite does not checkpoint a moved database on close: its rows stay in the moved -wal.
    await rename(`${live}-wal.old`, `${live}.old-wal`)
    const old = await openHistory(`${live}.old`, {retentionDays: 7, clock})
    expect(await old.count(), 'the write before reopen() went to the replaced file').to.equal(6)
    await old.close()
  })

  it('reopen() of an unchanged file keeps everything and a closed store can be reopened', async () => {
    await history.insert(series(4))
    await history.reopen()
    expect(await history.count()).to.equal(4)
    await history.close()
    expect(await history.count().then(() => undefined, (error: Error) => error.message)).to.match(/is closed/)
    await history.reopen()
    expect(await history.count()).to.equal(4)
  })

  it('a writer thread that dies fails its pending writes (never acknowledged) and the next write starts a new one', async () => {
    const batch = series(20_000, Date.UTC(2026, 0, 9))
    const pending = history.insert(batch).then(() => 'stored', (error: Error) => error.message)
    await (history as HistoryStore & {killWriter(): Promise<void>}).killWriter()
    const outcome = await pending
    const count = await history.count()
    if (outcome === 'stored') expect(count, 'acknowledged, so stored').to.equal(20_000)
    else {
      expect(outcome).to.match(/history writer of .* stopped .*not acknowledged, retry/)
      expect([0, 20_000], 'all of the batch or nothing').to.include(count)
    }

    expect(await history.insert(series(3, Date.UTC(2026, 0, 9, 12)))).to.have.length(3)
    // The retried batch stores what the dead thread did not commit, nothing twice.
    await history.insert(batch)
    expect(await history.count()).to.equal(20_003)
  })


  it('a large batch goes to the writer thread in parts: one transaction, duplicates found in any part, a failing part or row stores nothing', async () => {
    const day = Date.UTC(2026, 0, 8)
    // 350 readings: three parts of 100 and the insert's own 50, all in one commit.
    expect(await history.insert(series(350, day))).to.have.length(350)
    // 450 more, of which 30 in the second part and 20 in the last are already stored.
    const mixed = [...series(150, day + 1_000_000), ...series(30, day + 150_000), ...series(250, day + 2_000_000), ...series(20, day + 300_000)]
    const stored = await history.insert(mixed)
    expect(stored).to.have.length(400)
    expect(stored).to.deep.equal([...mixed.slice(0, 150), ...mixed.slice(180, 430)])
    expect(await history.count()).to.equal(750)

    const failing = async (batch: ReturnType<typeof series>) => history.insert(batch).then(() => 'stored', (error: Error) => error.message)
    // After a failure, the next write is a transaction of its own: exactly its one reading is added.
    let count = 750
    const nextWriteAlone = async (what: string) => {
      const one = series(1, day + 9_000_000 + count * 1000)
      expect(await history.insert(one), what).to.deep.equal(one)
      expect(await history.count(), what).to.equal(++count)
    }

    // A row SQLite refuses in a leading part, and in the insert's own last rows.
    for (const at of [50, 330]) {
      const batch = series(350, day + 3_000_000)
      batch[at] = {...batch[at], timestamp: 'not a date'}
      expect(await failing(batch), `bad row ${at}`).to.match(/Cannot write the history database/)
      expect(await history.count(), `bad row ${at}`).to.equal(count)
      await nextWriteAlone(`after bad row ${at}`)
    }

    // A reading that cannot even be turned into a row after parts were sent: those parts are void.
    const unconvertible = series(350, day + 4_000_000)
    unconvertible[250] = {...unconvertible[250], cell_voltages: {length: 1} as never}
    expect(await failing(unconvertible)).to.match(/reduce is not a function/)
    expect(await history.count()).to.equal(count)
    // The writer goes on: the same readings, fixed, are stored once.
    unconvertible[250] = series(350, day + 4_000_000)[250]
    expect(await history.insert(unconvertible)).to.deep.equal(unconvertible)
    expect(await history.count()).to.equal(count + 350)
    const sources = await history.sources()
    expect(sources.find((s) => s.name === 'test')?.readings).to.equal(count + 350)
  })
  it('exports CSV and JSON in pages, complete and parseable, without temp files', async () => {
    await history.insert(series(2500))
    const json = (await collect(exportChunks(history, 'json'))).join('')
    const parsed = JSON.parse(json) as unknown[]
    expect(parsed).to.have.length(2500)
    const csv = (await collect(exportChunks(history, 'csv'))).join('').trimEnd().split('\n')
    expect(csv).to.have.length(2501)
    expect(csv[0]).to.match(/^timestamp,source,run_id,time_hours,reservoir_concentration/)
    expect(csv[1]).to.include('"[1, 1, 1, 1, 1]"')
    expect(JSON.parse((await collect(exportChunks(history, 'json', {from: Date.UTC(2030, 0, 1)}))).join(''))).to.deep.equal([])
    expect((await readdir(join(dir, 'state'))).filter((f) => !f.startsWith('history.sqlite'))).to.deep.equal([])
    now = Date.UTC(2026, 0, 10, 3, 4, 5)
    expect(exportFileName('csv', clock)).to.equal('mfc_simulation_data_20260110_030405.csv')
  })
})

describe('history migration to first-class sources (schema version 1)', () => {
  it('renames ingest:<name> rows to the posted name, drops retried duplicates, keeps file rows apart, registers sources', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mfc-history-migrate-'))
    const file = join(dir, 'history.sqlite')
    try {
      const {default: Database} = await import('better-sqlite3')
      const old = new Database(file)
      old.exec(`CREATE TABLE readings (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, source TEXT NOT NULL, run_id TEXT, time_hours REAL NOT NULL, reservoir REAL NOT NULL,
        outlet REAL NOT NULL, total_power REAL NOT NULL, addition REAL NOT NULL, q_action INTEGER, epsilon REAL, reward REAL, cells TEXT NOT NULL);
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);`)
      const put = old.prepare('INSERT INTO readings (ts, source, time_hours, reservoir, outlet, total_power, addition, cells) VALUES (?, ?, ?, 25, 25, 0.002, 0, ?)')
      const cells = JSON.stringify({b: [1, 1, 1], v: [0.5, 0.6, 0.7], p: null, ph: null, t: null})
      put.run(1000, 'ingest:rig-1', 0, cells)
      put.run(1000, 'ingest:rig-1', 0, cells) // a retried POST
      put.run(2000, 'ingest:rig-1', 1, cells)
      put.run(1000, 'simulator', 0, cells)
      put.run(1000, 'ingest:simulator', 0, cells) // must not merge into the simulator's rows
      put.run(5000, 'file:a.csv.gz', 0, cells)
      put.run(5000, 'file:a.csv.gz', 1, cells)
      old.close()

      const history = await openHistory(file, {retentionDays: 0, clock: {now: () => new Date()}})
      try {
        expect((await history.range({source: 'rig-1'})).map((r) => r.timestamp)).to.deep.equal(['1970-01-01T00:00:01.000Z', '1970-01-01T00:00:02.000Z'])
        expect((await history.sources()).map((s) => [s.name, s.readings, s.cells])).to.deep.equal([
          ['file:a.csv.gz', 2, 3], ['ingest:simulator', 1, 3], ['rig-1', 2, 3], ['simulator', 1, 3],
        ])
        expect((await history.buckets({source: 'rig-1', from: 0, to: 5000, bucketMs: 5000}))[0].values.cell_voltage_mean?.[2]).to.be.closeTo(0.6, 1e-9)
        // A second open finds version 1 and changes nothing.
        await history.reopen()
        expect(await history.count()).to.equal(6)
      } finally {
        await history.close()
      }
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})

import {expect} from 'chai'

import type {History} from '../../../src/services/data/history-types.js'
import {collect, reading, series} from '../../helpers/readings.js'

/**
 * The `History` contract (src/services/data/history-types.ts), written once for every adapter:
 * `open()` gives a fresh, empty store whose clock reads 2026-01-10; `cleanup()` runs after each
 * test. The SQLite adapter runs it in history.test.ts; a PostgreSQL adapter plugs in the same way.
 */
export function historyContract(name: string, adapter: {open(): Promise<History>; cleanup(): Promise<void>}): void {
  describe(`History contract: ${name}`, () => {
    let history: History
    beforeEach(async () => {
      history = await adapter.open()
    })
    afterEach(async () => {
      await history.close()
      await adapter.cleanup()
    })

    it('stores a batch and returns the stored readings; the same (source, timestamp) is stored once', async () => {
      const batch = series(3, Date.UTC(2026, 0, 1), {source: 'rig-1'})
      expect(await history.insert(batch)).to.deep.equal(batch)
      const again = [...series(3, Date.UTC(2026, 0, 1), {source: 'rig-1'}), reading({source: 'rig-1', timestamp: '2026-01-01T00:01:00.000Z'})]
      const stored = await history.insert(again)
      expect(stored, 'only the new reading').to.deep.equal([again[3]])
      expect(stored[0], 'the same object').to.equal(again[3])
      expect(await history.count()).to.equal(4)
      expect(await history.insert(series(3, Date.UTC(2026, 0, 1), {source: 'rig-2'})), 'another source, same times').to.have.length(3)
    })

    it('tells apart readings of one timestamp by their seq (the CSV follower)', async () => {
      const rows = [reading({source: 'file:a.csv.gz', time_hours: 1}), reading({source: 'file:a.csv.gz', time_hours: 2})]
      expect(await history.insert(rows, {seqs: [0, 1], setting: {key: 'follow:a', value: '2'}})).to.have.length(2)
      expect(await history.insert(rows, {seqs: [0, 1]})).to.have.length(0)
      expect(await history.getSetting('follow:a')).to.equal('2')
    })

    it('writes nothing of a batch that fails half-way', async () => {
      expect(await history.insert([...series(3), reading({timestamp: 'not a date'})]).then(() => undefined, (error: Error) => error.message)).to.match(/history database/)
      expect(await history.count()).to.equal(0)
      expect(await history.sources()).to.deep.equal([])
    })

    it('filters latest, range and pages by the posted source name, oldest first', async () => {
      await history.insert(series(5, Date.UTC(2026, 0, 1), {source: 'rig-1'}))
      await history.insert(series(5, Date.UTC(2026, 0, 1), {source: 'simulator'}))
      expect((await history.latest(3, 'rig-1')).map((r) => [r.source, r.timestamp.slice(17, 19)])).to.deep.equal([['rig-1', '02'], ['rig-1', '03'], ['rig-1', '04']])
      expect((await history.latest(2)).map((r) => r.source)).to.deep.equal(['simulator', 'simulator'])
      expect(await history.latest(5, 'nobody')).to.deep.equal([])
      expect(await history.range({source: 'rig-1', from: Date.UTC(2026, 0, 1, 0, 0, 1), to: Date.UTC(2026, 0, 1, 0, 0, 3)})).to.have.length(3)
      expect((await collect(history.pages({source: 'simulator'}))).flat()).to.have.length(5)
    })

    it('registers sources on first data (cells from the data) and by registration, keeping unnamed fields', async () => {
      await history.insert(series(4, Date.UTC(2026, 0, 1), {source: 'rig-1'}))
      const [rig] = await history.sources()
      expect(rig).to.deep.include({name: 'rig-1', cells: 5, description: null, readings: 4, first_seen: Date.UTC(2026, 0, 1), last_seen: Date.UTC(2026, 0, 1, 0, 0, 3)})
      await history.putSource({name: 'rig-1', description: 'Stack A', location: 'Lab 2'})
      await history.putSource({name: 'rig-1', location: 'Lab 3'})
      expect(await history.source('rig-1')).to.deep.include({cells: 5, description: 'Stack A', location: 'Lab 3', readings: 4})
      expect(await history.putSource({name: 'rig-9', cells: 3})).to.deep.include({name: 'rig-9', cells: 3, readings: 0, last_seen: null})
      expect(await history.source('nobody')).to.equal(undefined)
    })

    it('downsamples in the store: min, max and mean per bucket, empty buckets omitted', async () => {
      const start = Date.UTC(2026, 0, 1)
      // 0..9 then a gap, then 30..39: two buckets of 10 s in a 40 s window of 10 s buckets.
      const points = [...Array.from({length: 10}, (_, i) => i), ...Array.from({length: 10}, (_, i) => 30 + i)]
      await history.insert(points.map((s) => reading({source: 'rig-1', timestamp: new Date(start + s * 1000).toISOString(), total_power: s, cell_voltages: [s, s + 2, s, s, s]})))
      await history.insert([reading({source: 'rig-2', timestamp: new Date(start).toISOString(), total_power: 99})])
      const buckets = await history.buckets({source: 'rig-1', from: start, to: start + 39_999, bucketMs: 10_000})
      expect(buckets.map((b) => [b.t - start, b.n])).to.deep.equal([[0, 10], [30_000, 10]])
      expect(buckets[0].values.total_power).to.deep.equal([0, 9, 4.5])
      expect(buckets[1].values.cell_voltage_mean).to.deep.equal([30.4, 39.4, 34.9])
      expect(buckets[0].values.reservoir_concentration).to.deep.equal([25, 25, 25])
    })

    it('gives the same aggregates for whole-minute buckets (rollups) as for the raw rows', async () => {
      const start = Date.UTC(2026, 0, 1)
      const rows = Array.from({length: 240}, (_, s) => reading({source: 'rig-1', timestamp: new Date(start + s * 1000 + 500).toISOString(), total_power: (s * 7) % 13, cell_voltages: [s / 100, s / 100, s / 100, s / 100, s / 100]}))
      await history.insert(rows.slice(0, 100))
      await history.insert([...rows.slice(50, 240)]) // overlapping: the duplicates must not count twice
      const minutes = await history.buckets({source: 'rig-1', from: start, to: start + 239_999, bucketMs: 120_000})
      const raw = await history.buckets({source: 'rig-1', from: start + 1, to: start + 239_999, bucketMs: 120_000})
      expect(minutes.map((b) => [b.t - start, b.n])).to.deep.equal([[0, 120], [120_000, 120]])
      expect(raw.map((b) => b.n)).to.deep.equal([120, 120])
      for (const [i, b] of minutes.entries()) {
        for (const field of ['total_power', 'cell_voltage_mean'] as const) {
          const [min, max, mean] = b.values[field]!
          const [rmin, rmax, rmean] = raw[i].values[field]!
          expect([min, max]).to.deep.equal([rmin, rmax])
          expect(mean).to.be.closeTo(rmean, 1e-9)
        }
      }
    })

    it('lets overlapping calls proceed, and a read after a write resolved sees it', async () => {
      const writes = Array.from({length: 20}, (_, i) => history.insert(series(10, Date.UTC(2026, 0, 9) + i * 10_000, {source: `rig-${i % 3}`})))
      const counts = await Promise.all(writes.map(async (w) => (await w).length))
      expect(counts).to.deep.equal(Array.from({length: 20}, () => 10))
      expect(await history.count()).to.equal(200)
      expect((await history.sources()).map((s) => s.readings)).to.deep.equal([70, 70, 60])
    })

    it('keeps source counts when pruning past the retention', async () => {
      await history.insert(series(3, Date.UTC(2025, 11, 1), {source: 'rig-1'}))
      await history.insert(series(2, Date.UTC(2026, 0, 9), {source: 'rig-1'}))
      const pruned = await history.prune()
      if (history.retentionDays > 0) {
        expect(pruned).to.equal(3)
        expect(await history.source('rig-1')).to.deep.include({readings: 2, first_seen: Date.UTC(2026, 0, 9)})
      }
    })

    it('throws once closed; close is idempotent', async () => {
      await history.close()
      await history.close()
      expect(await history.latest(1).then(() => undefined, (error: Error) => error.message)).to.match(/closed/)
    })
  })
}

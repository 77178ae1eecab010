import {expect} from 'chai'
import fc from 'fast-check'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'

import {silentLogger} from '../../../src/lib/logger.js'
import {CsvFollower, splitCsvLine} from '../../../src/services/data/follower.js'
import {type HistoryStore, openHistory} from '../../../src/services/data/history.js'
import {GroupCommit} from '../../../src/services/data/group-commit.js'
import {DEFAULT_INGEST_LIMITS, IngestService, parseIngestBatch} from '../../../src/services/data/ingest.js'
import {DataValidationError, isoTimestamp, type Reading} from '../../../src/services/data/reading.js'
import {series} from '../../helpers/readings.js'

const NOW = new Date('2026-01-02T00:00:00Z')
const good = (overrides: Record<string, unknown> = {}) => ({
  timestamp: '2026-01-01T10:00:00+01:00', time_hours: 1.5, reservoir_concentration: 24.1, outlet_concentration: 24.0, total_power: 0.0021,
  cell_voltages: [0.5, 0.51, 0.49, 0.5, 0.52], ...overrides,
})

function rejection(body: unknown, limits = DEFAULT_INGEST_LIMITS): DataValidationError {
  try {
    parseIngestBatch(body, limits, NOW)
  } catch (error) {
    if (error instanceof DataValidationError) return error
    throw error
  }

  throw new Error('expected a rejection')
}

describe('ingest validation', () => {
  it('accepts a batch and keeps the data timestamps (normalised to UTC)', async () => {
    const readings = parseIngestBatch({source: 'rig-1', readings: [good(), good({timestamp: '2026-01-01T09:00:01Z'})]}, DEFAULT_INGEST_LIMITS, NOW)
    expect(readings).to.have.length(2)
    expect(readings[0]).to.include({timestamp: '2026-01-01T09:00:00.000Z', source: 'rig-1', q_action: null, substrate_addition_rate: 0})
    expect(readings[0].cell_voltages).to.deep.equal([0.5, 0.51, 0.49, 0.5, 0.52])
    expect(readings[0].biofilm_thicknesses).to.deep.equal([])
  })

  it('rejects wrong types, NaN-ish values, unknown fields and unknown cells with 400 and a reason', async () => {
    expect(rejection({readings: [good({total_power: 'high'})]}).issues[0]).to.include({type: 'float_type'})
    expect(rejection({readings: [good({reservoir_concentration: 'NaN'})]}).message).to.match(/reservoir_concentration/)
    expect(rejection({readings: [good({reservoir_concentration: null})]}).issues[0]).to.include({type: 'missing'})
    expect(rejection({readings: [good({cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]})]}).issues[0].msg).to.equal('Unknown cell 6: the stack has 5 cells')
    expect(rejection({readings: [good({cell_ph: [7, 7, 7, 7, 'x']})]}).issues[0].msg).to.match(/Cell 5/)
    expect(rejection({readings: [good({colour: 'red'})]}).issues[0]).to.include({type: 'extra_forbidden'})
    expect(rejection({readings: [good({timestamp: 'yesterday'})]}).issues[0]).to.include({type: 'datetime_parsing'})
    expect(rejection({readings: [good({timestamp: '2030-01-01T00:00:00Z'})]}).issues[0]).to.include({type: 'datetime_parsing'})
    expect(rejection({readings: [good({q_action: 10})]}).issues[0].loc).to.deep.equal(['body', 'readings', 0, 'q_action'])
    expect(rejection({readings: []}).status).to.equal(400)
    expect(rejection('text').status).to.equal(400)
    expect(rejection({source: 'bad source!', readings: [good()]}).issues[0].loc).to.deep.equal(['body', 'source'])
  })

  it('takes ISO 8601 (zoned or UTC) or milliseconds since 1970, and refuses the server\'s own source names', async () => {
    const ms = Date.UTC(2026, 0, 1, 8, 30)
    const readings = parseIngestBatch({source: 'rig-2', readings: [good({timestamp: ms}), good({timestamp: String(ms + 1000)}), good({timestamp: '2026-01-01T09:30:02+01:00'}), good({timestamp: '2026-01-01T08:30:03'})]}, DEFAULT_INGEST_LIMITS, NOW)
    expect(readings.map((r) => r.timestamp)).to.deep.equal(['2026-01-01T08:30:00.000Z', '2026-01-01T08:30:01.000Z', '2026-01-01T08:30:02.000Z', '2026-01-01T08:30:03.000Z'])
    expect(rejection({readings: [good({timestamp: 1.5})]}).issues[0]).to.include({type: 'datetime_parsing'})
    expect(rejection({readings: [good({timestamp: 5})]}).issues[0]).to.include({type: 'datetime_parsing'})
    expect(rejection({source: 'simulator', readings: [good()]}).issues[0].loc).to.deep.equal(['body', 'source'])
  })

  it('checks per-cell arrays against the source\'s registered cell count', async () => {
    const limits = {...DEFAULT_INGEST_LIMITS, cellsOf: (name: string) => (name === 'big' ? 3 : undefined)}
    expect(parseIngestBatch({source: 'big', readings: [good({cell_voltages: [0.5, 0.5, 0.5]})]}, limits, NOW)[0].cell_voltages).to.deep.equal([0.5, 0.5, 0.5])
    expect(rejection({source: 'big', readings: [good()]}, limits).issues[0].msg).to.equal('Unknown cell 4: the stack has 3 cells')
  })

  it('rejects a huge batch before looking at its readings', async () => {
    const error = rejection({readings: Array.from({length: 11}, () => good())}, {cells: 5, maxBatch: 10})
    expect(error.status).to.equal(400)
    expect(error.message).to.equal('The batch has 11 readings; the limit is 10 per request')
  })

  it('stores nothing of a batch with one bad reading, and publishes only after commit and acknowledgement, in commit order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mfc-ingest-'))
    const history = await openHistory(join(dir, 'h.sqlite'), {retentionDays: 0, clock: {now: () => NOW}})
    try {
      const published: Reading[][] = []
      const counts: Promise<number>[] = []
      const events: string[] = []
      const commit = new GroupCommit(history, (r) => {
        counts.push(history.count())
        published.push(r)
        events.push(`published ${r.length}`)
      })
      const service = new IngestService(commit, DEFAULT_INGEST_LIMITS, {now: () => NOW})
      await service.ingest({readings: [good(), good(), good({total_power: -1})]}).then(() => expect.fail('accepted a bad batch'), (error: unknown) => expect(error).to.be.instanceOf(DataValidationError))
      expect(await history.count()).to.equal(0)
      // The same (source, timestamp) twice: stored once, the receipt says so.
      expect(await service.ingest({readings: [good(), good()]})).to.deep.equal({status: 'stored', accepted: 2, duplicates: 1, source: 'ingest', first_timestamp: '2026-01-01T09:00:00.000Z', last_timestamp: '2026-01-01T09:00:00.000Z'})
      events.push('acknowledged')
      expect(await history.count()).to.equal(1)
      await commit.drain()
      expect(published).to.have.length(1)
      expect(await Promise.all(counts), 'published after the commit').to.deep.equal([1])
      // The second batch gathers while the first commits: two commits, published in their order, each after its writer was answered.
      const at = Date.UTC(2026, 0, 1, 10)
      const first = commit.submit(series(1, at)).then(() => events.push('acknowledged 1'))
      await new Promise((resolve) => {
        setImmediate(resolve)
      })
      const second = commit.submit(series(2, at + 1000)).then(() => events.push('acknowledged 2'))
      await Promise.all([first, second])
      await commit.drain()
      expect(events).to.deep.equal(['acknowledged', 'published 1', 'acknowledged 1', 'published 1', 'acknowledged 2', 'published 2'])
      expect(commit.commits).to.equal(3)
    } finally {
      await history.close()
      await rm(dir, {recursive: true, force: true})
    }
  })
})

describe('isoTimestamp', () => {
  it('is new Date(ms).toISOString() for every whole millisecond, any day, and outside 1970 to 9999', () => {
    fc.assert(fc.property(fc.integer({min: -62_198_755_200_000, max: 8_640_000_000_000_000}), (ms) => {
      expect(isoTimestamp(ms)).to.equal(new Date(ms).toISOString())
    }), {numRuns: 5000})
    fc.assert(fc.property(fc.integer({min: 0, max: Date.UTC(9999, 11, 31, 23, 59, 59, 999)}), (ms) => {
      expect(isoTimestamp(ms)).to.equal(new Date(ms).toISOString())
    }), {numRuns: 20_000})
    // Day boundaries and leap days, in order and out of order (the day part is kept between calls).
    const edges = [Date.UTC(2024, 1, 28, 23, 59, 59, 999), Date.UTC(2024, 1, 29), Date.UTC(2024, 2, 1), Date.UTC(1970, 0, 1), Date.UTC(2000, 0, 1) - 1, Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(2026, 5, 30, 12, 0, 0, 7)]
    for (const ms of [...edges, ...edges.reverse()]) expect(isoTimestamp(ms)).to.equal(new Date(ms).toISOString())
    expect(() => isoTimestamp(Number.NaN)).to.throw(RangeError)
    expect(isoTimestamp(1.5)).to.equal(new Date(1.5).toISOString())
  })
})

describe('CSV follower (the original gui_simulation_data_*.csv.gz)', () => {
  let dir: string
  let history: HistoryStore
  const header = 'time_hours,reservoir_concentration,outlet_concentration,total_power,biofilm_thicknesses,substrate_addition_rate,q_action,epsilon,reward'
  const row = (h: number) => `${h},25.1,25.05,2.1e-05,"[1.1, 1.2, 1.0]",0.0,3,0.3627,-36.3`

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-follow-'))
    history = await openHistory(join(dir, 'h.sqlite'), {retentionDays: 0, clock: {now: () => NOW}})
  })
  afterEach(async () => {
    await history.close()
    await rm(dir, {recursive: true, force: true})
  })

  it('splits quoted CSV fields like pandas writes them', async () => {
    expect(splitCsvLine('1,"[1.0, 2.0]","a ""q"""')).to.deep.equal(['1', '[1.0, 2.0]', 'a "q"'])
  })

  it('streams new rows once, across rewrites and restarts, with no duplicates', async () => {
    const data = join(dir, 'data')
    const run = join(data, 'gui_simulation_20260101_120000')
    await mkdir(run, {recursive: true})
    const file = join(run, 'gui_simulation_data_20260101_120000.csv.gz')
    const write = (rows: number) => writeFile(file, gzipSync([header, ...Array.from({length: rows}, (_, i) => row(i * 3))].join('\n') + '\n'))
    const published: Reading[] = []
    let follower = new CsvFollower(data, history, (r) => published.push(...r), silentLogger)
    await write(3)
    expect(await follower.scan()).to.equal(3)
    expect(await follower.scan()).to.equal(0)
    await write(5) // the GUI rewrites the whole file with two more rows
    expect(await follower.scan()).to.equal(2)
    expect(published.map((r) => r.time_hours)).to.deep.equal([0, 3, 6, 9, 12])
    expect(published[0]).to.include({reservoir_concentration: 25.1, q_action: 3, source: 'file:gui_simulation_data_20260101_120000.csv.gz'})
    expect(published[0].biofilm_thicknesses).to.deep.equal([1.1, 1.2, 1])
    follower.close()
    follower = new CsvFollower(data, history, (r) => published.push(...r), silentLogger)
    expect(await follower.scan()).to.equal(0)
    await write(6)
    expect(await follower.scan()).to.equal(1)
    expect(await history.count()).to.equal(6)
    follower.close()
  })
})

import {expect} from 'chai'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {exportChunks} from '../../../src/services/data/export.js'
import {type HistoryStore, openHistory} from '../../../src/services/data/history.js'
import {collect, reading} from '../../helpers/readings.js'

/** Issue 16: a cell a spreadsheet would run as a formula is exported as text. */
describe('CSV export: formula-looking cells (CSV injection)', () => {
  let dir: string
  let history: HistoryStore
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-csv-'))
    history = await openHistory(join(dir, 'history.sqlite'), {retentionDays: 7, clock: {now: () => new Date(Date.UTC(2026, 0, 2))}})
  })
  after(async () => {
    await history.close()
    await rm(dir, {recursive: true, force: true})
  })

  it('prefixes text cells starting with = + - @ tab or CR with a quote; numbers (negative ones too) stay numbers', async () => {
    const sources = ['=HYPERLINK("http://evil.example","x")', '+1+1', '-2+3', '@SUM(A1)', '\tcmd', '\rcmd', 'rig-1']
    await history.insert(sources.map((source, i) => reading({source, timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), reward: -36.5})))
    const lines = (await collect(exportChunks(history, 'csv'))).join('').trim().split('\n')
    const rows = lines.slice(1).join('\n')
    expect(rows).to.include(`"'=HYPERLINK(""http://evil.example"",""x"")"`)
    for (const cell of ["'+1+1", "'-2+3", "'@SUM(A1)", "'\tcmd"]) expect(rows, JSON.stringify(cell)).to.include(`,${cell},`)
    expect(rows).to.include(`"'\rcmd"`)
    const plain = lines.slice(1).find((line) => line.includes('rig-1'))!
    expect(plain).to.include(',rig-1,')
    expect(plain).to.include(',-36.5,')
    expect(plain).not.to.include("'")
  })
})

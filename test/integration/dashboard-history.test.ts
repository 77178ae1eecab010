import Database from 'better-sqlite3'
import {expect} from 'chai'
import type {Page} from 'playwright-core'

import {openHistory} from '../../src/services/data/history.js'
import {type Chromium, launchChromium} from '../helpers/chromium.js'
import {type ServeProcess, spawnServe, writeDataSettings} from '../helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../helpers/serve.js'

type Columns = [number[], (number | null)[], (number | null)[], (number | null)[]]
const DAY = 86_400_000
const SOURCES = ['lab-1', 'lab-2', 'lab-3']

/**
 * History browsing in Debian's chromium: a 30-day, 1 Hz history of three sources (7.8 million
 * readings and their per-minute rollups, written straight into serve's SQLite before it starts,
 * as the store writes them), the month view checked bucket by bucket against the database's own
 * aggregate SQL over the raw readings, a drag-zoom down to about an hour drawn reading by
 * reading, pan, the export link of the visible range, and back to live.
 */
describe('dashboard history browsing (30 days at 1 Hz, three sources), in Chromium', function () {
  this.timeout(600_000)
  let site: TestSite
  let serve: ServeProcess
  let browser: Chromium
  let page: Page
  let db: Database.Database
  const problems: string[] = []

  const box = () => page.locator('#history-charts')
  const data = async () => box().evaluate((el) => ({...(el as unknown as {dataset: Record<string, string>}).dataset}))
  const drawn = async (id: string): Promise<Columns> => JSON.parse(await page.locator(id).getAttribute('data-series') ?? '[]') as Columns

  /** The buckets as the database computes them from the raw readings (not the rollups serve reads). */
  const expectedBuckets = (source: string, column: string, from: number, to: number, width: number) =>
    db.prepare(`SELECT ? + CAST((ts - ?) / ? AS INTEGER) * ? AS t, min(${column}) AS lo, max(${column}) AS hi, avg(${column}) AS mean
      FROM readings WHERE source = ? AND ts >= ? AND ts <= ? GROUP BY CAST((ts - ?) / ? AS INTEGER) ORDER BY t`)
      .all(from, from, width, width, source, from, to, from, width) as {t: number; lo: number; hi: number; mean: number}[]

  const expectClose = (actual: (number | null)[], expected: number[], what: string) => {
    expect(actual.length, what).to.equal(expected.length)
    for (const [i, v] of expected.entries()) expect(actual[i], `${what} #${i}`).to.be.closeTo(v, Math.abs(v) * 1e-9 + 1e-12)
  }

  /** Waits for the history view to finish a load other than the one described by `before`. */
  const nextLoad = async (before: Record<string, string | undefined>) => {
    await page.waitForFunction(({from, to}) => {
      const el = (globalThis as unknown as {document: {getElementById(id: string): {dataset: Record<string, string>}}}).document.getElementById('history-charts')
      return el.dataset.state === 'ready' && (el.dataset.from !== from || el.dataset.to !== to)
    }, {from: before.from, to: before.to})
    return data()
  }

  before(async function () {
    site = await testSite()
    const now = Math.floor(Date.now() / 1000) * 1000
    const start = now - 30 * DAY - 3_600_000
    await (await openHistory(site.config.paths.historyDb, {retentionDays: 0, clock: {now: () => new Date()}})).close()
    db = new Database(site.config.paths.historyDb)
    db.pragma('journal_mode = WAL')
    const cells = JSON.stringify({b: [10, 10, 10], v: [0.5, 0.5, 0.5], p: null, ph: null, t: null})
    const seconds = (now - start) / 1000
    for (const [i, source] of SOURCES.entries()) {
      db.prepare(`WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < ?)
        INSERT INTO readings (ts, source, time_hours, reservoir, outlet, total_power, addition, cells, seq, voltage_mean)
        SELECT ? + n * 1000, ?, n / 3600.0, ${10 * i} + 20 + (n % 600) / 60.0 + ((n * 7919) % 1000) / 1000.0, 19 + (n % 7) / 10.0,
          0.001 + ${i} * 0.0001 + (n % 97) * 1e-6, 0, ?, 0, 0.5 FROM s`).run(seconds, start, source, cells)
      db.prepare('INSERT INTO sources (name, cells, first_seen, last_seen, readings) VALUES (?, 3, ?, ?, ?)').run(source, start, now, seconds + 1)
    }

    db.exec(`INSERT INTO rollup_1m SELECT source, (ts / 60000) * 60000, count(*), ${['reservoir', 'outlet', 'total_power', 'addition', 'voltage_mean'].map((f) => `min(${f}), max(${f}), sum(${f}), count(${f})`).join(', ')}
      FROM readings GROUP BY source, ts / 60000`)
    writeDataSettings(site, {simulation_autostart: false, rate_limit_per_minute: 0, data_retention_days: 0})
    serve = await spawnServe(site)
    browser = await launchChromium()
    page = await browser.context.newPage()
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`${message.text()} (${message.location().url})`)
    })
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
    await page.goto(`https://127.0.0.1:${serve.ports.dashboard}/`)
    await page.locator('#token').fill(TEST_TOKEN)
    await page.click('#login button[type=submit]')
    await page.locator('#conn.pill-on').waitFor()
  })

  after(async () => {
    db?.close()
    await browser?.close()
    if (serve) await serve.stop()
    await site?.temp.cleanup()
  })

  it('draws the month of one source as min/max/mean buckets equal to the database\'s own aggregates', async () => {
    await page.click('.tabs button[data-tab=monitor]')
    await page.locator('#source option[value="lab-2"]').waitFor({state: 'attached'})
    await page.selectOption('#source', 'lab-2')
    await page.selectOption('#range', String(30 * DAY))
    await page.locator('#history-charts[data-state=ready][data-source="lab-2"]').waitFor()
    expect(await page.locator('#live-charts').isHidden()).to.equal(true)
    const view = await data()
    expect(Number(view.to) - Number(view.from)).to.equal(30 * DAY)
    expect(view.resolution).to.equal('buckets')
    const width = Number(view.bucketMs)
    expect(width % 60_000, 'whole minutes (served from the rollups)').to.equal(0)
    const from = Math.floor(Number(view.from) / 60_000) * 60_000
    for (const [id, column] of [['#hist-reservoir', 'reservoir'], ['#hist-power', 'total_power']]) {
      const [t, lo, hi, mean] = await drawn(id)
      const expected = expectedBuckets('lab-2', column, from, Number(view.to), width)
      expect(expected.length).to.be.within(100, 2000)
      expect(t).to.deep.equal(expected.map((b) => b.t / 1000))
      expectClose(lo, expected.map((b) => b.lo), `${id} min`)
      expectClose(hi, expected.map((b) => b.hi), `${id} max`)
      expectClose(mean, expected.map((b) => b.mean), `${id} mean`)
    }

    expect(Number(await page.locator('#hist-reservoir').getAttribute('data-points'))).to.be.within(100, 2000)
  })

  it('zooms by drag-select down to about an hour, drawn reading by reading', async () => {
    let view = await data()
    const target = Number(view.from) + 12 * DAY + 1_234_567
    for (let round = 0; round < 6 && Number(view.to) - Number(view.from) > 1.2 * 3_600_000; round++) {
      const over = (await page.locator('#hist-reservoir .u-over').boundingBox())!
      const pxPerMs = over.width / (Number(view.to) - Number(view.from))
      const center = over.x + (target - Number(view.from)) * pxPerMs
      const half = Math.max(10, (3_600_000 * pxPerMs) / 2)
      await page.mouse.move(center - half, over.y + over.height / 2)
      await page.mouse.down()
      await page.mouse.move(center + half, over.y + over.height / 2, {steps: 5})
      await page.mouse.up()
      view = await nextLoad(view)
    }

    const [from, to] = [Number(view.from), Number(view.to)]
    expect(to - from).to.be.within(0.8 * 3_600_000, 1.2 * 3_600_000)
    expect(from).to.be.below(target).and.to.be.above(target - 3_600_000)
    expect(view.resolution).to.equal('raw')
    expect(await page.inputValue('#range')).to.equal('custom')
    const rows = db.prepare('SELECT ts, reservoir, total_power FROM readings WHERE source = ? AND ts >= ? AND ts <= ? ORDER BY ts')
      .all('lab-2', from, to) as {ts: number; reservoir: number; total_power: number}[]
    expect(rows.length).to.be.above(2800)
    const [t, lo, hi, mean] = await drawn('#hist-reservoir')
    expect(t).to.deep.equal(rows.map((r) => r.ts / 1000))
    for (const series of [lo, hi, mean]) expectClose(series, rows.map((r) => r.reservoir), 'reservoir reading')
    expectClose((await drawn('#hist-power'))[3], rows.map((r) => r.total_power), 'power reading')
  })

  it('links "Export visible range" to the CSV of exactly the visible range', async () => {
    const view = await data()
    const href = (await page.getAttribute('#export-range', 'href'))!
    const url = new URL(href, 'https://x/')
    expect(url.pathname).to.equal('/data/export/csv')
    expect(url.searchParams.get('source')).to.equal('lab-2')
    expect(Date.parse(url.searchParams.get('from')!)).to.equal(Number(view.from))
    expect(Date.parse(url.searchParams.get('to')!)).to.equal(Number(view.to))
    const csv = await page.evaluate(async (link) => (await fetch(link)).text(), href)
    const {n} = db.prepare('SELECT count(*) AS n FROM readings WHERE source = ? AND ts >= ? AND ts <= ?').get('lab-2', Number(view.from), Number(view.to)) as {n: number}
    expect(csv.trim().split('\n').length, 'a header plus one line per reading').to.equal(n + 1)
  })

  it('pans by half the visible width and zooms out, re-querying each range', async () => {
    const view = await data()
    const width = Number(view.to) - Number(view.from)
    await page.click('#pan-earlier')
    const panned = await nextLoad(view)
    expect(Number(panned.from)).to.equal(Number(view.from) - Math.round(width / 2))
    expect(Number(panned.to) - Number(panned.from)).to.equal(width)
    await page.click('#zoom-out')
    const out = await nextLoad(panned)
    expect(Number(out.to) - Number(out.from)).to.be.closeTo(2 * width, 2)
    expect(out.resolution).to.equal('raw')
    expect(Number(out.points)).to.be.above(5600)
  })

  it('refuses a custom range that ends before it starts, saying which fields, and keeps the view', async () => {
    const view = await data()
    expect(await page.locator('#custom-range').isVisible()).to.equal(true)
    await page.fill('#range-from', '2026-03-02T10:00:00')
    await page.fill('#range-to', '2026-03-01T10:00:00')
    await page.click('#range-apply')
    await page.locator('#range-error', {hasText: 'enter both "From" and "To", with "To" after "From"'}).waitFor()
    expect(await data()).to.include({from: view.from, to: view.to, state: 'ready'})
  })

  it('goes back to live points, and logged no console errors', async () => {
    await page.selectOption('#range', 'live')
    await page.locator('#live-charts').waitFor()
    expect(await box().isHidden()).to.equal(true)
    expect(await page.locator('#history-nav').isHidden()).to.equal(true)
    expect(problems).to.deep.equal([])
  })
})

import {expect} from 'chai'

import type {Page} from 'playwright-core'
import {Agent, fetch} from 'undici'

import {type Chromium, launchChromium, morePoints} from '../helpers/chromium.js'
import {type ServeProcess, spawnServe, writeDataSettings} from '../helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../helpers/serve.js'

type Json = any

/**
 * The dashboard with several sources in Debian's chromium: the default simulator run plus two
 * rigs posting to /data/ingest (rig-a at 22 mM (inside the default band), rig-b at 33 mM, so a chart shows whose points it
 * holds), one rig going silent and coming back, and a per-source threshold.
 */
describe('dashboard with two ingesting rigs and the simulator, in Chromium', function () {
  this.timeout(120_000)
  let site: TestSite
  let serve: ServeProcess
  let browser: Chromium
  let page: Page
  let dispatcher: Agent
  const problems: string[] = []
  const posting = new Map<string, NodeJS.Timeout>()

  const call = async (method: string, path: string, body?: unknown): Promise<Json> => {
    const response = await fetch(serve.url('api') + path, {
      method, dispatcher, headers: {authorization: `Bearer ${TEST_TOKEN}`, ...(body === undefined ? {} : {'content-type': 'application/json'})},
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const json = await response.json() as Json
    if (response.status !== 200) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`)
    return json
  }

  /** Posts one reading of `source` every 250 ms (ms timestamps, as a rig's clock gives them). */
  const startPosting = (source: string, reservoir: number) => {
    const post = () => void call('POST', '/data/ingest', {source, readings: [{
      timestamp: Date.now(), time_hours: 0, reservoir_concentration: reservoir, outlet_concentration: reservoir - 0.1, total_power: 0.00213,
      cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5], biofilm_thicknesses: [10, 10, 10, 10, 10],
    }]}).catch((error: unknown) => problems.push(`post ${source}: ${(error as Error).message}`))
    post()
    posting.set(source, setInterval(post, 250))
  }

  const stopPosting = (source: string) => {
    clearInterval(posting.get(source))
    posting.delete(source)
  }

  const row = (source: string) => page.locator(`#overview tr[data-source="${source}"]`)

  before(async () => {
    site = await testSite()
    // The default run (simulation_autostart) with a faster sample, and short silences.
    writeDataSettings(site, {simulation_sample_ms: 250, source_stale_after_s: 1, source_offline_after_s: 2, rate_limit_per_minute: 0})
    serve = await spawnServe(site)
    dispatcher = new Agent({connect: {ca: site.caPem}})
    await call('POST', '/alerts/config', {source: 'rig-b', alerts: [{parameter: 'reservoir_concentration', threshold_min: 10, threshold_max: 20}]})
    startPosting('rig-a', 22)
    startPosting('rig-b', 33)
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
    for (const source of [...posting.keys()]) stopPosting(source)
    await browser?.close()
    await dispatcher?.close()
    if (serve) await serve.stop()
    await site?.temp.cleanup()
  })

  it('lists every source in the overview, online, with its latest values in SI units', async () => {
    await page.click('.tabs button[data-tab=sources]')
    for (const source of ['simulator', 'rig-a', 'rig-b']) await row(source).and(page.locator('[data-state=online]')).waitFor()
    expect(await row('rig-a').textContent()).to.include('2.13 mW').and.include('22 mM')
    expect(await row('rig-b').textContent()).to.include('33 mM')
  })

  it('draws only the selected source in the monitor charts', async () => {
    await row('rig-a').locator('button').click()
    await page.waitForFunction(morePoints, {id: '#chart-substrate', n: 1})
    const span = async () => page.locator('#chart-substrate').evaluate((el) => [el.getAttribute('data-ymin'), el.getAttribute('data-ymax')])
    expect(await span()).to.deep.equal(['22', '22'])
    await page.waitForTimeout(600) // stream updates of all three sources arrive meanwhile
    expect(await span(), 'no point of rig-b (33) or the simulator').to.deep.equal(['22', '22'])
    expect(await page.textContent('#m-conc')).to.equal('22.00 mM')
    await page.selectOption('#source', 'rig-b')
    await page.locator('#chart-substrate[data-ymin="33"]').waitFor()
    expect(await span()).to.deep.equal(['33', '33'])
    await page.selectOption('#source', 'simulator')
    await page.locator('#chart-substrate:not([data-ymin="22"]):not([data-ymin="33"]):not([data-ymin=""])').waitFor()
    const [min, max] = (await span()).map(Number)
    expect(min).to.be.within(0, 100)
    expect([min, max].some((v) => v !== 22 && v !== 33), 'the simulator\'s own values').to.equal(true)
  })

  it('raises the per-source threshold for rig-b only, naming its source and the real value', async () => {
    await page.locator('#alerts-bar', {hasText: 'rig-b: reservoir_concentration value of 33 mM'}).waitFor()
    const bar = await page.textContent('#alerts-bar')
    expect(bar).not.to.match(/rig-a: reservoir|simulator: reservoir/)
    await page.click('.tabs button[data-tab=sources]')
    await row('rig-b').locator('td.alert-on', {hasText: 'reservoir_concentration 33 mM'}).waitFor()
    expect(await row('rig-a').locator('td.alert-off').count()).to.equal(1)
  })

  it('shows a rig go offline (with a "no data" alert) and come back', async () => {
    stopPosting('rig-a')
    await row('rig-a').and(page.locator('[data-state=offline]')).waitFor({timeout: 15_000})
    // The state follows the last-seen time, the alert the silence check's next round: wait for both.
    await row('rig-a').locator('td.alert-on', {hasText: 'no data'}).waitFor()
    await page.locator('#alerts-bar', {hasText: 'rig-a: no data'}).waitFor()
    expect(await row('rig-b').getAttribute('data-state')).to.equal('online')
    startPosting('rig-a', 22)
    await row('rig-a').and(page.locator('[data-state=online]')).waitFor({timeout: 15_000})
    await page.locator('#alerts-bar', {hasText: 'rig-a: no data'}).waitFor({state: 'detached'})
  })

  it('sets a threshold for one source in its view (only that source alerts), shows the server\'s validation message, and clears it again', async () => {
    await page.click('.tabs button[data-tab=sources]')
    await row('rig-a').locator('button').click()
    await page.locator('#st-source', {hasText: 'rig-a'}).waitFor()
    const threshold = page.locator('#st-rows tr[data-parameter=reservoir_concentration]')
    await threshold.and(page.locator('[data-origin=default]')).waitFor()
    expect(await threshold.locator('td.applies').textContent()).to.equal('global default')
    expect(await threshold.locator('td.state').textContent()).to.equal('ok')

    // A band the server refuses: its 422 message, and nothing stored.
    await threshold.locator('input[name=threshold_min]').fill('25')
    await threshold.locator('input[name=threshold_max]').fill('21')
    await threshold.locator('button.st-save').click()
    await page.locator('#st-msg.fail', {hasText: 'threshold_min must be below threshold_max'}).waitFor()
    expect(await page.textContent('#st-msg')).to.include('Not saved (reservoir_concentration for rig-a)')
    expect((await call('GET', '/alerts/config?source=rig-a')).overrides).to.deep.equal([])
    // Chromium logs every non-2xx response; this one was asked for, and is the only one.
    const refused = problems.findIndex((p) => p.startsWith('Failed to load resource: the server responded with a status of 422') && p.includes('/alerts/config?source=rig-a'))
    expect(refused, problems.join('\n')).to.be.greaterThan(-1)
    problems.splice(refused, 1)

    // 10-20 mM for rig-a only: rig-a's 22 mM alerts; the simulator and rig-a's neighbours keep their own thresholds.
    await threshold.locator('input[name=threshold_min]').fill('10')
    await threshold.locator('input[name=threshold_max]').fill('20')
    await threshold.locator('button.st-save').click()
    await page.locator('#st-msg.ok', {hasText: 'for source rig-a'}).waitFor()
    await threshold.and(page.locator('[data-origin=source]')).waitFor()
    expect(await threshold.locator('td.applies').textContent()).to.equal('this source (default: ≥ 20 mM, ≤ 30 mM)')
    await page.locator('#alerts-bar', {hasText: 'rig-a: reservoir_concentration value of 22 mM'}).waitFor()
    await threshold.locator('td.state.alert-on', {hasText: 'ALERT 22 mM'}).waitFor()
    expect((await call('GET', '/alerts/config?source=rig-a')).overrides).to.deep.equal([{parameter: 'reservoir_concentration', threshold_min: 10, threshold_max: 20, enabled: true, email_notify: false}])
    expect((await call('GET', '/alerts/config')).alerts.find((t: Json) => t.parameter === 'reservoir_concentration'), 'the global default is untouched').to.include({threshold_min: 20, threshold_max: 30})
    const reservoirAlerts = async () => ((await call('GET', '/alerts')).alerts as Json[]).filter((a) => a.active && a.parameter === 'reservoir_concentration').map((a) => a.source).sort()
    expect(await reservoirAlerts(), 'rig-b has its own 10-20 band since the start; the simulator none').to.deep.equal(['rig-a', 'rig-b'])
    await page.click('.tabs button[data-tab=sources]')
    await row('rig-a').locator('td.alert-on', {hasText: 'reservoir_concentration 22 mM'}).waitFor()

    // "Use default": the global 20-30 band again, and rig-a's alert ends.
    await row('rig-a').locator('button').click()
    await threshold.locator('button.st-clear').click()
    await threshold.and(page.locator('[data-origin=default]')).waitFor()
    await page.locator('#alerts-bar', {hasText: 'rig-a: reservoir_concentration'}).waitFor({state: 'detached'})
    await threshold.locator('td.state.alert-off', {hasText: 'ok'}).waitFor()
    expect((await call('GET', '/alerts/config?source=rig-a')).overrides).to.deep.equal([])
    expect(await reservoirAlerts()).to.deep.equal(['rig-b'])
    expect(await page.textContent('#alerts-bar')).to.include('rig-b: reservoir_concentration')

    // A parameter the global set lacks: added for rig-a only, then removed.
    await page.selectOption('#st-add', 'outlet_concentration')
    await page.click('#st-add-button')
    const outlet = page.locator('#st-rows tr[data-parameter=outlet_concentration][data-origin=new]')
    await outlet.locator('input[name=threshold_max]').fill('20')
    await outlet.locator('button.st-save').click()
    const own = page.locator('#st-rows tr[data-parameter=outlet_concentration][data-origin=source]')
    await own.locator('td.state.alert-on', {hasText: 'ALERT 21.9 mM'}).waitFor()
    expect(await own.locator('td.applies').textContent()).to.equal('this source (default: none)')
    await page.locator('#alerts-bar', {hasText: 'rig-a: outlet_concentration value of 21.9 mM'}).waitFor()
    await own.locator('button.st-clear', {hasText: 'Remove'}).click()
    await page.locator('#st-rows tr[data-parameter=outlet_concentration]').waitFor({state: 'detached'})
    await page.locator('#alerts-bar', {hasText: 'rig-a: outlet_concentration'}).waitFor({state: 'detached'})
    expect(((await call('GET', '/alerts')).alerts as Json[]).filter((a) => a.active && a.parameter === 'outlet_concentration')).to.deep.equal([])
  })

  it('shows an alert raised while its stream was down once it reconnects (the page resyncs its alert list)', async () => {
    // A second tab of the same session whose WebSockets the test can cut and hold down: while
    // held, every reconnection is closed before it opens.
    const tab = await browser.context.newPage()
    await tab.addInitScript({content: `{
      const Real = WebSocket
      window.mfcSockets = []
      window.mfcHold = false
      window.WebSocket = class extends Real {
        constructor(url, protocols) {
          super(url, protocols)
          window.mfcSockets.push(this)
          if (window.mfcHold) this.close()
        }
      }
    }`})
    const raised = async () => ((await call('GET', '/alerts?source=rig-a')).alerts as Json[]).some((a) => a.active && a.parameter === 'outlet_concentration')
    try {
      await tab.goto(`https://127.0.0.1:${serve.ports.dashboard}/`)
      await tab.locator('#conn', {hasText: 'stream: live'}).waitFor()
      await tab.evaluate('window.mfcHold = true; for (const socket of window.mfcSockets) socket.close()')
      await tab.locator('#conn', {hasText: 'stream: closed'}).waitFor()
      await call('POST', '/alerts/config?source=rig-a', [{parameter: 'outlet_concentration', threshold_max: 20}])
      for (let tries = 0; !(await raised()); tries++) {
        if (tries > 100) throw new Error('the server never raised rig-a\'s outlet_concentration alert')
        await new Promise((resolve) => setTimeout(resolve, 100))
      }

      await page.locator('#alerts-bar', {hasText: 'rig-a: outlet_concentration value of 21.9 mM'}).waitFor()
      expect(await tab.textContent('#alerts-bar'), 'the held tab missed the event').not.to.include('rig-a: outlet_concentration')
      await tab.evaluate('window.mfcHold = false')
      await tab.locator('#conn', {hasText: 'stream: live'}).waitFor({timeout: 45_000})
      await tab.locator('#alerts-bar', {hasText: 'rig-a: outlet_concentration value of 21.9 mM'}).waitFor()
    } finally {
      await tab.close()
      await call('DELETE', '/alerts/config?source=rig-a&parameter=outlet_concentration')
    }

    await page.locator('#alerts-bar', {hasText: 'rig-a: outlet_concentration'}).waitFor({state: 'detached'})
  })

  it('shows the real value with its unit in the Configuration tab and draws inline SVG icons, no emoji', async () => {
    await page.click('.tabs button[data-tab=config]')
    await page.locator('#thresholds tr[data-parameter=reservoir_concentration] td.alert-on', {hasText: 'ALERT rig-b 33 mM'}).waitFor()
    const glyphs = await page.evaluate(() => {
      const d = (globalThis as unknown as {document: {body: {innerText: string}; querySelectorAll(s: string): ArrayLike<{getAttribute(a: string): string | null}>; getElementById(id: string): unknown}}).document
      const uses = Array.from(d.querySelectorAll('svg.icon use')).map((u) => u.getAttribute('href') ?? '')
      return {emoji: d.body.innerText.match(/\p{Extended_Pictographic}/gu) ?? [], uses: uses.length, missing: uses.filter((href) => !d.getElementById(href.slice(1)))}
    })
    expect(glyphs.emoji, 'emoji show as boxes without an emoji font').to.deep.equal([])
    expect(glyphs.uses).to.be.greaterThan(10)
    expect(glyphs.missing).to.deep.equal([])
  })

  it('opened the default run without a permanent alert for the simulator (its built-in overrides shown in its view), and logged no console errors', async () => {
    expect(await page.textContent('#alerts-bar')).not.to.include('simulator')
    expect((await call('GET', '/alerts?source=simulator')).alerts.filter((a: Json) => a.active)).to.deep.equal([])
    await page.click('.tabs button[data-tab=sources]')
    await row('simulator').locator('button').click()
    const reservoir = page.locator('#st-rows tr[data-parameter=reservoir_concentration][data-origin=source]')
    await reservoir.waitFor()
    expect(await reservoir.locator('input[name=enabled]').isChecked()).to.equal(false)
    expect(await reservoir.locator('button.st-clear').textContent()).to.include('Use default')
    expect(problems).to.deep.equal([])
  })
})

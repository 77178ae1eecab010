import {expect} from 'chai'
import {execFileSync} from 'node:child_process'

import type {Page} from 'playwright-core'
import {Agent, fetch} from 'undici'

import {type Chromium, launchChromium, morePoints} from '../helpers/chromium.js'
import {type ServeProcess, spawnServe, writeDataSettings} from '../helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../helpers/serve.js'

type Json = any

/**
 * The dashboard of a real `mfc serve` process in Debian's chromium, with serve's default
 * rate limits: its login page, session cookie, CSRF header, CSP and streamer Origin check.
 */
describe('dashboard of a real mfc serve in Chromium', function () {
  this.timeout(120_000)
  let site: TestSite
  let serve: ServeProcess
  let browser: Chromium
  let page: Page
  let dispatcher: Agent
  const problems: string[] = []
  const limited: string[] = []

  /** The API as a script would call it (bearer token), to check what the page did. */
  const api = async (path: string): Promise<Json> => {
    const response = await fetch(serve.url('api') + path, {dispatcher, headers: {authorization: `Bearer ${TEST_TOKEN}`}})
    return response.json()
  }

  const dashboardUrl = () => `https://127.0.0.1:${serve.ports.dashboard}`

  async function logIn(token = TEST_TOKEN): Promise<void> {
    await page.locator('#token').fill(token)
    await page.click('#login button[type=submit]')
  }

  before(async () => {
    site = await testSite()
    writeDataSettings(site, {simulation_autostart: false, simulation_speed: 20, simulation_sample_ms: 200})
    serve = await spawnServe(site)
    dispatcher = new Agent({connect: {ca: site.caPem}})
    browser = await launchChromium()
    page = await browser.context.newPage()
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`${message.text()} (${message.location().url})`)
    })
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
    page.on('response', (response) => {
      if (response.status() === 429) limited.push(response.url())
    })
  })

  after(async () => {
    await browser?.close()
    await dispatcher?.close()
    if (serve) await serve.stop()
    await site?.temp.cleanup()
  })

  const pointsIn = (id: string) => page.locator(`#${id}`).getAttribute('data-points').then((v) => Number(v ?? 0))

  it("sends a visitor to serve's login page, rejects a wrong token, and logs in with the right one", async () => {
    await page.goto(dashboardUrl() + '/')
    expect(new URL(page.url()).pathname).to.equal('/login')
    await logIn('wrong-token')
    await page.locator('#message', {hasText: 'Invalid token'}).waitFor()
    problems.length = 0 // Chromium logs the 401 of the wrong token as a failed resource
    await Promise.all([page.waitForURL(dashboardUrl() + '/'), logIn()])
    await page.locator('#app').waitFor({state: 'visible'})
    await page.locator('#conn.pill-on').waitFor()
  })

  it('gets its assets pre-compressed and the strict CSP', async () => {
    const response = await page.request.get(dashboardUrl() + '/app.js', {headers: {'accept-encoding': 'br, gzip'}})
    expect(response.status()).to.equal(200)
    expect(response.headers()['content-encoding']).to.equal('br')
    const csp = (await page.request.get(dashboardUrl() + '/')).headers()['content-security-policy']
    expect(csp).to.include("script-src 'self'")
    expect(csp).to.include(`wss://127.0.0.1:${serve.ports.streamer}`)
    expect(csp).not.to.match(/unsafe-inline|unsafe-eval/)
  })

  it('starts a simulation from the form and the charts receive points from the stream', async () => {
    await page.fill('input[name=duration_hours]', '500')
    await page.fill('input[name=n_cells]', '4')
    await page.click('#start')
    await page.locator('#sim-state.state-running').waitFor()
    expect((await api('/simulation/status')).config).to.include({n_cells: 4, duration_hours: 500})
    await page.click('button[data-tab=monitor]')
    await page.waitForFunction(morePoints, {id: '#chart-substrate', n: 2})
    const first = await pointsIn('chart-substrate')
    await page.waitForFunction(morePoints, {id: '#chart-substrate', n: first})
    // One voltage series per cell of the 4-cell run (the rebuilt chart follows the cell count).
    expect(await page.locator('#chart-voltage .u-legend .u-series').count()).to.equal(4)
    expect(await page.locator('#chart-substrate canvas').count()).to.be.at.least(1)
    expect(await page.textContent('#m-conc')).to.match(/\d+\.\d{2} mM/)
  })

  it('stops the simulation and shows it stopped with its performance metrics', async () => {
    await page.click('button[data-tab=control]')
    await page.click('#stop')
    await page.locator('#sim-state.state-stopped').waitFor()
    expect((await api('/simulation/status')).state).to.equal('stopped')
    await page.click('button[data-tab=performance]')
    await page.locator('#perf .metric').first().waitFor()
    expect(await page.locator('#perf .metric').count()).to.equal(8)
  })

  it('exports CSV and JSON from the buttons', async () => {
    const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')])
    expect(csv.suggestedFilename()).to.match(/^mfc_simulation_data_\d{8}_\d{6}\.csv$/)
    const csvText = (await import('node:fs')).readFileSync((await csv.path())!, 'utf8')
    expect(csvText.split('\n')[0]).to.match(/^timestamp,source,run_id,time_hours,reservoir_concentration/)
    const [json] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')])
    expect(json.suggestedFilename()).to.match(/^mfc_simulation_data_\d{8}_\d{6}\.json$/)
    const rows = JSON.parse((await import('node:fs')).readFileSync((await json.path())!, 'utf8')) as Json[]
    expect(rows.length).to.equal((await api('/dashboard/info')).history.readings)
  })

  it('changes an alert threshold and the change survives a reload', async () => {
    await page.click('button[data-tab=config]')
    const row = page.locator('#thresholds tr[data-parameter=reservoir_concentration]')
    await row.waitFor()
    expect(await page.textContent('#ssl-status')).to.match(/days left/)
    await row.locator('input[name=threshold_min]').fill('21.5')
    await page.click('#alerts-save')
    await page.locator('#alerts-msg', {hasText: '✅'}).waitFor()
    await page.reload()
    await page.locator('#app').waitFor({state: 'visible'})
    await page.click('button[data-tab=config]')
    await page.locator('#thresholds tr[data-parameter=reservoir_concentration]').waitFor()
    expect(await page.inputValue('#thresholds tr[data-parameter=reservoir_concentration] input[name=threshold_min]')).to.equal('21.5')
    expect((await api('/alerts/config')).alerts.find((a: Json) => a.parameter === 'reservoir_concentration').threshold_min).to.equal(21.5)
  })

  it('shows a banner when the stream connection drops and reconnects by itself', async function () {
    expect((await api('/dashboard/info')).stream.clients).to.be.at.least(1)
    // A real network drop: the kernel destroys both ends of the WSS connection (needs CAP_NET_ADMIN).
    try {
      execFileSync('ss', ['-K', '-t', 'state', 'established', `( sport = :${serve.ports.streamer} or dport = :${serve.ports.streamer} )`], {stdio: 'pipe'})
    } catch {
      this.skip() // not permitted here; the restart test below still drops the stream
    }

    await page.locator('#banner').waitFor({state: 'visible'})
    await page.locator('#conn.pill-on').waitFor()
    await page.locator('#banner').waitFor({state: 'hidden'})
  })

  it('a normal session never meets the rate limit: reloads, tabs and polling under the default 60/min per address', async () => {
    for (let i = 0; i < 12; i++) {
      await page.reload()
      expect(limited, `429 on reload ${i + 1}`).to.deep.equal([])
      await page.locator('#conn.pill-on').waitFor()
      for (const tab of ['monitor', 'performance', 'config', 'control']) await page.click(`button[data-tab=${tab}]`)
    }

    await page.locator('#thresholds tr').first().waitFor({state: 'attached'})
    expect(limited).to.deep.equal([])
  })

  it('logged no console errors and no CSP violations', () => {
    expect(problems).to.deep.equal([])
  })

  it('when serve restarts (sessions are forgotten) it shows the banner, asks to log in again, and is live again', async () => {
    const {ports} = serve
    await page.click('button[data-tab=monitor]')
    await serve.stop()
    await page.locator('#banner').waitFor({state: 'visible'})
    serve = await spawnServe(site, ports)
    await page.waitForURL(dashboardUrl() + '/login')
    await Promise.all([page.waitForURL(dashboardUrl() + '/'), logIn()])
    await page.locator('#conn.pill-on').waitFor()
    expect(await page.locator('#banner').isHidden()).to.equal(true)
    // While serve was down Chromium logged the refused connections; nothing else.
    const unexpected = problems.filter((p) => !/ERR_CONNECTION_REFUSED|WebSocket connection to .* failed|status of 401/.test(p))
    expect(unexpected).to.deep.equal([])
    expect(limited).to.deep.equal([])
  })
})

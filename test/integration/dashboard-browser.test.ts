import {expect} from 'chai'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {type BrowserContext, type Page, chromium} from 'playwright-core'

import type {DataStack} from '../helpers/data-server.js'
import {TEST_TOKEN, buildDashboard, morePoints, startDashboard, startDataStack} from '../helpers/dashboard-harness.js'

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

describe('dashboard in real Chromium', function () {
  this.timeout(90_000)
  let stack: DataStack
  let dashboard: {url: string; app: {close(): Promise<unknown>}}
  let context: BrowserContext
  let page: Page
  let profile: string
  const problems: string[] = []

  before(async () => {
    buildDashboard()
    stack = await startDataStack({simulation_speed: 20, simulation_sample_ms: 200})
    stack.wiring.monitoring.setStreamPort(Number(new URL(stack.stream.url).port))
    dashboard = await startDashboard(stack)
    profile = await mkdtemp(join(tmpdir(), 'mfc-chromium-'))
    // A fresh --user-data-dir, given the way playwright wants it.
    context = await chromium.launchPersistentContext(profile, {executablePath: '/usr/bin/chromium', args: FLAGS, ignoreHTTPSErrors: true})
    // Runs before the page's own scripts; CSP does not apply to the automation's init script.
    await context.addInitScript({content: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"})
    page = await context.newPage()
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text())
    })
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
  })

  after(async () => {
    await context?.close()
    await dashboard?.app.close()
    await stack?.close()
    if (profile) await rm(profile, {recursive: true, force: true})
  })

  const pointsIn = (id: string) => page.locator(`#${id}`).getAttribute('data-points').then((v) => Number(v ?? 0))

  it('asks for the API token, rejects a wrong one, and logs in with the right one', async () => {
    await page.goto(dashboard.url + '/')
    await page.locator('#login').waitFor({state: 'visible'})
    await page.fill('#login-token', 'wrong')
    await page.click('#login-form button[type=submit]')
    await page.locator('#login-error').waitFor({state: 'visible'})
    expect(await page.textContent('#login-error')).to.equal('Invalid token')
    problems.length = 0 // the 401 of the wrong token is logged by Chromium as a failed resource
    await page.fill('#login-token', TEST_TOKEN)
    await Promise.all([page.waitForEvent('load'), page.click('#login-form button[type=submit]')])
    await page.locator('#app').waitFor({state: 'visible'})
    await page.locator('#conn.pill-on').waitFor()
  })

  it('starts a simulation from the form and the charts receive points from the stream', async () => {
    await page.fill('input[name=duration_hours]', '500')
    await page.fill('input[name=n_cells]', '4')
    await page.click('#start')
    await page.locator('#sim-state.state-running').waitFor()
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
    expect((await stack.wiring.monitoring.runner.status()).state).to.equal('stopped')
    await page.click('button[data-tab=performance]')
    await page.locator('#perf .metric').first().waitFor()
    expect(await page.locator('#perf .metric').count()).to.equal(8)
  })

  it('exports CSV from the button', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')])
    expect(download.suggestedFilename()).to.match(/^mfc_simulation_data_\d{8}_\d{6}\.csv$/)
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
    expect(stack.wiring.monitoring.alerts.config().alerts.find((a) => a.parameter === 'reservoir_concentration')?.threshold_min).to.equal(21.5)
  })

  it('shows a banner when the stream drops and reconnects by itself', async () => {
    const clients = stack.wiring.monitoring.hub.clientCount
    expect(clients).to.be.at.least(1)
    stack.wiring.monitoring.hub.close() // server closes every stream client (1001)
    await page.locator('#banner').waitFor({state: 'visible'})
    await page.locator('#conn.pill-on').waitFor()
    await page.locator('#banner').waitFor({state: 'hidden'})
  })

  it('logged no console errors and no CSP violations', () => {
    expect(problems).to.deep.equal([])
  })
})

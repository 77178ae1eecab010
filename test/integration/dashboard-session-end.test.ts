import {expect} from 'chai'

import type {Page} from 'playwright-core'

import {type Chromium, launchChromium} from '../helpers/chromium.js'
import {type ServeProcess, spawnServe, writeDataSettings} from '../helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, fetchText, testSite} from '../helpers/serve.js'

/**
 * Issue 16: a session ended elsewhere (a logout from another tab, expiry) closes the page's
 * stream with 4401, and the dashboard of a real `mfc serve` goes back to its login page.
 */
describe('dashboard in Chromium: the stream closes when its session ends', function () {
  this.timeout(120_000)
  let site: TestSite
  let serve: ServeProcess
  let browser: Chromium
  let page: Page
  const closeCodes: string[] = []

  before(async () => {
    site = await testSite()
    writeDataSettings(site, {simulation_autostart: false})
    serve = await spawnServe(site)
    browser = await launchChromium()
    // The page's own polling would also notice a dead session: record how its stream ended.
    await browser.context.addInitScript({content: `{
      const Native = window.WebSocket
      window.WebSocket = class extends Native {
        constructor(...args) { super(...args); this.addEventListener('close', (e) => console.log('stream-close ' + e.code)) }
      }
    }`})
    page = await browser.context.newPage()
    page.on('console', (message) => {
      if (message.text().startsWith('stream-close ')) closeCodes.push(message.text().slice(13))
    })
  })
  after(async () => {
    await browser?.close()
    if (serve) await serve.stop()
    await site?.temp.cleanup()
  })

  it('logs in, streams, and is sent to /login by the stream\'s 4401 once the session is logged out from outside the page', async () => {
    const dashboard = `https://127.0.0.1:${serve.ports.dashboard}`
    await page.goto(dashboard + '/')
    await page.locator('#token').fill(TEST_TOKEN)
    await Promise.all([page.waitForURL(dashboard + '/'), page.click('#login button[type=submit]')])
    await page.locator('#conn.pill-on').waitFor()

    // What another tab's logout does: the same cookie, its CSRF token, POST /logout.
    const session = (await browser.context.cookies(dashboard)).find((c) => c.name === 'mfc_session')!
    const cookie = `mfc_session=${session.value}`
    const {json} = await fetchText(`${dashboard}/session`, {ca: site.caPem, headers: {cookie}})
    const logout = await fetchText(`${dashboard}/logout`, {ca: site.caPem, method: 'POST', headers: {cookie, 'x-csrf-token': json.csrf_token}})
    expect(logout.status).to.equal(200)

    await page.waitForURL(dashboard + '/login')
    await page.locator('#token').waitFor({state: 'visible'})
    expect(closeCodes, 'the server closed the stream with 4401, and the page did not reconnect').to.deep.equal(['4401'])
  })
})

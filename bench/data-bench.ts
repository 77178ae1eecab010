/**
 * Monitoring data benchmarks against a real `mfc serve` process (bin/run.js, so `npm run build`
 * first): simulator steps/s, ingest readings/s (durable, over HTTPS), GET /data/latest
 * requests/s, dashboard first paint and bytes in Chromium. Every figure comes with a baseline
 * measured in the same run, and the ratio is what to compare across machines.
 *
 *   npm run build && npx tsx bench/data-bench.ts
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {cpus, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'

import {Agent, fetch} from 'undici'

import {openHistory} from '../src/services/data/history.js'
import {MfcStackModel} from '../src/services/data/simulator.js'
import {launchChromium, morePoints} from '../test/helpers/chromium.js'
import {series} from '../test/helpers/readings.js'
import {type ServeProcess, spawnServe, writeDataSettings} from '../test/helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../test/helpers/serve.js'

/** A real serve in a temp site; `settings` go into its ssl-config.json. */
async function startServe(settings: Record<string, unknown>): Promise<{site: TestSite; serve: ServeProcess; close(): Promise<void>}> {
  const site = await testSite()
  writeDataSettings(site, settings)
  const serve = await spawnServe(site)
  return {site, serve, async close() {
    await serve.stop()
    await site.temp.cleanup()
  }}
}

const results: Record<string, string> = {}
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en') : n.toFixed(2))

function simulator(): void {
  for (const cells of [5, 20]) {
    const model = new MfcStackModel({nCells: cells})
    const steps = 200_000
    const start = performance.now()
    for (let i = 0; i < steps; i++) model.step()
    const perSecond = steps / ((performance.now() - start) / 1000)
    // Baseline: what real time at the default speed needs (1 sim-h/s = 10 steps/s).
    results[`simulator ${cells} cells`] = `${fmt(perSecond)} steps/s = ${fmt(perSecond / 10)}x the default speed's need (10 steps/s)`
  }
}

async function ingest(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mfc-bench-'))
  const history = await openHistory(join(dir, 'h.sqlite'), {retentionDays: 0, clock: {now: () => new Date()}})
  const direct = (batch: number, total: number) => {
    const start = performance.now()
    for (let i = 0; i < total / batch; i++) history.insert(series(batch, Date.UTC(2026, 0, 1) + i * batch * 1000))
    return total / ((performance.now() - start) / 1000)
  }

  const directBatched = direct(1000, 50_000)
  const directSingle = direct(1, 500)
  history.close()
  await rm(dir, {recursive: true, force: true})

  // Throughput, not the limiter, is measured here: the per-address limit is off for this serve.
  const stack = await startServe({simulation_autostart: false, rate_limit_per_minute: 0})
  const apiUrl = stack.serve.url('api')
  const auth = {authorization: `Bearer ${TEST_TOKEN}`}
  const dispatcher = new Agent({connect: {ca: stack.site.caPem}})
  const body = (batch: number, offset: number) => JSON.stringify({readings: series(batch, Date.UTC(2026, 0, 2) + offset * 1000).map(({source: _s, run_id: _r, ...r}) => r)})
  const http = async (batch: number, total: number) => {
    const bodies = Array.from({length: total / batch}, (_, i) => body(batch, i * batch))
    const start = performance.now()
    for (const b of bodies) {
      const response = await fetch(`${apiUrl}/data/ingest`, {method: 'POST', dispatcher, headers: {...auth, 'content-type': 'application/json'}, body: b})
      if (response.status !== 200) throw new Error(`ingest failed: ${response.status} ${await response.text()}`)
      await response.arrayBuffer()
    }

    return total / ((performance.now() - start) / 1000)
  }

  const httpBatched = await http(1000, 50_000)
  const httpSingle = await http(1, 500)
  results['ingest, batches of 1000 (HTTPS, durable)'] = `${fmt(httpBatched)} readings/s; direct SQLite baseline ${fmt(directBatched)}/s (ratio ${(httpBatched / directBatched).toFixed(2)})`
  results['ingest, one reading per request'] = `${fmt(httpSingle)} readings/s; direct SQLite baseline ${fmt(directSingle)}/s (ratio ${(httpSingle / directSingle).toFixed(2)}); batching gains ${fmt(httpBatched / httpSingle)}x`

  // GET /data/latest?limit=100 against a trivial route on the same server, 8 concurrent clients.
  const rate = async (path: string, seconds = 3) => {
    let count = 0
    const until = performance.now() + seconds * 1000
    await Promise.all(Array.from({length: 8}, async () => {
      while (performance.now() < until) {
        const response = await fetch(apiUrl + path, {dispatcher, headers: auth})
        await response.arrayBuffer()
        count++
      }
    }))
    return count / seconds
  }

  const latest = await rate('/data/latest?limit=100')
  const status = await rate('/simulation/status')
  results['GET /data/latest?limit=100'] = `${fmt(latest)} req/s; baseline GET /simulation/status ${fmt(status)} req/s (ratio ${(latest / status).toFixed(2)})`
  await dispatcher.close()
  await stack.close()
}

async function dashboard(): Promise<void> {
  const stack = await startServe({simulation_speed: 20, simulation_sample_ms: 200, simulation_autostart: true})
  const url = `https://127.0.0.1:${stack.serve.ports.dashboard}`
  const browser = await launchChromium()
  const {context} = browser
  const page = await context.newPage()
  await page.goto(url + '/')
  await page.fill('#token', TEST_TOKEN)
  await Promise.all([page.waitForURL(url + '/'), page.click('#login button[type=submit]')])
  const paint = () => page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? Number.NaN)
  const samples: {fcp: number; data: number; bytes: number; blank: number}[] = []
  for (let i = 0; i < 5; i++) {
    const cdp = await context.newCDPSession(page)
    await cdp.send('Network.enable')
    await cdp.send('Network.setCacheDisabled', {cacheDisabled: true})
    let bytes = 0
    cdp.on('Network.loadingFinished', (e: {encodedDataLength: number}) => {
      bytes += e.encodedDataLength
    })
    // Baseline: serve's login page (HTML + CSS + script), same server, same TLS and headers.
    await page.goto(url + '/login')
    await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0)
    const blank = await paint()
    bytes = 0
    await page.goto(url + '/')
    const t0 = await page.evaluate(() => performance.timeOrigin)
    await page.click('button[data-tab=monitor]')
    await page.waitForFunction(morePoints, {id: '#chart-substrate', n: 0})
    const data = await page.evaluate((origin) => performance.timeOrigin + performance.now() - origin, t0)
    await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0)
    samples.push({fcp: await paint(), data, bytes, blank})
    await cdp.detach()
  }

  const median = (key: keyof (typeof samples)[number]) => samples.map((s) => s[key]).sort((a, b) => a - b)[Math.floor(samples.length / 2)]
  results['dashboard first contentful paint'] = `${fmt(median('fcp'))} ms; baseline serve's login page ${fmt(median('blank'))} ms (ratio ${(median('fcp') / median('blank')).toFixed(2)})`
  results['dashboard first chart data (meaningful paint)'] = `${fmt(median('data'))} ms after navigation start`
  results['dashboard transferred bytes (pre-compressed assets)'] = `${fmt(median('bytes') / 1024)} KiB (budget 150 KiB compressed: ${(median('bytes') / 1024 / 150).toFixed(2)} of it)`
  await browser.close()
  await stack.close()
}

simulator()
await ingest()
await dashboard()
console.log(`mfc data benchmarks against a real mfc serve — ${cpus().length} vCPU ${cpus()[0]?.model ?? ''}, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
for (const [name, value] of Object.entries(results)) console.log(`- ${name}: ${value}`)

/**
 * Monitoring data benchmarks: simulator steps/s, ingest readings/s (durable, over HTTPS),
 * GET /data/latest requests/s, dashboard first paint and bytes in Chromium. Every figure comes
 * with a baseline measured in the same run, and the ratio is what to compare across machines.
 *
 *   npx tsx bench/data-bench.ts            (node scripts/build-dashboard.mjs first)
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {cpus, tmpdir} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'

import {chromium} from 'playwright-core'
import {Agent, fetch} from 'undici'

import {openHistory} from '../src/services/data/history.js'
import {MfcStackModel} from '../src/services/data/simulator.js'
import {TEST_TOKEN, buildDashboard, morePoints, startDashboard} from '../test/helpers/dashboard-harness.js'
import {startDataStack} from '../test/helpers/data-server.js'
import {series} from '../test/helpers/readings.js'

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

  const stack = await startDataStack()
  const dispatcher = new Agent({connect: {ca: stack.tls.ca}})
  const body = (batch: number, offset: number) => JSON.stringify({readings: series(batch, Date.UTC(2026, 0, 2) + offset * 1000).map(({source: _s, run_id: _r, ...r}) => r)})
  const http = async (batch: number, total: number) => {
    const bodies = Array.from({length: total / batch}, (_, i) => body(batch, i * batch))
    const start = performance.now()
    for (const b of bodies) {
      const response = await fetch(`${stack.api.url}/data/ingest`, {method: 'POST', dispatcher, headers: {'content-type': 'application/json'}, body: b})
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
        const response = await fetch(stack.api.url + path, {dispatcher})
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
  buildDashboard()
  const stack = await startDataStack({simulation_speed: 20, simulation_sample_ms: 200, simulation_autostart: true})
  stack.wiring.monitoring.setStreamPort(Number(new URL(stack.stream.url).port))
  const server = await startDashboard(stack, (app) => {
    app.get('/bench-blank', async (_request, reply) => reply.type('text/html').send('<!doctype html><title>x</title><p>hello</p>'))
  })
  const profile = await mkdtemp(join(tmpdir(), 'mfc-bench-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'], ignoreHTTPSErrors: true})
  const page = await context.newPage()
  await page.goto(server.url + '/')
  await page.fill('#login-token', TEST_TOKEN)
  await Promise.all([page.waitForEvent('load'), page.click('#login-form button[type=submit]')])
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
    await page.goto(server.url + '/bench-blank')
    await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0)
    const blank = await paint()
    bytes = 0
    await page.goto(server.url + '/')
    const t0 = await page.evaluate(() => performance.timeOrigin)
    await page.click('button[data-tab=monitor]')
    await page.waitForFunction(morePoints, {id: '#chart-substrate', n: 0})
    const data = await page.evaluate((origin) => performance.timeOrigin + performance.now() - origin, t0)
    await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0)
    samples.push({fcp: await paint(), data, bytes, blank})
    await cdp.detach()
  }

  const median = (key: keyof (typeof samples)[number]) => samples.map((s) => s[key]).sort((a, b) => a - b)[Math.floor(samples.length / 2)]
  results['dashboard first contentful paint'] = `${fmt(median('fcp'))} ms; baseline bare HTML page ${fmt(median('blank'))} ms (ratio ${(median('fcp') / median('blank')).toFixed(2)})`
  results['dashboard first chart data (meaningful paint)'] = `${fmt(median('data'))} ms after navigation start`
  results['dashboard transferred bytes (uncompressed server)'] = `${fmt(median('bytes') / 1024)} KiB (budget 150 KiB compressed: ${(median('bytes') / 1024 / 150).toFixed(2)} of it)`
  await context.close()
  await rm(profile, {recursive: true, force: true})
  await server.app.close()
  await stack.close()
}

simulator()
await ingest()
await dashboard()
console.log(`mfc data benchmarks — ${cpus().length} vCPU ${cpus()[0]?.model ?? ''}, Node ${process.version}`)
for (const [name, value] of Object.entries(results)) console.log(`- ${name}: ${value}`)

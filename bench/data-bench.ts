/**
 * Monitoring data benchmarks against a real `mfc serve` process (bin/run.js, so `npm run build`
 * first): simulator steps/s, ingest readings/s (durable, over HTTPS), GET /data/latest
 * requests/s, dashboard first paint and bytes in Chromium. Every figure comes with a baseline
 * measured in the same run, and the ratio is what to compare across machines.
 *
 *   npm run build && npx tsx bench/data-bench.ts            # everything
 *   npx tsx bench/data-bench.ts ratios [rounds]              # issue 13's three data-path ratios only
 *   npx tsx bench/data-bench.ts batches [rounds]             # only batches of 1000 vs direct inserts
 *   npx tsx bench/data-bench.ts singles [rounds]             # only one reading per request (wrk, fetch) vs direct commits
 *   npx tsx bench/data-bench.ts data-path                    # range query and MQTT vs HTTP
 */
import {execFile, spawn} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {once} from 'node:events'
import {mkdtemp, rm} from 'node:fs/promises'
import {cpus, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'
import {promisify} from 'node:util'

import {Agent, fetch} from 'undici'

import {livePaths} from '../src/lib/paths.js'
import {openHistory, openInlineWriter} from '../src/services/data/history.js'
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

/**
 * A bare node:https server in its own process, with the site's certificate, that reads each
 * request's body and answers a small 200, storing nothing: the most the bench's Node fetch
 * clients can reach on this machine, measured in the same rounds as serve.
 */
async function bareServer(site: TestSite): Promise<{url: string; stop(): Promise<void>}> {
  const {certFile, keyFile} = livePaths(site.config.paths, 'localhost')
  const script = `const s = require('node:https').createServer({key: require('node:fs').readFileSync(process.env.KEY), cert: require('node:fs').readFileSync(process.env.CERT)}, (req, res) => {
    req.on('data', () => undefined)
    req.on('end', () => { res.writeHead(200, {'content-type': 'application/json'}); res.end('{"status":"stored","accepted":1}') })
  })
  s.listen(0, '127.0.0.1', () => console.log(s.address().port))`
  const child = spawn(process.execPath, ['-e', script], {env: {KEY: keyFile, CERT: certFile}, stdio: ['ignore', 'pipe', 'inherit']})
  const [line] = await Promise.race([once(child.stdout!, 'data'), once(child, 'exit').then(([code]) => {
    throw new Error(`the bare https server exited (code ${code})`)
  })]) as [Buffer]
  return {url: `https://127.0.0.1:${Number(String(line).trim())}`, async stop() {
    child.kill()
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit')
  }}
}

async function hasWrk(): Promise<boolean> {
  return promisify(execFile)('wrk', ['--version']).then(() => true, (error: {stdout?: string}) => (error.stdout ?? '').includes('wrk'))
}

/** Median of per-round ratios a/b over interleaved rounds (both measured in every round). */
async function interleaved(rounds: number, a: () => Promise<number>, b: () => Promise<number>): Promise<{a: number; b: number; ratio: number; spread: string}> {
  const ratios: number[] = []
  const as: number[] = []
  const bs: number[] = []
  for (let i = 0; i < rounds; i++) {
    const [x, y] = i % 2 === 0 ? [await a(), await b()] : await b().then(async (y2) => [await a(), y2])
    as.push(x)
    bs.push(y)
    ratios.push(x / y)
  }

  const median = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)]
  const sorted = [...ratios].sort((p, q) => p - q)
  return {a: median(as), b: median(bs), ratio: median(ratios), spread: `${sorted[0].toFixed(2)}-${sorted.at(-1)!.toFixed(2)}`}
}

/**
 * The three ratios of issue 13's data path, each round measuring both sides (interleaved):
 * GET /data/latest?limit=100 vs GET /simulation/status (8 clients); one reading per request
 * from 16 concurrent clients (group commit, durable) vs direct single-row commits; batches of
 * 1000 over HTTPS (one client, durable) vs direct inserts of the same batches. "Direct" is the
 * store's own transaction (rows, rollups, sources; WAL, synchronous=FULL) run inline in this
 * process on the same disk (openInlineWriter): no serve, HTTP, thread or queue.
 */
async function ratios(rounds: number, only?: 'batches' | 'singles'): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mfc-bench-ratios-'))
  const inline = await openInlineWriter(join(dir, 'direct.sqlite'))
  const stack = await startServe({simulation_autostart: true, simulation_sample_ms: 1000, rate_limit_per_minute: 0, data_retention_days: 0})
  const apiUrl = stack.serve.url('api')
  const auth = {authorization: `Bearer ${TEST_TOKEN}`}
  const dispatcher = new Agent({connect: {ca: stack.site.caPem}, connections: 32})
  const base = Math.floor(Date.now() / 1000) * 1000 - 20 * 86_400_000
  let next = 0
  /** Fresh timestamps for every reading of the run, so nothing is skipped as a duplicate. */
  const stamps = (n: number) => Array.from({length: n}, () => base + next++ * 10)
  const wire = (ts: number) => ({timestamp: ts, time_hours: 0, reservoir_concentration: 25, outlet_concentration: 24.9, total_power: 0.002, biofilm_thicknesses: [10, 10, 10, 10, 10], cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5]})
  const stored = (source: string, ts: number[]) => ts.map((t) => ({...series(1, t, {source})[0], cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5]}))
  const body = (source: string, ts: number[]) => JSON.stringify({source, readings: ts.map(wire)})
  const post = async (text: string, url = apiUrl) => {
    const response = await fetch(`${url}/data/ingest`, {method: 'POST', dispatcher, headers: {...auth, 'content-type': 'application/json'}, body: text})
    if (response.status !== 200) throw new Error(`ingest: ${response.status} ${await response.text()}`)
    await response.arrayBuffer()
  }

  // serve's CPU time (all its threads, from /proc) per request of each kind, summed over the rounds.
  const serveCpu = {ingest: {ms: 0, requests: 0}, status: {ms: 0, requests: 0}}
  const cpuMs = () => {
    const fields = readFileSync(`/proc/${stack.serve.pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) * (1000 / 100)
  }

  const rate = async (path: string, seconds = 2, clients = 8) => {
    let count = 0
    const until = performance.now() + seconds * 1000
    const before = cpuMs()
    await Promise.all(Array.from({length: clients}, async () => {
      while (performance.now() < until) {
        const response = await fetch(apiUrl + path, {dispatcher, headers: auth})
        if (response.status !== 200) throw new Error(`${path}: ${response.status}`)
        await response.arrayBuffer()
        count++
      }
    }))
    if (path === '/simulation/status') Object.assign(serveCpu.status, {ms: serveCpu.status.ms + cpuMs() - before, requests: serveCpu.status.requests + count})
    return count / seconds
  }

  /** 16 fetch clients posting one reading each, each waiting for its answer; readings/s. */
  const sixteenClients = async (url: string, seconds: number) => {
    let count = 0
    const until = performance.now() + seconds * 1000
    await Promise.all(Array.from({length: 16}, async (_, c) => {
      while (performance.now() < until) {
        await post(body(`single-${c}`, stamps(1)), url)
        count++
      }
    }))
    return count / seconds
  }

  const concurrentSingles = async (seconds = 2) => {
    const before = cpuMs()
    const perSecond = await sixteenClients(apiUrl, seconds)
    Object.assign(serveCpu.ingest, {ms: serveCpu.ingest.ms + cpuMs() - before, requests: serveCpu.ingest.requests + perSecond * seconds})
    return perSecond
  }

  const clientCeiling = async () => {
    const bare = await bareServer(stack.site)
    try {
      // The same 16 fetch clients and bodies against the bare server (bareServer): the clients' ceiling.
      const ceiling = await interleaved(rounds, concurrentSingles, () => sixteenClients(bare.url, 2))
      results['the same 16 fetch clients: mfc serve (durable) vs a bare node:https server in its own process that stores nothing (the clients\' ceiling)'] = `${fmt(ceiling.a)} vs ${fmt(ceiling.b)} req/s: ratio ${ceiling.ratio.toFixed(2)} (rounds ${ceiling.spread})`
    } finally {
      await bare.stop()
    }
  }

  /**
   * The same load (16 connections, one reading per POST, each acknowledged before that
   * connection sends the next) from wrk, a C client in its own process: the Node client above
   * spends about twice serve's CPU per request on one thread, so at low load it, not serve,
   * sets the rate. Fresh timestamps per request (a Lua counter from a new base each round).
   */
  const wrkSingles = async (seconds = 2) => {
    const script = join(dir, 'single.lua')
    const first = base + next * 10
    next += 1_000_000
    writeFileSync(script, `local n = 0
request = function()
  n = n + 1
  local body = string.format('{"source":"wrk-%d","readings":[{"timestamp":%d,"time_hours":0,"reservoir_concentration":25,"outlet_concentration":24.9,"total_power":0.002,"biofilm_thicknesses":[10,10,10,10,10],"cell_voltages":[0.5,0.5,0.5,0.5,0.5]}]}', n % 16, ${first} + n * 10)
  return wrk.format("POST", "/data/ingest", {["Authorization"] = "Bearer ${TEST_TOKEN}", ["Content-Type"] = "application/json"}, body)
end
`)
    const {stdout} = await promisify(execFile)('wrk', ['-t1', '-c16', `-d${seconds}s`, '-s', script, apiUrl])
    const failed = /Non-2xx or 3xx responses: \d+|Socket errors: .*/.exec(stdout)
    if (failed) throw new Error(`wrk POST /data/ingest: ${failed[0]}`)
    return Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)![1])
  }

  const directSingles = async (seconds = 2) => {
    let count = 0
    const until = performance.now() + seconds * 1000
    while (performance.now() < until) {
      inline.insert(stored('direct-single', stamps(1)))
      count++
    }

    return count / seconds
  }

  const batches = 10
  const httpBatches = async () => {
    // Bodies built before the clock starts, as the direct side's readings are.
    const bodies = Array.from({length: batches}, () => body('batch', stamps(1000)))
    const start = performance.now()
    for (const text of bodies) await post(text)
    return (batches * 1000) / ((performance.now() - start) / 1000)
  }

  const directBatches = async () => {
    const all = Array.from({length: batches}, () => stored('direct-batch', stamps(1000)))
    const start = performance.now()
    for (const readings of all) inline.insert(readings)
    return (batches * 1000) / ((performance.now() - start) / 1000)
  }

  try {
    if (only === 'singles') {
      if (await hasWrk()) {
        const viaWrk = await interleaved(rounds, wrkSingles, directSingles)
        results['one reading per request from wrk (16 connections) vs direct single-row commits'] = `${fmt(viaWrk.a)} vs ${fmt(viaWrk.b)} readings/s: ratio ${viaWrk.ratio.toFixed(2)} (rounds ${viaWrk.spread}; goal >= 0.55)`
      }

      const single = await interleaved(rounds, concurrentSingles, directSingles)
      results['one reading per request from 16 fetch clients vs direct single-row commits'] = `${fmt(single.a)} vs ${fmt(single.b)} readings/s: ratio ${single.ratio.toFixed(2)} (rounds ${single.spread}; goal >= 0.55)`
      await clientCeiling()
      return
    }

    if (only === 'batches') {
      const batch = await interleaved(rounds, httpBatches, directBatches)
      results['batches of 1000 over HTTPS (1 client, durable) vs direct inserts of the same batches'] = `${fmt(batch.a)} vs ${fmt(batch.b)} readings/s: ratio ${batch.ratio.toFixed(2)} (rounds ${batch.spread}; goal >= 0.6)`
      return
    }

    await rate('/data/latest?limit=100', 0.5)
    const latest = await interleaved(rounds, () => rate('/data/latest?limit=100'), () => rate('/simulation/status'))
    results['GET /data/latest?limit=100 vs GET /simulation/status (8 clients)'] = `${fmt(latest.a)} vs ${fmt(latest.b)} req/s: ratio ${latest.ratio.toFixed(2)} (rounds ${latest.spread}; goal >= 0.6)`
    const single = await interleaved(rounds, concurrentSingles, directSingles)
    results['one reading per request, 16 concurrent clients (group commit, durable) vs direct single-row commits'] = `${fmt(single.a)} vs ${fmt(single.b)} readings/s: ratio ${single.ratio.toFixed(2)} (rounds ${single.spread}; goal >= 0.55)`
    await clientCeiling()
    if (await hasWrk()) {
      const viaWrk = await interleaved(rounds, wrkSingles, directSingles)
      results['the same from wrk (16 connections, a C client in its own process) vs direct single-row commits'] = `${fmt(viaWrk.a)} vs ${fmt(viaWrk.b)} readings/s: ratio ${viaWrk.ratio.toFixed(2)} (rounds ${viaWrk.spread}; goal >= 0.55)`
    }

    // Less load-sensitive than the rates: what serve spends per request, whatever else runs.
    const perRequest = (k: keyof typeof serveCpu) => serveCpu[k].ms / Math.max(1, serveCpu[k].requests)
    results['serve CPU per request: one-reading POST /data/ingest vs GET /simulation/status (all of serve\'s threads, /proc)'] = `${(perRequest('ingest') * 1000).toFixed(0)} vs ${(perRequest('status') * 1000).toFixed(0)} us: ratio ${(perRequest('ingest') / perRequest('status')).toFixed(2)} (lower is better)`
    const batch = await interleaved(rounds, httpBatches, directBatches)
    results['batches of 1000 over HTTPS (1 client, durable) vs direct inserts of the same batches'] = `${fmt(batch.a)} vs ${fmt(batch.b)} readings/s: ratio ${batch.ratio.toFixed(2)} (rounds ${batch.spread}; goal >= 0.6)`
  } finally {
    await dispatcher.close()
    await stack.close()
    inline.close()
    await rm(dir, {recursive: true, force: true})
  }
}

/**
 * The data path of issue 13, against one real serve: latest vs /simulation/status, group commit
 * (16 concurrent single-reading clients) vs one client and vs direct single-row commits, the
 * downsampled 30-day range of three sources vs the same aggregate SQL run directly, and MQTT
 * ingest vs HTTP batch ingest through a real Mosquitto.
 */
async function dataPath(): Promise<void> {
  const {default: Database} = await import('better-sqlite3')
  const {startMosquitto} = await import('../test/helpers/mosquitto.js')
  const {freePort} = await import('../test/helpers/ports.js')
  const mqtt = (await import('mqtt')).default
  const dir = await mkdtemp(join(tmpdir(), 'mfc-bench-path-'))
  const brokerPort = await freePort()
  const broker = await startMosquitto(dir, brokerPort)
  const site = await testSite()
  const now = Math.floor(Date.now() / 1000) * 1000
  const days = 30
  const from = now - days * 86_400_000
  // A 30-day, 1 Hz history of three sources, written straight into serve's database (readings
  // and their per-minute rollups, as the store writes them).
  const historyFile = site.config.paths.historyDb
  await (await openHistory(historyFile, {retentionDays: 0, clock: {now: () => new Date()}})).close()
  const db = new Database(historyFile)
  const cells = JSON.stringify({b: [10, 10, 10, 10, 10], v: [0.5, 0.5, 0.5, 0.5, 0.5], p: null, ph: null, t: null})
  for (const [i, source] of ['lab-1', 'lab-2', 'lab-3'].entries()) {
    db.prepare(`WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < ?)
      INSERT INTO readings (ts, source, time_hours, reservoir, outlet, total_power, addition, cells, seq, voltage_mean)
      SELECT ? + n * 1000, ?, n / 3600.0, 20 + (n % 600) / 60.0, 19, 0.001 + ${i} * 0.0001 + (n % 97) * 1e-6, 0, ?, 0, 0.5 FROM s`).run(days * 86_400 - 1, from, source, cells)
    db.prepare('INSERT INTO sources (name, cells, first_seen, last_seen, readings) VALUES (?, 5, ?, ?, ?)').run(source, from, now - 1000, days * 86_400)
  }

  db.exec(`INSERT INTO rollup_1m SELECT source, (ts / 60000) * 60000, count(*), ${['reservoir', 'outlet', 'total_power', 'addition', 'voltage_mean'].map((f) => `min(${f}), max(${f}), sum(${f}), count(${f})`).join(', ')}
    FROM readings GROUP BY source, ts / 60000`)

  db.close()
  writeDataSettings(site, {simulation_autostart: true, simulation_sample_ms: 1000, rate_limit_per_minute: 0, data_retention_days: 0,
    mqtt_url: `mqtt://127.0.0.1:${brokerPort}`, mqtt_topic: 'bench/<source>/readings', mqtt_client_id: `mfc-bench-${brokerPort}`})
  const serve = await spawnServe(site)
  const apiUrl = serve.url('api')
  const auth = {authorization: `Bearer ${TEST_TOKEN}`}
  const dispatcher = new Agent({connect: {ca: site.caPem}, connections: 32})
  const get = async (path: string) => {
    const response = await fetch(apiUrl + path, {dispatcher, headers: auth})
    if (response.status !== 200) throw new Error(`${path}: ${response.status} ${await response.text()}`)
    return response.arrayBuffer()
  }

  try {
    // The same aggregate SQL that GET /data/history runs, on its own read-only connection.
    const reader = new Database(historyFile, {readonly: true})
    const fields = ['reservoir', 'outlet', 'total_power', 'addition', 'voltage_mean']
    const sql = reader.prepare(`SELECT CAST((minute - @from) / @width AS INTEGER) AS b, sum(n) AS n,
      ${fields.map((f) => `min(${f}_min), max(${f}_max), sum(${f}_sum) / nullif(sum(${f}_n), 0)`).join(', ')}
      FROM rollup_1m WHERE source = @source AND minute >= @from AND minute <= @to GROUP BY b ORDER BY b`)
    const width = Math.ceil(Math.max(1000, Math.ceil((now - from + 1) / 600)) / 60_000) * 60_000
    const aligned = Math.floor(from / 60_000) * 60_000
    const sources = ['lab-1', 'lab-2', 'lab-3']
    const viaHttp = async () => {
      const start = performance.now()
      await Promise.all(sources.map((s) => get(`/data/history?source=${s}&from=${from}&to=${now}&buckets=600`)))
      return 1000 / (performance.now() - start)
    }

    const viaSql = async () => {
      const start = performance.now()
      for (const source of sources) JSON.stringify(sql.all({source, from: aligned, to: now, width}))
      return 1000 / (performance.now() - start)
    }

    const range = await interleaved(5, viaHttp, viaSql)
    reader.close()
    results['downsampled 30-day range, 3 sources x 2.6M readings (GET /data/history) vs the same SQL directly'] = `ratio ${range.ratio.toFixed(2)} (rounds ${range.spread}; goal >= 0.8)`

    // MQTT (messages of 100 readings, QoS 1) vs HTTP batches of 1000, readings/s until stored.
    const publisher = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, {clientId: `bench-pub-${brokerPort}`})
    const stored = async (source: string) => JSON.parse(Buffer.from(await get(`/sources/${source}`)).toString()).readings as number
    let round = 0
    const readingsOf = (n: number, base: number) => Array.from({length: n}, (_, i) => ({timestamp: base + i * 1000, time_hours: 0, reservoir_concentration: 25, outlet_concentration: 25, total_power: 0.002}))
    const viaMqtt = async () => {
      const source = `mq-${round++}`
      const total = 10_000
      const start = performance.now()
      await Promise.all(Array.from({length: total / 100}, (_, m) => publisher.publishAsync(`bench/${source}/readings`, JSON.stringify(readingsOf(100, from + m * 100_000)), {qos: 1})))
      while (await stored(source).catch(() => 0) < total) await new Promise((resolve) => setTimeout(resolve, 5))
      return total / ((performance.now() - start) / 1000)
    }

    const viaBatches = async () => {
      const source = `http-${round++}`
      const total = 10_000
      const start = performance.now()
      for (let b = 0; b < total / 1000; b++) {
        const response = await fetch(`${apiUrl}/data/ingest`, {method: 'POST', dispatcher, headers: {...auth, 'content-type': 'application/json'}, body: JSON.stringify({source, readings: readingsOf(1000, from + b * 1_000_000)})})
        await response.arrayBuffer()
      }

      return total / ((performance.now() - start) / 1000)
    }

    const ingestRatio = await interleaved(4, viaMqtt, viaBatches)
    await publisher.endAsync()
    results['MQTT ingest (100 readings/message, QoS 1, PUBACK after commit) vs HTTP batches of 1000'] = `${fmt(ingestRatio.a)} vs ${fmt(ingestRatio.b)} readings/s: ratio ${ingestRatio.ratio.toFixed(2)} (rounds ${ingestRatio.spread})`
  } finally {
    await dispatcher.close()
    await serve.stop()
    await broker.stop()
    await site.temp.cleanup()
    await rm(dir, {recursive: true, force: true})
  }
}

const only = process.argv[2]
const rounds = Number(process.argv[3] ?? 6)
if (only === 'ratios') await ratios(rounds)
else if (only === 'batches') await ratios(rounds, 'batches')
else if (only === 'singles') await ratios(rounds, 'singles')
else if (only === 'data-path') await dataPath()
else {
  simulator()
  await ratios(rounds)
  await dataPath()
  await dashboard()
}

console.log(`mfc data benchmarks against a real mfc serve — ${cpus().length} vCPU ${cpus()[0]?.model ?? ''}, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
for (const [name, value] of Object.entries(results)) console.log(`- ${name}: ${value}`)

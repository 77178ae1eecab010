/**
 * PostgreSQL history benchmarks against real `mfc serve` processes (bin/run.js, so `npm run
 * build` first) and one real PostgreSQL 15 (test/helpers/postgres.ts, as root; durable:
 * fsync and synchronous_commit on, logged tables). Every figure is a ratio measured in the same
 * run, over interleaved rounds (the order alternates), reported as the median with its spread.
 *
 *   npm run build && npx tsx bench/pg-ingest.ts [rounds]
 *
 * 1. Ingest, batches of 1000, durable, through HTTPS into serve with storage=postgres, vs a bare
 *    `pg` client writing the same batches into the same table layout (mfc_readings) directly:
 *    one multi-row INSERT per batch (parameters) and one COPY FROM STDIN per batch, each its own
 *    transaction. Goal: >= 0.5x.
 *    Also PgHistory.insert called directly (no HTTP), to tell the adapter's cost from the server's.
 * 2. One node's ingest (same batches, HTTPS) and GET /data/latest?limit=100 throughput (8
 *    concurrent clients) with storage=postgres vs the embedded SQLite: the price of cluster mode.
 */
import {randomBytes} from 'node:crypto'
import {writeFileSync} from 'node:fs'
import {cpus, loadavg} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import pg from 'pg'
import {from as copyFrom} from 'pg-copy-streams'
import {Agent, fetch} from 'undici'

import type {History} from '../src/services/data/history-types.js'
import {migrate} from '../src/services/storage/migrations.js'
import {openPgHistory} from '../src/services/storage/pg-history.js'
import {openPostgres} from '../src/services/storage/postgres.js'
import {type TestPostgres, startPostgres} from '../test/helpers/postgres.js'
import {series} from '../test/helpers/readings.js'
import {type ServeProcess, spawnServe, writeDataSettings} from '../test/helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../test/helpers/serve.js'

const ROUNDS = Number(process.argv[2] ?? 7)
const BATCH = 1000
/** Batches per case per round. */
const BATCHES = 20
const LATEST_SECONDS = 2

type Reading = ReturnType<typeof series>[number]
const COLUMNS = ['ts', 'source', 'seq', 'run_id', 'time_hours', 'reservoir', 'outlet', 'total_power', 'addition', 'q_action', 'epsilon', 'reward', 'cells', 'voltage_mean']
/** A reading as the row mfc stores (the same layout and values the adapter writes). */
const rowOf = (r: Reading): (string | number | null)[] => [Date.parse(r.timestamp), r.source, 0, r.run_id, r.time_hours, r.reservoir_concentration, r.outlet_concentration, r.total_power,
  r.substrate_addition_rate, r.q_action, r.epsilon, r.reward, JSON.stringify({b: r.biofilm_thicknesses, v: r.cell_voltages, p: r.cell_powers, ph: r.cell_ph, t: r.cell_temperatures}),
  r.cell_voltages ? r.cell_voltages.reduce((a, b) => a + b, 0) / r.cell_voltages.length : null]
const tsvValue = (v: string | number | null) => (v === null ? '\\N' : String(v).replaceAll('\\', '\\\\').replaceAll('\t', '\\t').replaceAll('\n', '\\n'))

/** Distinct timestamps for every batch of the whole run, so no case ever hits the dedupe path. */
let nextStart = Date.UTC(2026, 0, 1)
const freshBatch = (source: string) => {
  const batch = series(BATCH, nextStart, {source})
  nextStart += BATCH * 1000
  return batch
}

async function serveOn(settings: Record<string, unknown>): Promise<{site: TestSite; serve: ServeProcess; close(): Promise<void>}> {
  const site = await testSite()
  // Cluster storage seals keys with a key every node shares (serve refuses to start without it).
  const keyFile = join(site.temp.configDir, 'storage.key')
  writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', {mode: 0o600})
  writeDataSettings(site, {simulation_autostart: false, rate_limit_per_minute: 0, ...(settings.storage ? {storage_key_file: keyFile} : {}), ...settings})
  const serve = await spawnServe(site)
  return {site, serve, async close() {
    await serve.stop()
    await site.temp.cleanup()
  }}
}

/** Readings/s of BATCHES sequential HTTPS posts of 1000 (each acknowledged only once durable). */
async function httpIngest(serve: ServeProcess, dispatcher: Agent): Promise<number> {
  const bodies = Array.from({length: BATCHES}, () => JSON.stringify({source: 'rig-1', readings: freshBatch('rig-1').map(({source: _s, run_id: _r, ...r}) => r)}))
  const start = performance.now()
  for (const body of bodies) {
    const response = await fetch(`${serve.url('api')}/data/ingest`, {method: 'POST', dispatcher, headers: {authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json'}, body})
    if (response.status !== 200) throw new Error(`ingest failed: ${response.status} ${await response.text()}`)
    await response.arrayBuffer()
  }

  return (BATCHES * BATCH) / ((performance.now() - start) / 1000)
}

async function latestRate(serve: ServeProcess, dispatcher: Agent): Promise<number> {
  let count = 0
  const until = performance.now() + LATEST_SECONDS * 1000
  await Promise.all(Array.from({length: 8}, async () => {
    while (performance.now() < until) {
      const response = await fetch(`${serve.url('api')}/data/latest?limit=100&source=rig-1`, {dispatcher, headers: {authorization: `Bearer ${TEST_TOKEN}`}})
      if (response.status !== 200) throw new Error(`latest failed: ${response.status}`)
      await response.arrayBuffer()
      count++
    }
  }))
  return count / LATEST_SECONDS
}

async function bareInsert(client: pg.Client): Promise<number> {
  const batches = Array.from({length: BATCHES}, () => freshBatch('bare-insert').map(rowOf))
  const placeholders = Array.from({length: BATCH}, (_, i) => `(${COLUMNS.map((_, c) => `$${i * COLUMNS.length + c + 1}`).join(', ')})`).join(', ')
  const sql = `INSERT INTO mfc_readings (${COLUMNS.join(', ')}) VALUES ${placeholders}`
  const start = performance.now()
  for (const rows of batches) await client.query(sql, rows.flat())
  return (BATCHES * BATCH) / ((performance.now() - start) / 1000)
}

async function bareCopy(client: pg.Client): Promise<number> {
  const batches = Array.from({length: BATCHES}, () => freshBatch('bare-copy').map((r) => rowOf(r).map(tsvValue).join('\t') + '\n').join(''))
  const start = performance.now()
  for (const text of batches) await pipeline(Readable.from([text]), client.query(copyFrom(`COPY mfc_readings (${COLUMNS.join(', ')}) FROM STDIN`)))
  return (BATCHES * BATCH) / ((performance.now() - start) / 1000)
}

async function adapterInsert(history: History): Promise<number> {
  const batches = Array.from({length: BATCHES}, () => freshBatch('adapter'))
  const start = performance.now()
  for (const batch of batches) await history.insert(batch)
  return (BATCHES * BATCH) / ((performance.now() - start) / 1000)
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function main(): Promise<void> {
  let pgServer: TestPostgres | undefined
  const stacks: {close(): Promise<void>}[] = []
  try {
    pgServer = await startPostgres()
    const url = await pgServer.createDatabase('bench')
    const db = await openPostgres({url})
    await migrate(db)
    await db.close()
    const bare = new pg.Client({connectionString: url})
    // Stopping PostgreSQL in the finally below must not crash the run and hide its real error.
    bare.on('error', () => {})
    await bare.connect()
    const adapter = await openPgHistory({connect: () => openPostgres({url}), retentionDays: 0, clock: {now: () => new Date()}})
    const onPg = await serveOn({storage: url})
    stacks.push(onPg)
    const onSqlite = await serveOn({})
    stacks.push(onSqlite)
    const dispatchers = [new Agent({connect: {ca: onPg.site.caPem}}), new Agent({connect: {ca: onSqlite.site.caPem}})]
    // Warm-up: connections, JIT, the first pages of the tables.
    await httpIngest(onPg.serve, dispatchers[0])
    await httpIngest(onSqlite.serve, dispatchers[1])
    await bareInsert(bare)
    await bareCopy(bare)
    await adapterInsert(adapter)

    const samples: Record<string, number[]> = {}
    const add = (name: string, value: number) => (samples[name] ??= []).push(value)
    const cases: [string, () => Promise<number>][] = [
      ['mfc ingest, storage=postgres', () => httpIngest(onPg.serve, dispatchers[0])],
      ['bare pg multi-row INSERT', () => bareInsert(bare)],
      ['bare pg COPY', () => bareCopy(bare)],
      ['PgHistory.insert direct (no HTTP)', () => adapterInsert(adapter)],
      ['mfc ingest, SQLite', () => httpIngest(onSqlite.serve, dispatchers[1])],
      ['latest, storage=postgres', () => latestRate(onPg.serve, dispatchers[0])],
      ['latest, SQLite', () => latestRate(onSqlite.serve, dispatchers[1])],
    ]
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? cases : [...cases].reverse()
      const values: Record<string, number> = {}
      for (const [name, run] of order) values[name] = await run()
      for (const [name, value] of Object.entries(values)) add(name, value)
      add('ratio: PG ingest / bare INSERT', values['mfc ingest, storage=postgres'] / values['bare pg multi-row INSERT'])
      add('ratio: PG ingest / bare COPY', values['mfc ingest, storage=postgres'] / values['bare pg COPY'])
      add('ratio: PgHistory.insert direct / bare INSERT', values['PgHistory.insert direct (no HTTP)'] / values['bare pg multi-row INSERT'])
      add('ratio: ingest PG / SQLite', values['mfc ingest, storage=postgres'] / values['mfc ingest, SQLite'])
      add('ratio: latest PG / SQLite', values['latest, storage=postgres'] / values['latest, SQLite'])
      process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`)
    }

    await bare.end()
    await adapter.close()
    await Promise.all(dispatchers.map((d) => d.close()))
    console.log(`${ROUNDS} interleaved rounds, ${BATCHES} batches of ${BATCH} per ingest case; ${cpus()[0]?.model} x${cpus().length}, load ${loadavg()[0].toFixed(1)}`)
    console.log('| case | median | min | max |')
    console.log('|---|---|---|---|')
    for (const [name, xs] of Object.entries(samples)) {
      const unit = name.startsWith('ratio') ? 'x' : name.startsWith('latest') ? ' req/s' : ' readings/s'
      const f = (n: number) => (name.startsWith('ratio') ? n.toFixed(2) : Math.round(n).toLocaleString('en')) + unit
      console.log(`| ${name} | ${f(median(xs))} | ${f(Math.min(...xs))} | ${f(Math.max(...xs))} |`)
    }
  } finally {
    for (const stack of stacks) await stack.close().catch(() => {})
    await pgServer?.stop()
  }
}

await main()

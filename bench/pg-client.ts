/**
 * Which PostgreSQL client for cluster mode: `pg` (node-postgres) vs `postgres` (porsager), both
 * against one real PostgreSQL 15 started by this script (test/helpers/postgres.ts, as root).
 * Each round runs every case for both clients, interleaved (the order alternates per round),
 * and the report is the median of the rounds and the ratio postgres/pg (> 1: postgres faster).
 *
 *   npx tsx bench/pg-client.ts [rounds]
 *
 * Cases: a 1000-row multi-row INSERT (one statement, parameters), a 1000-row COPY FROM STDIN,
 * single-row INSERT round trips (the prepared-statement path), and LISTEN/NOTIFY latency
 * (NOTIFY on one connection -> the listener's callback on another).
 */
import {cpus, loadavg} from 'node:os'
import {performance} from 'node:perf_hooks'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import pg from 'pg'
import {from as copyFrom} from 'pg-copy-streams'
import postgres from 'postgres'

import {startPostgres} from '../test/helpers/postgres.js'

const ROUNDS = Number(process.argv[2] ?? 7)
const BATCH = 1000
const BATCHES = 20
const SINGLES = 500
const NOTIFIES = 200

interface Row {ts: number; source: string; voltage: number; current: number; power: number}
const rows = (n: number, base: number): Row[] => Array.from({length: n}, (_, i) => ({ts: base + i, source: 'rig-1', voltage: 0.5 + i / 1e4, current: 1.25, power: 0.62}))
const tsv = (batch: Row[]) => batch.map((r) => `${r.ts}\t${r.source}\t${r.voltage}\t${r.current}\t${r.power}\n`).join('')

/** One client's implementation of every case; each returns operations per second (or ms). */
interface Client {
  name: string
  batchInsert(batch: Row[]): Promise<void>
  copy(batch: Row[]): Promise<void>
  single(row: Row): Promise<void>
  /** Median NOTIFY -> callback latency in ms over NOTIFIES notifications. */
  notifyLatency(): Promise<number>
  close(): Promise<void>
}

async function pgClient(url: string): Promise<Client> {
  const pool = new pg.Pool({connectionString: url, max: 4})
  const listener = new pg.Client({connectionString: url})
  await listener.connect()
  return {
    name: 'pg',
    async batchInsert(batch) {
      const values: unknown[] = []
      const tuples = batch.map((r, i) => {
        values.push(r.ts, r.source, r.voltage, r.current, r.power)
        return `($${i * 5 + 1},$${i * 5 + 2},$${i * 5 + 3},$${i * 5 + 4},$${i * 5 + 5})`
      })
      await pool.query(`INSERT INTO readings (ts, source, voltage, current, power) VALUES ${tuples.join(',')}`, values)
    },
    async copy(batch) {
      const client = await pool.connect()
      try {
        await pipeline(Readable.from([tsv(batch)]), client.query(copyFrom('COPY readings (ts, source, voltage, current, power) FROM STDIN')))
      } finally {
        client.release()
      }
    },
    async single(r) {
      await pool.query({name: 'one', text: 'INSERT INTO readings (ts, source, voltage, current, power) VALUES ($1,$2,$3,$4,$5)', values: [r.ts, r.source, r.voltage, r.current, r.power]})
    },
    async notifyLatency() {
      await listener.query('LISTEN bench')
      const samples: number[] = []
      for (let i = 0; i < NOTIFIES; i++) {
        const got = new Promise<void>((resolve) => listener.once('notification', () => resolve()))
        const start = performance.now()
        await pool.query(`SELECT pg_notify('bench', $1)`, [String(i)])
        await got
        samples.push(performance.now() - start)
      }

      await listener.query('UNLISTEN bench')
      return median(samples)
    },
    async close() {
      await listener.end()
      await pool.end()
    },
  }
}

async function postgresClient(url: string): Promise<Client> {
  const sql = postgres(url, {max: 4, onnotice: () => {}})
  return {
    name: 'postgres',
    async batchInsert(batch) {
      await sql`INSERT INTO readings ${sql(batch as unknown as Record<string, unknown>[], 'ts', 'source', 'voltage', 'current', 'power')}`
    },
    async copy(batch) {
      const writable = await sql`COPY readings (ts, source, voltage, current, power) FROM STDIN`.writable()
      await pipeline(Readable.from([tsv(batch)]), writable)
    },
    async single(r) {
      await sql`INSERT INTO readings (ts, source, voltage, current, power) VALUES (${r.ts}, ${r.source}, ${r.voltage}, ${r.current}, ${r.power})`
    },
    async notifyLatency() {
      let waiter: (() => void) | undefined
      const listening = await sql.listen('bench', () => waiter?.())
      const samples: number[] = []
      for (let i = 0; i < NOTIFIES; i++) {
        const got = new Promise<void>((resolve) => {
          waiter = resolve
        })
        const start = performance.now()
        await sql`SELECT pg_notify('bench', ${String(i)})`
        await got
        samples.push(performance.now() - start)
      }

      await listening.unlisten()
      return median(samples)
    },
    async close() {
      await sql.end({timeout: 5})
    },
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

async function timed(count: number, op: (i: number) => Promise<void>): Promise<number> {
  const start = performance.now()
  for (let i = 0; i < count; i++) await op(i)
  return count / ((performance.now() - start) / 1000)
}

type Case = 'insert 1000-row batches (rows/s)' | 'COPY 1000-row batches (rows/s)' | 'single-row round trips (ops/s)' | 'NOTIFY latency p50 (ms, lower is better)'

async function round(client: Client, base: number): Promise<Record<Case, number>> {
  return {
    'insert 1000-row batches (rows/s)': BATCH * await timed(BATCHES, (i) => client.batchInsert(rows(BATCH, base + i * BATCH))),
    'COPY 1000-row batches (rows/s)': BATCH * await timed(BATCHES, (i) => client.copy(rows(BATCH, base + i * BATCH))),
    'single-row round trips (ops/s)': await timed(SINGLES, (i) => client.single(rows(1, base + i)[0])),
    'NOTIFY latency p50 (ms, lower is better)': await client.notifyLatency(),
  }
}

const db = await startPostgres()
try {
  const url = await db.createDatabase('bench')
  // Durable like production: synchronous_commit stays on; UNLOGGED would flatter both clients.
  await db.psql('CREATE TABLE readings (ts bigint NOT NULL, source text NOT NULL, voltage double precision, current double precision, power double precision)', 'bench')
  const clients = [await pgClient(url), await postgresClient(url)]
  // Warm-up: connections, prepared statements, JIT of both clients.
  for (const client of clients) await round(client, 0)
  const samples: Record<string, Record<string, number[]>> = {pg: {}, postgres: {}}
  for (let r = 0; r < ROUNDS; r++) {
    for (const client of r % 2 ? [...clients].reverse() : clients) {
      for (const [name, value] of Object.entries(await round(client, r * 1e6))) (samples[client.name][name] ??= []).push(value)
    }
  }

  for (const client of clients) await client.close()
  console.log(`PostgreSQL client bench: ${ROUNDS} interleaved rounds, medians; CPU ${cpus()[0]?.model} x${cpus().length}, load ${loadavg()[0].toFixed(2)}`)
  for (const name of Object.keys(samples.pg)) {
    const a = median(samples.pg[name])
    const b = median(samples.postgres[name])
    const ratio = name.includes('lower is better') ? a / b : b / a
    console.log(`  ${name.padEnd(42)} pg ${a.toFixed(2).padStart(10)}  postgres ${b.toFixed(2).padStart(10)}  postgres/pg speed ratio ${ratio.toFixed(2)}x`)
  }
} finally {
  await db.stop()
}

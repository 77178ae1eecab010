/**
 * `npx tsx bench/cluster-stream.ts [--rounds 5] [--per-round 100]` (build first: it runs the real
 * `bin/run.js serve`). Cross-node stream latency of cluster mode: three serve nodes on one
 * PostgreSQL 15 (started here), readings POSTed to node 3's /data/ingest one request at a time,
 * and two WSS clients in this process: one on node 1 (cross-node: stored on node 3, NOTIFY,
 * delivered by node 1) and one on node 3 (same-node, the baseline: node 3's own delivery).
 * Latency of a reading = its arrival at a client - the start of its POST (one clock), so
 * both figures include the same ingest request and commit. Every reading is measured on both
 * clients at once, so the baseline is interleaved with the measured case reading by reading.
 * Two shapes: single readings, and batches of 100 (a ~30 kB NOTIFY payload, sent in parts).
 * Prints a markdown table: p50/p99 per round (medians over rounds, with the range), the ratio
 * cross/same, and the quantiles of what the fan-out adds per reading (cross - same). The goal is p99 < 100 ms cross-node; absolute figures are for
 * this machine and load only.
 */
import {cpus} from 'node:os'

import {migrate} from '../src/services/storage/migrations.js'
import {openPostgres} from '../src/services/storage/postgres.js'
import {type ClusterNode, type LiveClient, startClusterNodes} from '../test/helpers/cluster-nodes.js'
import {type TestPostgres, startPostgres} from '../test/helpers/postgres.js'

type Json = any

const argValue = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? Number(process.argv[at + 1]) : fallback
}

const ROUNDS = argValue('rounds', 5)
const PER_ROUND = argValue('per-round', 100)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]
}

const median = (xs: number[]) => quantile(xs, 0.5)

/** Arrival times (performance.now()) of each reading's timestamp at one client. */
function arrivals(client: LiveClient): Map<string, number> {
  const seen = new Map<string, number>()
  client.socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as Json
    if (message.type !== 'data_update') return
    const at = performance.now()
    for (const point of message.data as Json[]) if (!seen.has(point.timestamp)) seen.set(point.timestamp, at)
  })
  return seen
}

let stamp = Date.UTC(2026, 0, 1)
const reading = () => ({
  timestamp: new Date(stamp++).toISOString(), time_hours: 1, reservoir_concentration: 25, outlet_concentration: 24.9,
  total_power: 0.002, cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5], biofilm_thicknesses: [10, 10, 10, 10, 10], q_action: 3,
})

interface RoundResult {
  cross: number[]
  same: number[]
  /** Per reading: cross - same, what the fan-out (NOTIFY, the other node's delivery) adds. */
  added: number[]
}

/** One round: `count` POSTs to node 3, each waited for on both clients before the next. */
async function round(ingestOn: ClusterNode, cross: Map<string, number>, same: Map<string, number>, count: number, batch: number): Promise<RoundResult> {
  const result: RoundResult = {cross: [], same: [], added: []}
  for (let i = 0; i < count; i++) {
    const readings = Array.from({length: batch}, reading)
    const last = readings.at(-1)!.timestamp
    const started = performance.now()
    const response = await ingestOn.call('POST', '/data/ingest', {source: 'bench', readings})
    if (response.status !== 200) throw new Error(`ingest answered ${response.status}: ${response.text}`)
    const deadline = Date.now() + 10_000
    while (!(cross.has(last) && same.has(last))) {
      if (Date.now() > deadline) throw new Error(`reading ${last} did not reach both clients within 10 s`)
      await sleep(1)
    }

    result.cross.push(cross.get(last)! - started)
    result.same.push(same.get(last)! - started)
    result.added.push(cross.get(last)! - same.get(last)!)
    await sleep(5)
  }

  return result
}

async function main(): Promise<void> {
  let pg: TestPostgres | undefined
  let nodes: ClusterNode[] = []
  try {
    pg = await startPostgres()
    const url = await pg.createDatabase()
    const db = await openPostgres({url})
    await migrate(db)
    await db.close()
    nodes = await startClusterNodes(3, url)
    const [one, , three] = nodes
    const onOne = one.stream()
    const onThree = three.stream()
    await Promise.all([onOne.opened, onThree.opened])
    const cross = arrivals(onOne)
    const same = arrivals(onThree)
    await round(three, cross, same, 20, 1) // warm-up: JIT, connections, the first NOTIFY

    const rows: string[] = []
    for (const batch of [1, 100]) {
      const p50 = {cross: [] as number[], same: [] as number[], ratio: [] as number[], added: [] as number[]}
      const p99 = {cross: [] as number[], same: [] as number[], ratio: [] as number[], added: [] as number[]}
      for (let r = 0; r < ROUNDS; r++) {
        const result = await round(three, cross, same, batch === 1 ? PER_ROUND : Math.max(20, PER_ROUND / 5), batch)
        for (const [q, into] of [[0.5, p50], [0.99, p99]] as const) {
          const c = quantile(result.cross, q)
          const s = quantile(result.same, q)
          into.cross.push(c)
          into.same.push(s)
          into.ratio.push(c / s)
          into.added.push(quantile(result.added, q))
        }
      }

      const fmt = (xs: number[]) => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`
      const ratio = (xs: number[]) => `${median(xs).toFixed(2)}x (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`
      const shape = batch === 1 ? 'single readings' : 'batches of 100'
      rows.push(`| ${shape} | p50 | ${fmt(p50.same)} | ${fmt(p50.cross)} | ${ratio(p50.ratio)} | ${fmt(p50.added)} |`,
        `| ${shape} | p99 | ${fmt(p99.same)} | ${fmt(p99.cross)} | ${ratio(p99.ratio)} | ${fmt(p99.added)} |`)
    }

    console.log(`\n${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; ${ROUNDS} rounds of ${PER_ROUND} single POSTs / ${Math.max(20, PER_ROUND / 5)} batch POSTs, medians of the rounds (range)\n`)
    console.log('| shape | quantile | same node (node 3 -> client on node 3), ms | cross node (node 3 -> client on node 1), ms | cross / same | added by the fan-out (per reading), ms |')
    console.log('|---|---|---|---|---|---|')
    for (const row of rows) console.log(row)
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
    await pg?.stop()
  }
}

await main()

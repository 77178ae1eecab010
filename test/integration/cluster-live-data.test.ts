import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {Agent, fetch} from 'undici'
import WebSocket from 'ws'

import {migrate} from '../../src/services/storage/migrations.js'
import {openPostgres} from '../../src/services/storage/postgres.js'
import {type ClusterNode, startClusterNodes} from '../helpers/cluster-nodes.js'
import {type WebhookPeer, startWebhook} from '../helpers/notify-peers.js'
import {type TestPostgres, startPostgres} from '../helpers/postgres.js'
import {TEST_TOKEN} from '../helpers/serve.js'

type Json = any

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const reading = (i: number, overrides: Record<string, unknown> = {}) => ({
  timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), time_hours: i * 0.1, reservoir_concentration: 25, outlet_concentration: 24.9,
  total_power: 0.002, cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5], biofilm_thicknesses: [10, 10, 10, 10, 10], q_action: 3, ...overrides,
})

describe('cluster live data: three `mfc serve` nodes on one real PostgreSQL', function () {
  this.timeout(180_000)
  let pg: TestPostgres
  let hook: WebhookPeer
  let nodes: ClusterNode[] = []
  let url: string
  /** The database's readings of `source` as "timestamp x count" rows. */
  const stored = async (source: string) => (await pg.psql(`SELECT ts, count(*) FROM mfc_readings WHERE source = '${source}' GROUP BY ts ORDER BY ts`, url.split('/').pop()))
    .split('\n').filter(Boolean).map((line) => {
      const [ts, n] = line.split('|')
      return `${new Date(Number(ts)).toISOString()} x${n}`
    })

  before(async () => {
    pg = await startPostgres()
    hook = await startWebhook(200)
    url = await pg.createDatabase()
    const db = await openPostgres({url})
    await migrate(db)
    await db.close()
    nodes = await startClusterNodes(3, url, {webhook: hook.url})
  })
  after(async () => {
    const codes = await Promise.all(nodes.map((n) => n.stop()))
    await hook?.close()
    await pg?.stop()
    expect(codes).to.deep.equal(nodes.map(() => 0))
  })

  it('a WSS client on node 1 receives the readings ingested through node 3, once each, in order', async () => {
    const [one, two, three] = nodes
    const onOne = one.stream()
    const onThree = three.stream()
    await Promise.all([onOne.opened, onThree.opened])
    await onOne.until(() => onOne.messages.some((m) => m.type === 'initial_data'), 'initial_data')
    await onThree.until(() => onThree.messages.some((m) => m.type === 'initial_data'), 'initial_data')
    const sent: string[] = []
    for (let batch = 0; batch < 5; batch++) {
      const readings = Array.from({length: 20}, (_, i) => reading(batch * 20 + i))
      const response = await three.call('POST', '/data/ingest', {source: 'rig-fan', readings})
      expect(response.status, response.text).to.equal(200)
      sent.push(...readings.map((r) => r.timestamp))
    }

    const other = await two.call('POST', '/data/ingest', {source: 'rig-two', readings: [reading(500), reading(501)]})
    expect(other.status, other.text).to.equal(200)
    await onOne.until(() => onOne.points('rig-fan').length >= sent.length && onOne.points('rig-two').length >= 2, 'the readings of nodes 3 and 2')
    await onThree.until(() => onThree.points('rig-two').length >= 2, 'node 2\'s readings on node 3')
    // Settle, so a late duplicate would be seen.
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(onOne.points('rig-fan').map((p: Json) => p.timestamp)).to.deep.equal(sent)
    expect(onThree.points('rig-fan').map((p: Json) => p.timestamp), 'the ingesting node: its own delivery, no echo').to.deep.equal(sent)
    expect(onOne.points('rig-two').map((p: Json) => p.timestamp)).to.deep.equal([reading(500).timestamp, reading(501).timestamp])
    // The readings are shown by node 1 (sources, latest), not stored there.
    const sources = await one.call('GET', '/sources')
    expect(sources.json.sources.map((s: Json) => s.name)).to.include.members(['rig-fan', 'rig-two'])
  })

  it('an alert episode seen by every node notifies once for the cluster, and its clear once', async () => {
    const [one, two, three] = nodes
    const alerts = () => hook.bodies.filter((b) => ['alert:raised', 'alert:cleared'].includes(b.event as string) && (b.details as Record<string, string>).Source === 'rig-alert')
    const ingest = async (node: ClusterNode, readings: Json[]) => {
      const response = await node.call('POST', '/data/ingest', {source: 'rig-alert', readings})
      expect(response.status, response.text).to.equal(200)
    }

    // total_power under its default floor (0.001 W, email_notify) on node 2, back up through node 3:
    // every node evaluates every reading (fan-out), each raises and clears the episode itself.
    await ingest(two, [reading(1000), reading(1001, {total_power: 0}), reading(1002, {total_power: 0.0001})])
    await hook.waitFor((b) => b.event === 'alert:raised' && (b.details as Record<string, string>).Source === 'rig-alert')
    await ingest(three, [reading(1003, {total_power: 0.002})])
    await hook.waitFor((b) => b.event === 'alert:cleared' && (b.details as Record<string, string>).Source === 'rig-alert')
    // A second episode, raised and cleared inside one batch through node 1.
    await ingest(one, [reading(1004, {total_power: 0}), reading(1005, {total_power: 0.002})])
    const deadline = Date.now() + 20_000
    while (alerts().length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    // Every node has the episodes in its own view (they all saw the data) ...
    for (const node of nodes) {
      const state = (await node.call('GET', '/sources/rig-alert')).json.alerts.find((a: Json) => a.parameter === 'total_power')
      expect(state, node.serve.url('api')).to.include({episodes: 2, active: false})
    }

    // ... and a late duplicate would have arrived by now.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    // The raise and the clear of one batch may be sent by different nodes, so they may arrive in either order.
    expect(alerts().map((b) => b.event).sort()).to.deep.equal(['alert:cleared', 'alert:cleared', 'alert:raised', 'alert:raised'])
    expect(alerts().filter((b) => b.event === 'alert:raised').map((b) => b.subject)).to.deep.equal(['Alert: rig-alert total_power = 0 (warning)', 'Alert: rig-alert total_power = 0 (warning)'])
    const clears = alerts().filter((b) => b.event === 'alert:cleared')
    expect(clears.map((b) => (b.details as Record<string, string>)['Raised at']).sort(), 'one clear per episode').to.deep.equal([reading(1001).timestamp, reading(1004).timestamp])
    expect(clears.map((b) => b.subject)).to.deep.equal(['Alert cleared: rig-alert total_power = 0.002', 'Alert cleared: rig-alert total_power = 0.002'])
  })

  it('a WSS client on node 1 gets every reading once, in order, while its LISTEN session is killed again and again; a raise in the gap notifies once', async () => {
    const [one, , three] = nodes
    const onOne = one.stream()
    await onOne.opened
    await onOne.until(() => onOne.messages.some((m) => m.type === 'initial_data'), 'initial_data')
    const webhookRaises = () => hook.bodies.filter((b) => b.event === 'alert:raised' && (b.details as Record<string, string>).Source === 'rig-gap')
    // Node 1's bus session (application_name "... bus <host>-<pid>-<random>"), killed whenever it is back, for a while.
    const kill = `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE '% bus %-${one.serve.pid}-%'`
    let killing = true
    let kills = 0
    const killer = (async () => {
      while (killing) {
        kills += Number(await pg.psql(kill))
        await sleep(40)
      }
    })()
    const sent: string[] = []
    try {
      // At least 15 batches, more on a loaded machine until the session was killed 5 times.
      for (let batch = 0; batch < 15 || (kills < 5 && batch < 60); batch++) {
        // Batch 6 raises total_power's alert (under its 0.001 W floor), batch 8 clears it.
        const readings = Array.from({length: 10}, (_, i) => reading(2000 + batch * 10 + i, batch === 6 ? {total_power: 0} : {}))
        const response = await three.call('POST', '/data/ingest', {source: 'rig-gap', readings})
        expect(response.status, response.text).to.equal(200)
        sent.push(...readings.map((r) => r.timestamp))
        await sleep(60)
      }
    } finally {
      killing = false
      await killer
    }

    expect(kills, 'node 1\'s bus session was terminated').to.be.at.least(5)
    await onOne.until(() => onOne.points('rig-gap').length >= sent.length, 'every reading on node 1', 30_000)
    await sleep(1000)
    expect(onOne.points('rig-gap').map((p: Json) => p.timestamp), 'once each, in order').to.deep.equal(sent)
    const lines = readFileSync(one.serve.logFile, 'utf8').split('\n')
    const caught = lines.filter((l) => l.includes('caught up with the readings')).map((l) => JSON.parse(l) as {delivered: number})
    expect(caught.reduce((n, l) => n + l.delivered, 0), 'readings were caught up from the history (they were stored while node 1 was not listening)').to.be.greaterThan(0)
    expect(lines.some((l) => l.includes('Checking the certificates now') && l.includes('cluster bus reconnected')), 'a reconnect checks the certificates').to.equal(true)
    const alerts = onOne.messages.filter((m) => ['alert_raised', 'alert_cleared'].includes(m.type) && m.alert.source === 'rig-gap' && m.alert.parameter === 'total_power')
    expect(alerts.map((m) => m.type), 'node 1\'s clients saw the episode').to.deep.equal(['alert_raised', 'alert_cleared'])
    await hook.waitFor((b) => b.event === 'alert:cleared' && (b.details as Record<string, string>).Source === 'rig-gap')
    await sleep(1000)
    expect(webhookRaises(), 'one notification for the cluster').to.have.length(1)
  })

  it('a dashboard session made on node 1 opens the WSS stream on node 2 with its cookie, and a logout on node 1 closes and refuses it', async () => {
    const [one, two] = nodes
    const dispatcher = new Agent({connect: {ca: one.site.caPem}})
    try {
      const login = await fetch(one.serve.url('dashboard') + '/login', {dispatcher, method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({token: TEST_TOKEN})})
      const body = await login.json() as {csrf_token: string}
      expect(login.status).to.equal(200)
      const cookie = String(login.headers.get('set-cookie')).split(';')[0]
      const origin = `https://localhost:${new URL(two.serve.url('dashboard')).port}`
      const open = () => new WebSocket(two.serve.url('streamer') + '/', {ca: two.site.caPem, headers: {cookie, origin}})
      const socket = open()
      const first = await new Promise<Json>((resolve, reject) => {
        socket.once('message', (data) => resolve(JSON.parse(data.toString())))
        socket.once('error', reject)
      })
      expect(first.type).to.equal('initial_data')
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
      const logout = await fetch(one.serve.url('dashboard') + '/logout', {dispatcher, method: 'POST', headers: {cookie, 'x-csrf-token': body.csrf_token}})
      expect(logout.status).to.equal(200)
      expect(await closed, 'node 2 closes the socket of the session ended on node 1').to.equal(4401)
      const refused = await new Promise<number>((resolve) => {
        const again = open()
        again.once('unexpected-response', (_request, response) => {
          resolve(response.statusCode ?? 0)
          again.terminate()
        })
        again.once('open', () => {
          resolve(101)
          again.terminate()
        })
        again.once('error', () => {})
      })
      expect(refused, 'a new handshake with the ended session').to.equal(401)
    } finally {
      await dispatcher.close()
    }
  })

  it('a PostgreSQL restart: every node degrades and answers ingest 503 + Retry-After (nothing stored), keeps TLS, and recovers ingest and stream; every acknowledged reading is stored once', async () => {
    const clients = nodes.map((n) => n.stream())
    await Promise.all(clients.map((c) => c.opened))
    const acknowledged: string[] = []
    const ingest = async (node: ClusterNode, from: number) => {
      const readings = Array.from({length: 5}, (_, i) => reading(from + i))
      const response = await node.call('POST', '/data/ingest', {source: 'rig-restart', readings})
      if (response.status === 200) acknowledged.push(...readings.map((r) => r.timestamp))
      return {readings, response}
    }

    for (const [i, node] of nodes.entries()) expect((await ingest(node, 3000 + i * 5)).response.status).to.equal(200)
    await pg.crash()
    const refused: string[] = []
    try {
      for (const [i, node] of nodes.entries()) {
        let health: Json
        const deadline = Date.now() + 15_000
        do {
          health = (await node.call('GET', '/health')).json
          if (health.status !== 'degraded') await sleep(200)
        } while (health.status !== 'degraded' && Date.now() < deadline)
        // Answered over TLS with the node's last certificate: serving goes on without the database.
        expect(health.status, `${node.serve.url('api')} /health`).to.equal('degraded')
        const {readings, response} = await ingest(node, 3100 + i * 5)
        expect(response.status, response.text).to.equal(503)
        expect(Number(response.headers.get('retry-after'))).to.be.greaterThan(0)
        refused.push(...readings.map((r) => r.timestamp))
      }
    } finally {
      await pg.start()
    }

    // After the restart every node takes readings again (a client retries after Retry-After).
    for (const [i, node] of nodes.entries()) {
      const deadline = Date.now() + 30_000
      let status = 0
      while (status !== 200 && Date.now() < deadline) {
        const {response} = await ingest(node, 3200 + i * 5)
        status = response.status
        if (status !== 200) {
          expect(status, response.text).to.equal(503)
          await sleep(300)
        }
      }

      expect(status, `ingest on ${node.serve.url('api')} after the restart`).to.equal(200)
    }

    // The stream resumes on every node: each node's client sees the readings ingested through every node after the restart.
    const after = Array.from({length: 3}, (_, i) => Array.from({length: 5}, (__, j) => reading(3200 + i * 5 + j).timestamp)).flat()
    for (const [i, client] of clients.entries()) {
      await client.until(() => after.every((t) => client.points('rig-restart').some((p: Json) => p.timestamp === t)), `the post-restart readings on node ${i + 1}`, 30_000)
    }

    await sleep(500)
    for (const client of clients) {
      const seen = client.points('rig-restart').map((p: Json) => p.timestamp)
      expect(new Set(seen).size, 'no reading twice on a stream').to.equal(seen.length)
      expect(seen.filter((t: string) => refused.includes(t)), 'a refused reading never streamed').to.deep.equal([])
    }

    expect(await stored('rig-restart'), 'every acknowledged reading stored once, nothing refused stored').to.deep.equal([...acknowledged].sort().map((t) => `${t} x1`))
  })
})

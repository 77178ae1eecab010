import {expect} from 'chai'

import {migrate} from '../../src/services/storage/migrations.js'
import {openPostgres} from '../../src/services/storage/postgres.js'
import {type ClusterNode, startClusterNodes} from '../helpers/cluster-nodes.js'
import {type WebhookPeer, startWebhook} from '../helpers/notify-peers.js'
import {type TestPostgres, startPostgres} from '../helpers/postgres.js'

type Json = any

const reading = (i: number, overrides: Record<string, unknown> = {}) => ({
  timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), time_hours: i * 0.1, reservoir_concentration: 25, outlet_concentration: 24.9,
  total_power: 0.002, cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5], biofilm_thicknesses: [10, 10, 10, 10, 10], q_action: 3, ...overrides,
})

describe('cluster live data: three `mfc serve` nodes on one real PostgreSQL', function () {
  this.timeout(180_000)
  let pg: TestPostgres
  let hook: WebhookPeer
  let nodes: ClusterNode[] = []

  before(async () => {
    pg = await startPostgres()
    hook = await startWebhook(200)
    const url = await pg.createDatabase()
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
})

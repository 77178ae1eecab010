import {expect} from 'chai'

import {migrate} from '../../src/services/storage/migrations.js'
import {openPostgres} from '../../src/services/storage/postgres.js'
import {type ClusterNode, startClusterNodes} from '../helpers/cluster-nodes.js'
import {type TestPostgres, startPostgres} from '../helpers/postgres.js'

type Json = any

/** The pid in a node id (`host-pid-random`), so a test knows which serve process it names. */
const pidOf = (node: string) => Number(node.split('-').at(-2))

describe('cluster simulator: one run for three `mfc serve` nodes on one real PostgreSQL', function () {
  this.timeout(180_000)
  let pg: TestPostgres
  let nodes: ClusterNode[] = []

  before(async () => {
    pg = await startPostgres()
    const url = await pg.createDatabase()
    const db = await openPostgres({url})
    await migrate(db)
    await db.close()
    nodes = await startClusterNodes(3, url, {settings: {simulation_speed: 20, simulation_sample_ms: 100}})
  })
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
    await pg?.stop()
  })

  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 30_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  it('runs at most one simulation, visible from every node; kill -9 of its node: another takes the same run over; stop from any node', async () => {
    const [one, two, three] = nodes
    const started = await one.call('POST', '/simulation/start', {duration_hours: 1000, seed: 7})
    expect(started.status, started.text).to.equal(200)
    const runId: string = started.json.run_id
    const first: string = started.json.simulation.node
    expect(pidOf(first)).to.equal(one.serve.pid)

    const second = await two.call('POST', '/simulation/start', {duration_hours: 10})
    expect(second.status, second.text).to.equal(409)
    expect(second.json.detail).to.equal(`Simulation ${runId} is already running on node ${first}`)

    for (const node of [two, three]) {
      await until('the run on every node', async () => {
        const status = (await node.call('GET', '/simulation/status')).json
        return status.is_running && status.run_id === runId && status.node === first && status.progress_percent > 0
      })
    }

    const client = three.stream()
    await client.opened
    await client.until(() => client.points('simulator').some((p: Json) => p.run_id === runId), 'simulator readings of the run on node 3')
    const hoursBefore = (await two.call('GET', '/simulation/status')).json.current_time_hours

    one.serve.child.kill('SIGKILL')
    let holder = ''
    await until('a takeover', async () => {
      const [a, b] = await Promise.all([two.call('GET', '/simulation/status'), three.call('GET', '/simulation/status')])
      holder = a.json.node
      return a.json.is_running && a.json.node !== first && b.json.node === a.json.node && a.json.run_id === runId && b.json.run_id === runId
    })
    const [taker, other] = pidOf(holder) === two.serve.pid ? [two, three] : [three, two]
    expect(pidOf(holder)).to.equal(taker.serve.pid)
    // The same run goes on where it was (the seeded model replays to the wall clock), streaming again.
    const seen = client.points('simulator').length
    await client.until(() => client.points('simulator').length > seen + 3, 'simulator readings after the takeover')
    expect(client.points('simulator').every((p: Json) => p.run_id === runId)).to.equal(true)
    expect((await taker.call('GET', '/simulation/status')).json.current_time_hours).to.be.greaterThan(hoursBefore)

    const stopped = await other.call('POST', '/simulation/stop')
    expect(stopped.status, stopped.text).to.equal(200)
    expect(stopped.json.simulation).to.include({is_running: false, state: 'stopped', run_id: runId, node: holder})
    expect((await taker.call('GET', '/simulation/status')).json).to.include({is_running: false, state: 'stopped'})
    const again = await other.call('POST', '/simulation/start', {duration_hours: 1})
    expect(again.status, again.text).to.equal(200)
    expect(pidOf(again.json.simulation.node)).to.equal(other.serve.pid)
    expect((await other.call('POST', '/simulation/stop')).json.simulation.is_running).to.equal(false)
  })
})

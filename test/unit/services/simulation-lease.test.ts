import {expect} from 'chai'

import {systemClock} from '../../../src/lib/clock.js'
import {InProcessClusterBus, InProcessHub} from '../../../src/services/cluster/bus.js'
import {ClusterSimulation} from '../../../src/services/cluster/simulation-lease.js'
import {SimulationRunner} from '../../../src/services/data/simulation-runner.js'
import {migrate} from '../../../src/services/storage/migrations.js'
import {type PgDatabase, openPostgres} from '../../../src/services/storage/postgres.js'
import {type TestPostgres, startPostgres} from '../../helpers/postgres.js'

const CONFIG = {duration_hours: 100, n_cells: 5, electrode_area_m2: 0.001, target_concentration: 25, use_pretrained: true, learning_rate: 0.1, epsilon_initial: 0.4, discount_factor: 0.95}

describe('ClusterSimulation (real PostgreSQL 15, two nodes in one process)', function () {
  this.timeout(120_000)
  let pg: TestPostgres
  let db: PgDatabase
  const open: ClusterSimulation[] = []
  before(async () => {
    pg = await startPostgres()
    db = await openPostgres({url: await pg.createDatabase()})
    await migrate(db)
  })
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()))
  })
  after(async () => {
    await db?.close()
    await pg?.stop()
  })

  const hub = new InProcessHub()
  const node = async (nodeId: string) => {
    const local = new SimulationRunner({clock: systemClock, speed: 10, sampleIntervalMs: 50, seed: 1, publish() {}})
    const simulation = await ClusterSimulation.start({db, bus: new InProcessClusterBus({hub, nodeId}), local, intervalMs: 100})
    open.push(simulation)
    return simulation
  }

  const until = async (what: string, check: () => boolean) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    expect(check(), what).to.equal(true)
  }

  it('one run: a second start anywhere is a 409 naming the node; stop from the other node stops it', async () => {
    const [a, b] = [await node('node-a'), await node('node-b')]
    const started = await a.start(CONFIG)
    expect(started).to.include({is_running: true, node: 'node-a'})
    const conflict = await b.start(CONFIG).then(() => undefined, (error: Error & {code?: string}) => error)
    expect(conflict?.code).to.equal('MFC_DATA_CONFLICT')
    expect(conflict?.message).to.equal(`Simulation ${started.run_id} is already running on node node-a`)
    await until('node b sees the run of node a', () => b.status().run_id === started.run_id && b.status().node === 'node-a')
    const stopped = await b.stop()
    expect(stopped).to.include({is_running: false, state: 'stopped', run_id: started.run_id, node: 'node-a'})
    expect(a.status().is_running).to.equal(false)
  })

  it('a node closing hands its run over: another node resumes the same run', async () => {
    const [a, b] = [await node('node-c'), await node('node-d')]
    const started = await a.start(CONFIG)
    await until('node d sees the run', () => b.status().node === 'node-c')
    await a.close()
    await until('node d took the run over', () => b.status().node === 'node-d' && b.status().is_running)
    expect(b.status()).to.include({run_id: started.run_id, start_time: started.start_time})
    await b.stop()
  })

  it('answers 503 MFC_CLUSTER_UNAVAILABLE (naming the database problem) when the database is down', async () => {
    const a = await node('node-e')
    await pg.crash()
    try {
      const error = await a.start(CONFIG).then(() => undefined, (caught: Error & {code?: string}) => caught)
      expect(error?.code).to.equal('MFC_CLUSTER_UNAVAILABLE')
      expect(error?.message).to.contain(`127.0.0.1:${pg.port}`)
      expect(a.status().is_running).to.equal(false)
    } finally {
      await pg.start()
    }
  })
})

import {expect} from 'chai'

import {MfcEventBus} from '../../../src/lib/events.js'
import {ClusterAlertGate, PgAlertEpisodes} from '../../../src/services/cluster/alert-episodes.js'
import {migrate} from '../../../src/services/storage/migrations.js'
import {type PgDatabase, openPostgres} from '../../../src/services/storage/postgres.js'
import {type TestPostgres, startPostgres} from '../../helpers/postgres.js'

describe('PgAlertEpisodes and ClusterAlertGate (real PostgreSQL 15)', function () {
  this.timeout(120_000)
  let pg: TestPostgres
  let db: PgDatabase
  before(async () => {
    pg = await startPostgres()
    db = await openPostgres({url: await pg.createDatabase()})
    await migrate(db)
  })
  after(async () => {
    await db?.close()
    await pg?.stop()
  })

  it('of many racing claims of one episode exactly one wins, for the raise and for the clear', async () => {
    const episodes = new PgAlertEpisodes(db)
    const key = {source: 'rig-1', parameter: 'total_power', since: '2026-01-01T00:00:01.000Z'}
    const raised = await Promise.all(Array.from({length: 12}, (_, i) => episodes.claimRaise(key, `node-${i % 3}`)))
    expect(raised.filter(Boolean)).to.have.length(1)
    const cleared = await Promise.all(Array.from({length: 12}, (_, i) => episodes.claimClear(key, `node-${i % 3}`)))
    expect(cleared.filter(Boolean)).to.have.length(1)
    expect(await episodes.claimRaise(key, 'node-late'), 'a lagging node raising the same (closed) episode again').to.equal(false)
    expect(await episodes.claimRaise({...key, since: '2026-01-01T00:00:09.000Z'}, 'node-1'), 'the next episode').to.equal(true)
  })

  it('"no data" (started by each node\'s clock) is one open episode per source, cleared by any node', async () => {
    const episodes = new PgAlertEpisodes(db)
    const at = (since: string) => ({source: 'rig-2', parameter: 'no_data', since})
    expect(await episodes.claimRaise(at('2026-01-01T00:01:00.001Z'), 'node-1')).to.equal(true)
    expect(await episodes.claimRaise(at('2026-01-01T00:01:00.007Z'), 'node-2')).to.equal(false)
    expect(await episodes.claimClear(at('2026-01-01T00:01:00.007Z'), 'node-2')).to.equal(true)
    expect(await episodes.claimClear(at('2026-01-01T00:01:00.001Z'), 'node-1')).to.equal(false)
  })

  it('the gate passes on only the claimed events, raise before clear, and notifies anyway when the database fails', async () => {
    const [from1, from2, to] = [new MfcEventBus(), new MfcEventBus(), new MfcEventBus()]
    const seen: string[] = []
    to.on('alert:raised', (p) => seen.push(`raised ${p.source}`))
    to.on('alert:cleared', (p) => seen.push(`cleared ${p.source}`))
    const problems: string[] = []
    const gates = [new ClusterAlertGate(from1, to, new PgAlertEpisodes(db), 'node-1'), new ClusterAlertGate(from2, to, new PgAlertEpisodes(db), 'node-2')]
    const raise = {source: 'rig-3', parameter: 'total_power', value: 0, message: 'low', severity: 'warning', since: '2026-01-01T00:02:00.000Z'}
    const clear = {source: 'rig-3', parameter: 'total_power', value: 0.002, since: raise.since}
    for (const bus of [from1, from2]) {
      bus.emit('alert:raised', raise)
      bus.emit('alert:cleared', clear)
    }

    await Promise.all(gates.map((g) => g.flush()))
    expect(seen).to.deep.equal(['raised rig-3', 'cleared rig-3'])
    const broken = await openPostgres({url: pg.url('no_such_database')})
    const failing = new ClusterAlertGate(from1, to, new PgAlertEpisodes(broken), 'node-1', (error) => problems.push(error.message))
    for (const gate of gates) gate.close()
    from1.emit('alert:raised', {...raise, source: 'rig-4'})
    await failing.flush()
    await broken.close()
    expect(seen.at(-1)).to.equal('raised rig-4')
    expect(problems[0]).to.contain('no_such_database')
  })
})

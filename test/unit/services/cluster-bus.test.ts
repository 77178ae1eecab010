import {expect} from 'chai'

import {InProcessClusterBus, InProcessHub, PgClusterBus, chunkUtf8} from '../../../src/services/cluster/bus.js'
import {type PgDatabase, openPostgres} from '../../../src/services/storage/postgres.js'
import {clusterBusContract} from '../../contracts/cluster-bus.js'
import {type TestPostgres, startPostgres} from '../../helpers/postgres.js'

describe('chunkUtf8', () => {
  it('cuts at byte limits, never inside a character, and joins back to the same text', () => {
    const text = 'a🧪é'.repeat(1000)
    const chunks = chunkUtf8(text, 101)
    expect(chunks.join('')).to.equal(text)
    for (const chunk of chunks) expect(Buffer.byteLength(chunk)).to.be.at.most(101)
    expect(chunks.every((chunk) => !chunk.includes('\uFFFD'))).to.equal(true)
    expect(chunkUtf8('short', 101)).to.deep.equal(['short'])
  })
})

clusterBusContract('InProcessClusterBus', {
  async make() {
    const hub = new InProcessHub()
    return {a: new InProcessClusterBus({hub, nodeId: 'node-1'}), b: new InProcessClusterBus({hub, nodeId: 'node-2'})}
  },
})

describe('PgClusterBus (real PostgreSQL 15)', function () {
  this.timeout(120_000)
  let pg: TestPostgres
  let dbs: PgDatabase[] = []
  before(async () => {
    pg = await startPostgres()
  })
  after(async () => pg?.stop())

  const open = async (url: string) => {
    const db = await openPostgres({url})
    dbs.push(db)
    return db
  }

  clusterBusContract('PgClusterBus', {
    connected: true,
    async make() {
      const url = await pg.createDatabase()
      const a = await PgClusterBus.start(await open(url), {nodeId: 'node-1'})
      const b = await PgClusterBus.start(await open(url), {nodeId: 'node-2', minBackoffMs: 50, maxBackoffMs: 500})
      const cut = async () => {
        const killed = await pg.psql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE '% bus node-2'`)
        expect(killed).to.equal('1')
      }

      return {a, b, cut}
    },
    async dispose() {
      await Promise.all(dbs.map((db) => db.close()))
      dbs = []
    },
  })

  it('starts while the database is down (not connected), and connects when it comes up', async () => {
    const url = await pg.createDatabase()
    const db = await open(url)
    await pg.crash()
    let bus: PgClusterBus | undefined
    try {
      bus = await PgClusterBus.start(db, {nodeId: 'node-late', minBackoffMs: 50, maxBackoffMs: 300})
      expect(bus.connected).to.equal(false)
      const error = await bus.publish('mfc:late', 'x').then(() => undefined, (caught: Error & {code?: string}) => caught)
      expect(error?.code).to.equal('MFC_STORE_UNAVAILABLE')
      expect(error?.message).to.contain(`127.0.0.1:${pg.port}`)
      const got: string[] = []
      await bus.subscribe('mfc:late', (m) => got.push(m.payload))
      const regained = new Promise<void>((resolve) => bus!.on('regained', () => resolve()))
      await pg.start()
      await regained
      expect(bus.connected).to.equal(true)
      await bus.publish('mfc:late', 'now')
      for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 100))
      expect(got).to.deep.equal(['now'])
    } finally {
      await bus?.close()
      await pg.start().catch(() => {})
    }
  })
})

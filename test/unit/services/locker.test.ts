import {expect} from 'chai'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {FileLocker} from '../../../src/services/storage/locker.js'
import {PgLocker} from '../../../src/services/storage/pg-locker.js'
import {type PgDatabase, openPostgres} from '../../../src/services/storage/postgres.js'
import {lockerContract} from '../../contracts/locker.js'
import {type TestPostgres, startPostgres} from '../../helpers/postgres.js'

let dir: string | undefined
lockerContract('FileLocker', {
  async make() {
    dir = await mkdtemp(join(tmpdir(), 'cluster-lock-'))
    return {locker: new FileLocker(dir), holderArgs: ['file', dir]}
  },
  async dispose() {
    if (dir) await rm(dir, {force: true, recursive: true})
  },
})

describe('PgLocker (real PostgreSQL 15)', function () {
  this.timeout(120_000)
  let pg: TestPostgres
  let db: PgDatabase | undefined
  before(async () => {
    pg = await startPostgres()
  })
  after(async () => pg?.stop())

  lockerContract('PgLocker', {
    async make() {
      const url = await pg.createDatabase()
      db = await openPostgres({url})
      return {locker: new PgLocker(db), holderArgs: ['pg', url]}
    },
    async dispose() {
      await db?.close()
    },
  })

  it('names the holder (its application name) in the MFC_LOCKED error', async () => {
    const url = await pg.createDatabase()
    const one = await openPostgres({url, applicationName: 'mfc node-1 4242'})
    const two = await openPostgres({url, applicationName: 'mfc node-2 4343'})
    try {
      const held = await new PgLocker(one).acquire('renewal', 'cert renew')
      const error = await new PgLocker(two).acquire('renewal', 'cert renew').then(() => undefined, (caught: unknown) => caught as Error)
      expect(error?.message).to.contain('mfc node-1 4242 cert renew')
      await held.release()
    } finally {
      await one.close()
      await two.close()
    }
  })
})

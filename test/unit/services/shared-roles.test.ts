import {expect} from 'chai'
import {randomBytes} from 'node:crypto'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {AccountStore} from '../../../src/services/acme/account-store.js'
import {SessionStore} from '../../../src/services/servers/auth.js'
import {FileChallengeTokens, PgChallengeTokens} from '../../../src/services/storage/challenge-tokens.js'
import {KeySealer} from '../../../src/services/storage/key-sealer.js'
import {migrate} from '../../../src/services/storage/migrations.js'
import {PgAccountStore} from '../../../src/services/storage/pg-account-store.js'
import {type PgDatabase, openPostgres} from '../../../src/services/storage/postgres.js'
import {MemorySessions, PgSessions} from '../../../src/services/storage/sessions.js'
import {accountStoreContract, challengeTokenContract, sessionContract} from '../../contracts/shared-roles.js'
import {type TestPostgres, startPostgres} from '../../helpers/postgres.js'

const TTL = 3_600_000
let dir: string | undefined
const tempDir = async () => (dir = await mkdtemp(join(tmpdir(), 'cluster-roles-')))
const removeDir = async () => {
  if (dir) await rm(dir, {force: true, recursive: true})
}

accountStoreContract('AccountStore (files)', {
  async make() {
    const root = await tempDir()
    return {store: new AccountStore(root), peer: new AccountStore(root)}
  },
  dispose: removeDir,
})
challengeTokenContract('FileChallengeTokens', {
  async make() {
    const root = await tempDir()
    return {store: new FileChallengeTokens(root), peer: new FileChallengeTokens(root)}
  },
  dispose: removeDir,
})
sessionContract('MemorySessions', {
  async make(now) {
    const store = new MemorySessions(new SessionStore(TTL, 1000, now))
    return {store, peer: store}
  },
}, TTL)

describe('shared roles on a real PostgreSQL 15', function () {
  this.timeout(120_000)
  let pg: TestPostgres
  let open: PgDatabase[] = []
  const key = randomBytes(32)
  before(async () => {
    pg = await startPostgres()
  })
  after(async () => pg?.stop())

  /** Two pools on one fresh, migrated database: two nodes. */
  async function twoNodes(): Promise<[PgDatabase, PgDatabase]> {
    const url = await pg.createDatabase()
    open = [await openPostgres({url}), await openPostgres({url})]
    await migrate(open[0])
    return [open[0], open[1]]
  }

  const closeAll = async () => {
    await Promise.all(open.map((db) => db.close()))
    open = []
  }

  accountStoreContract('PgAccountStore', {
    async make() {
      const [a, b] = await twoNodes()
      return {store: new PgAccountStore(a, new KeySealer(key, 'MFC_STORAGE_KEY')), peer: new PgAccountStore(b, new KeySealer(key, 'MFC_STORAGE_KEY'))}
    },
    dispose: closeAll,
  })
  challengeTokenContract('PgChallengeTokens', {
    async make() {
      const [a, b] = await twoNodes()
      return {store: new PgChallengeTokens(a), peer: new PgChallengeTokens(b)}
    },
    dispose: closeAll,
  })
  sessionContract('PgSessions', {
    async make(now) {
      const [a, b] = await twoNodes()
      return {store: new PgSessions(a, TTL, now), peer: new PgSessions(b, TTL, now)}
    },
    dispose: closeAll,
  }, TTL)

  it('keeps the ACME account key sealed and session ids hashed in the database', async () => {
    const [a] = await twoNodes()
    try {
      const {pem} = await new PgAccountStore(a, new KeySealer(key, 'MFC_STORAGE_KEY')).key('https://ca.example/dir')
      const session = await new PgSessions(a).create()
      const db = (await a.query<{d: string}>('SELECT current_database() AS d'))[0].d
      const dump = await pg.psql("SELECT encode(key_sealed, 'base64') FROM mfc_acme_accounts UNION ALL SELECT encode(id_hash, 'base64') FROM mfc_sessions", db)
      expect(dump).not.to.contain(pem.split('\n')[1])
      expect(dump).not.to.contain(session.id)
      expect(dump).not.to.contain(Buffer.from(session.id, 'base64url').toString('base64'))
    } finally {
      await closeAll()
    }
  })
})

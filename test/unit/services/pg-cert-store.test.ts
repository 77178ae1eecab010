import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {KeySealer} from '../../../src/services/storage/key-sealer.js'
import {migrate} from '../../../src/services/storage/migrations.js'
import {PgCertStore} from '../../../src/services/storage/pg-cert-store.js'
import {type PgDatabase, openPostgres} from '../../../src/services/storage/postgres.js'
import {certStoreContract} from '../../contracts/cert-store.js'
import {mintBundle, mintCa, pairMatches} from '../../helpers/certs.js'
import {ROOT} from '../../helpers/cli.js'
import {type TestPostgres, startPostgres} from '../../helpers/postgres.js'

describe('PgCertStore (real PostgreSQL 15)', function () {
  this.timeout(120_000)
  let pg: TestPostgres
  let db: PgDatabase | undefined
  let cache: string | undefined
  const key = randomBytes(32)

  before(async () => {
    pg = await startPostgres()
  })
  after(async () => pg?.stop())

  async function fresh(): Promise<{db: PgDatabase; store: PgCertStore; url: string}> {
    const url = await pg.createDatabase()
    db = await openPostgres({url})
    await migrate(db)
    cache = await mkdtemp(join(tmpdir(), 'cluster-cache-'))
    return {db, url, store: new PgCertStore(db, new KeySealer(key, 'MFC_STORAGE_KEY'), join(cache, 'certs'))}
  }

  async function cleanup(): Promise<void> {
    await db?.close()
    db = undefined
    if (cache) await rm(cache, {force: true, recursive: true})
  }

  certStoreContract('PgCertStore', {make: async () => (await fresh()).store, dispose: cleanup})

  describe('at rest and across nodes', () => {
    afterEach(cleanup)

    it('stores the private key sealed (no PEM in the database) and a second node reads the same pair', async () => {
      const {store, url} = await fresh()
      const ca = await mintCa()
      const bundle = await mintBundle(ca, 'example.test')
      await store.put('example.test', bundle)
      const dump = await pg.psql("SELECT encode(key_sealed, 'escape') || cert_pem || meta::text FROM mfc_certs", url.split('/').pop())
      expect(dump).not.to.contain('PRIVATE KEY')
      expect(dump).not.to.contain(bundle.keyPem.split('\n')[1])

      const otherCache = await mkdtemp(join(tmpdir(), 'cluster-cache-'))
      const other = await openPostgres({url})
      try {
        const node2 = new PgCertStore(other, new KeySealer(key, 'MFC_STORAGE_KEY'), otherCache)
        const live = (await node2.live('example.test'))!
        expect(await readFile(live.keyFile, 'utf8')).to.equal(bundle.keyPem)
        expect((await stat(live.keyFile)).mode & 0o777).to.equal(0o600)
        expect((await stat(otherCache)).mode & 0o777).to.equal(0o700)
      } finally {
        await other.close()
        await rm(otherCache, {force: true, recursive: true})
      }
    })

    it('a node with another storage key gets an error naming the setting, and writes nothing', async () => {
      const {store, url} = await fresh()
      await store.put('example.test', await mintBundle(await mintCa(), 'example.test'))
      const otherCache = await mkdtemp(join(tmpdir(), 'cluster-cache-'))
      const other = await openPostgres({url})
      try {
        const wrong = new PgCertStore(other, new KeySealer(randomBytes(32), 'storage_key_file /etc/mfc/storage.key'), otherCache)
        const error = await wrong.live('example.test').then(() => undefined, (caught: unknown) => caught as {code: string; message: string})
        expect(error?.code).to.equal('MFC_CONFIG_VALUE')
        expect(error?.message).to.contain('storage_key_file /etc/mfc/storage.key')
        expect(await store.versions('example.test')).to.deep.equal(['0001'])
      } finally {
        await other.close()
        await rm(otherCache, {force: true, recursive: true})
      }
    })

    it('a writer killed with SIGKILL at random instants never leaves a live certificate without its key', async () => {
      const {store, url} = await fresh()
      const ca = await mintCa()
      const bundles = [await mintBundle(ca, 'example.test'), await mintBundle(ca, 'example.test')]
      await store.put('example.test', bundles[0])
      for (let round = 0; round < 5; round++) {
        const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'pg-store-writer.ts'), url, key.toString('base64'), join(cache!, 'writer'), 'example.test'],
          {cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit']})
        child.stdin.end(JSON.stringify(bundles))
        const closed = new Promise((resolve) => child.on('close', resolve))
        // Killed at a random instant after its first write of this round (however loaded the machine).
        await new Promise<void>((resolve) => {
          child.stdout.on('data', (chunk: Buffer) => {
            if (chunk.toString().includes('put')) resolve()
          })
        })
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 300))
        child.kill('SIGKILL')
        await closed
        // A node that never saw these versions reads the live one from the database.
        await rm(store.cacheDir, {force: true, recursive: true})
        const live = (await store.live('example.test'))!
        expect(pairMatches(await readFile(live.fullchainFile, 'utf8'), await readFile(live.keyFile, 'utf8')), `version ${live.version}`).to.equal(true)
        const versions = await store.versions('example.test')
        expect(versions.at(-1)).to.equal(live.version)
        expect(versions.map(Number)).to.deep.equal(versions.map((_, i) => i + 1))
      }

      // The writers really were writing when they were killed.
      expect((await store.versions('example.test')).length).to.be.greaterThan(5)
    })

    it('a sealed key moved to another version does not authenticate', async () => {
      const {store, url} = await fresh()
      const ca = await mintCa()
      await store.put('example.test', await mintBundle(ca, 'example.test'))
      await store.put('example.test', await mintBundle(ca, 'example.test'))
      await pg.psql("UPDATE mfc_certs SET key_sealed = (SELECT key_sealed FROM mfc_certs WHERE version = 1) WHERE version = 2", url.split('/').pop())
      // A node that has not read version 2 yet (put already wrote this node's local copy).
      await rm(store.cacheDir, {force: true, recursive: true})
      const error = await store.live('example.test').then(() => undefined, (caught: unknown) => caught as {code: string})
      expect(error?.code).to.equal('MFC_CERT_INVALID')
    })
  })
})

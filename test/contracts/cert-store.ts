import {expect} from 'chai'
import {readFile, stat} from 'node:fs/promises'

import type {CertBundle, CertStore} from '../../src/services/store/cert-store.js'
import {type TestCa, mintBundle, mintCa, pairMatches} from '../helpers/certs.js'

/** A fresh, empty store per test, and its disposal. */
export interface CertStoreFactory {
  make(): Promise<CertStore>
  dispose?(): Promise<void>
}

/**
 * The CertStore contract (src/services/store/cert-store.ts), one suite for every adapter:
 * versions only grow, `put` switches live atomically, nothing is deleted, `live` is undefined
 * when missing, and a reader never sees a certificate with another version's key.
 */
export function certStoreContract(label: string, factory: CertStoreFactory): void {
  describe(`CertStore contract: ${label}`, function () {
    this.timeout(60_000)
    let ca: TestCa
    let first: CertBundle
    let second: CertBundle
    let store: CertStore

    before(async () => {
      ca = await mintCa()
      first = await mintBundle(ca, 'example.test')
      second = await mintBundle(ca, 'example.test')
    })
    beforeEach(async () => {
      store = await factory.make()
    })
    afterEach(async () => factory.dispose?.())

    it('numbers versions from 0001, makes the newest live and keeps every version', async () => {
      const v1 = await store.put('example.test', first)
      const v2 = await store.put('example.test', second)
      expect([v1.version, v2.version]).to.deep.equal(['0001', '0002'])
      expect(await store.versions('example.test')).to.deep.equal(['0001', '0002'])
      const live = (await store.live('example.test'))!
      expect(live.version).to.equal('0002')
      expect(live.meta.serial).to.equal(second.meta.serial)
      expect(await readFile(live.fullchainFile, 'utf8')).to.equal(second.certPem.trim() + '\n' + second.chainPem.trim() + '\n')
      expect(await readFile(live.certFile, 'utf8')).to.equal(second.certPem.trim() + '\n')
      expect(await readFile(live.keyFile, 'utf8')).to.equal(second.keyPem)
      expect((await stat(live.keyFile)).mode & 0o777).to.equal(0o600)
    })

    it('returns undefined for a lineage that does not exist, and lists live lineages by name', async () => {
      expect(await store.live('nothing.test')).to.equal(undefined)
      expect(await store.versions('nothing.test')).to.deep.equal([])
      expect(await store.list()).to.deep.equal([])
      await store.put('b.test', first)
      await store.put('a.test', second)
      expect((await store.list()).map((s) => [s.name, s.meta.serial])).to.deep.equal([['a.test', second.meta.serial], ['b.test', first.meta.serial]])
    })

    it('rolls back to the previous or a named version without deleting any', async () => {
      await store.put('example.test', first)
      await store.put('example.test', second)
      expect((await store.rollback('example.test')).version).to.equal('0001')
      expect((await store.live('example.test'))!.meta.serial).to.equal(first.meta.serial)
      expect((await store.rollback('example.test', '0002')).meta.serial).to.equal(second.meta.serial)
      expect(await store.versions('example.test')).to.deep.equal(['0001', '0002'])
      const third = await store.put('example.test', first)
      expect(third.version).to.equal('0003')
    })

    it('refuses a rollback to a version that does not exist, naming the versions kept', async () => {
      await store.put('example.test', first)
      let error: unknown
      try {
        await store.rollback('example.test', '0009')
      } catch (caught) {
        error = caught
      }

      expect((error as {code?: string}).code).to.equal('MFC_STORE_IO')
      expect((error as {suggestions: string[]}).suggestions.join(' ')).to.contain('0001')
    })

    it('never gives a reader a certificate with another version\'s key while a writer switches versions', async () => {
      await store.put('example.test', first)
      let writing = true
      const writer = (async () => {
        for (let i = 0; i < 10; i++) await store.put('example.test', i % 2 ? first : second)
        writing = false
      })()
      let reads = 0
      while (writing) {
        const live = (await store.live('example.test'))!
        const [fullchain, key] = await Promise.all([readFile(live.fullchainFile, 'utf8'), readFile(live.keyFile, 'utf8')])
        expect(pairMatches(fullchain, key), `version ${live.version}`).to.equal(true)
        reads++
      }

      await writer
      expect(reads).to.be.greaterThan(0)
      expect(await store.versions('example.test')).to.have.length(11)
    })
  })
}

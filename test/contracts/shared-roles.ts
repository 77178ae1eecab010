import {expect} from 'chai'

import type {ManagedAccountStore} from '../../src/services/acme/account-store.js'
import type {ChallengeTokenStore} from '../../src/services/storage/challenge-tokens.js'
import type {SessionRepository} from '../../src/services/storage/sessions.js'

/**
 * A factory gives a store and its peer: another instance over the same storage (another node
 * for a database adapter; the same object when the adapter is one process's memory).
 */
export interface PeerFactory<T> {
  make(now: () => number): Promise<{store: T; peer: T}>
  dispose?(): Promise<void>
}

/** The ManagedAccountStore contract (src/services/acme/account-store.ts): AcmeAccountStore plus rollover and retire. */
export function accountStoreContract(label: string, factory: PeerFactory<ManagedAccountStore>): void {
  describe(`AcmeAccountStore contract: ${label}`, function () {
    this.timeout(60_000)
    afterEach(async () => factory.dispose?.())
    const dir = 'https://ca.example/dir'

    it('creates one key per directory on first use, and concurrent first calls converge on it', async () => {
      const {store, peer} = await factory.make(Date.now)
      const keys = await Promise.all([store.key(dir), peer.key(dir), store.key(dir)])
      expect(new Set(keys.map((k) => k.pem)).size).to.equal(1)
      expect(keys[0].pem).to.contain('BEGIN PRIVATE KEY')
      expect((await peer.key(dir)).created).to.equal(false)
      expect((await store.key('https://other.example/dir')).pem).not.to.equal(keys[0].pem)
    })

    it('has no record until one is saved, then every instance reads it', async () => {
      const {store, peer} = await factory.make(Date.now)
      expect(await store.record(dir)).to.equal(undefined)
      await store.key(dir)
      const record = {directory: dir, url: 'https://ca.example/acct/1', email: 'ops@example.org', createdAt: new Date(0).toISOString()}
      await store.save(record)
      expect(await peer.record(dir)).to.deep.equal(record)
    })

    it('a staged rollover key is seen by every instance until committed (then it is the key) or discarded', async () => {
      const {store, peer} = await factory.make(Date.now)
      const old = (await store.key(dir)).pem
      expect(await peer.existingKey('https://none.example/dir')).to.equal(undefined)
      expect(await store.stagedKey(dir)).to.equal(undefined)
      const next = (await store.key('https://next.example/dir')).pem
      await store.stageNextKey(dir, next)
      expect(await peer.stagedKey(dir)).to.equal(next)
      expect(await peer.existingKey(dir)).to.equal(old)
      await peer.discardNextKey(dir)
      expect(await store.stagedKey(dir)).to.equal(undefined)
      await store.stageNextKey(dir, next)
      await store.commitNextKey(dir)
      expect(await peer.existingKey(dir)).to.equal(next)
      expect((await peer.key(dir)).pem).to.equal(next)
      expect(await peer.stagedKey(dir)).to.equal(undefined)
    })

    it('retire moves the account aside (saying where): the directory has no key or record, and the next key() is a new one', async () => {
      const {store, peer} = await factory.make(Date.now)
      const old = (await store.key(dir)).pem
      await store.save({directory: dir, url: 'https://ca.example/acct/9', email: '', createdAt: new Date(0).toISOString()})
      const where = await store.retire(dir, new Date(1_700_000_000_000))
      expect(where).to.be.a('string').and.not.equal('')
      expect(await peer.existingKey(dir)).to.equal(undefined)
      expect(await peer.record(dir)).to.equal(undefined)
      const fresh = await peer.key(dir)
      expect(fresh.created).to.equal(true)
      expect(fresh.pem).not.to.equal(old)
    })
  })
}

/** The ChallengeTokenStore contract (src/services/storage/challenge-tokens.ts). */
export function challengeTokenContract(label: string, factory: PeerFactory<ChallengeTokenStore>): void {
  describe(`ChallengeTokenStore contract: ${label}`, function () {
    this.timeout(60_000)
    afterEach(async () => factory.dispose?.())

    it('a token added by one instance is answered by its peer until removed (idempotently)', async () => {
      const {store, peer} = await factory.make(Date.now)
      await store.prepare()
      await store.add('tok_1-A', 'tok_1-A.thumbprint')
      await store.add('tok_1-A', 'tok_1-A.thumbprint')
      expect(await peer.lookup('tok_1-A')).to.equal('tok_1-A.thumbprint')
      await store.remove('tok_1-A')
      await store.remove('tok_1-A')
      expect(await peer.lookup('tok_1-A')).to.equal(undefined)
      await store.close()
      await store.close()
    })

    it('an unknown or unsafe token is undefined, and an unsafe one is never stored', async () => {
      const {store, peer} = await factory.make(Date.now)
      await store.prepare()
      expect(await peer.lookup('nothing')).to.equal(undefined)
      expect(await peer.lookup('../etc/passwd')).to.equal(undefined)
      let refused = false
      await store.add('../x', 'y').catch(() => {
        refused = true
      })
      expect(refused).to.equal(true)
    })
  })
}

/** The SessionRepository contract (src/services/storage/sessions.ts). */
export function sessionContract(label: string, factory: PeerFactory<SessionRepository>, ttlMs: number): void {
  describe(`SessionRepository contract: ${label}`, function () {
    this.timeout(60_000)
    afterEach(async () => factory.dispose?.())

    it('a session created on one instance is valid on its peer until destroyed', async () => {
      const {store, peer} = await factory.make(Date.now)
      const session = await store.create()
      expect(session.id).to.match(/^[\w-]{43}$/)
      expect(session.csrfToken).to.match(/^[\w-]{43}$/)
      const seen = await peer.get(session.id)
      expect(seen?.csrfToken).to.equal(session.csrfToken)
      expect(Math.abs(seen!.expiresAt - session.expiresAt)).to.be.lessThan(1000)
      await peer.destroy(session.id)
      await peer.destroy(session.id)
      expect(await store.get(session.id)).to.equal(undefined)
      expect(await store.get('not-a-session')).to.equal(undefined)
    })

    it('a session expires after the TTL (fake clock)', async () => {
      let now = Date.UTC(2030, 0, 1)
      const {store, peer} = await factory.make(() => now)
      const session = await store.create()
      now += ttlMs - 1000
      expect(await peer.get(session.id)).not.to.equal(undefined)
      now += 2000
      expect(await peer.get(session.id)).to.equal(undefined)
    })
  })
}

import {expect} from 'chai'

import type {BusMessage, ClusterBus} from '../../src/services/cluster/bus.js'

/** Two nodes of one cluster, and (for adapters with a connection) a way to cut node `b`'s. */
export interface ClusterBusFactory {
  /** `cut` is given by adapters with a connection: it kills node `b`'s (the suite then checks recovery). */
  make(): Promise<{a: ClusterBus; b: ClusterBus; cut?: () => Promise<void>}>
  /** The adapter has a connection to lose (the reconnection case runs only then). */
  connected?: boolean
  dispose?(): Promise<void>
}

/** Collects what a subscription receives; `until` waits for a count (bounded, not timed). */
function collector() {
  const got: BusMessage[] = []
  let wake: (() => void) | undefined
  return {
    got,
    handler: (message: BusMessage) => {
      got.push(message)
      wake?.()
    },
    async until(count: number, label: string) {
      const deadline = Date.now() + 20_000
      while (got.length < count) {
        if (Date.now() > deadline) throw new Error(`${label}: got ${got.length} of ${count} messages`)
        await new Promise<void>((resolve) => {
          wake = resolve
          setTimeout(resolve, 200)
        })
      }
    },
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 300))

/**
 * The ClusterBus contract (src/services/cluster/bus.ts), one suite for every adapter: delivery to
 * every node with the publisher's own message marked, order per publisher, payloads of any size
 * whole and once, unsubscribe, clear errors for bad channels/payloads, idempotent close; and for
 * adapters with a connection, a killed connection is noticed, replaced and LISTENs again.
 */
export function clusterBusContract(label: string, factory: ClusterBusFactory): void {
  describe(`ClusterBus contract: ${label}`, function () {
    this.timeout(60_000)
    let a: ClusterBus
    let b: ClusterBus
    let cut: (() => Promise<void>) | undefined
    beforeEach(async () => {
      ({a, b, cut} = await factory.make())
    })
    afterEach(async () => {
      await a.close()
      await b.close()
      await factory.dispose?.()
    })

    it('delivers to every node, marks the publisher\'s own message and keeps the text exact', async () => {
      const onA = collector()
      const onB = collector()
      await a.subscribe('mfc:test', onA.handler)
      await b.subscribe('mfc:test', onB.handler)
      const text = '{"v":1,"s":"rig \\"A\\"\\n","u":"µS/cm ✓ 🧪"}\nsecond line'
      await a.publish('mfc:test', text)
      await onA.until(1, 'publisher')
      await onB.until(1, 'peer')
      expect(onB.got[0]).to.deep.equal({channel: 'mfc:test', from: a.nodeId, own: false, payload: text})
      expect(onA.got[0]).to.deep.equal({channel: 'mfc:test', from: a.nodeId, own: true, payload: text})
      expect(a.nodeId).to.not.equal(b.nodeId)
      expect(a.connected && b.connected).to.equal(true)
    })

    it('keeps the order of one publisher\'s messages, fired without waiting, with none lost or doubled', async () => {
      const onB = collector()
      await b.subscribe('mfc:order', onB.handler)
      await Promise.all(Array.from({length: 300}, (_, i) => a.publish('mfc:order', String(i))))
      await onB.until(300, 'ordered')
      await settle()
      expect(onB.got.map((m) => Number(m.payload))).to.deep.equal(Array.from({length: 300}, (_, i) => i))
    })

    it('carries a payload far beyond one NOTIFY (8000 bytes) whole, once, between small ones', async () => {
      const onB = collector()
      await b.subscribe('mfc:big', onB.handler)
      const big = 'é✓🧪abc'.repeat(40_000) // ~480 kB, multi-byte characters across every cut
      await Promise.all([a.publish('mfc:big', 'before'), a.publish('mfc:big', big), a.publish('mfc:big', 'after')])
      await onB.until(3, 'big')
      await settle()
      expect(onB.got.map((m) => m.payload.length)).to.deep.equal([6, big.length, 5])
      expect(onB.got[1].payload === big).to.equal(true)
    })

    it('stops delivering after unsubscribe and keeps channels apart', async () => {
      const one = collector()
      const two = collector()
      const other = collector()
      const offOne = await b.subscribe('mfc:x', one.handler)
      await b.subscribe('mfc:x', two.handler)
      await b.subscribe('mfc:y', other.handler)
      await a.publish('mfc:x', 'first')
      await two.until(1, 'both subscribed')
      offOne()
      offOne()
      await a.publish('mfc:x', 'second')
      await two.until(2, 'one subscribed')
      await settle()
      expect(one.got.map((m) => m.payload)).to.deep.equal(['first'])
      expect(two.got.map((m) => m.payload)).to.deep.equal(['first', 'second'])
      expect(other.got).to.deep.equal([])
    })

    it('refuses a bad channel name or a NUL in the payload with a clear error, and publish after close', async () => {
      const error = async (promise: Promise<unknown>) => promise.then(() => '', (caught: Error) => caught.message)
      expect(await error(a.publish('Robert"); DROP TABLE x; --', 'x'))).to.contain('is not a lower-case name')
      expect(await error(a.subscribe('x'.repeat(64), () => {}))).to.contain('is not a lower-case name')
      expect(await error(a.publish('mfc:test', 'a\0b'))).to.contain('NUL')
      await a.close()
      await a.close()
      expect(await error(a.publish('mfc:test', 'late'))).to.contain('closed')
    })

    it('a subscriber that throws does not stop the others (reported as an error event)', async () => {
      const errors: string[] = []
      b.on('error', ({error}) => errors.push(error.message))
      await b.subscribe('mfc:throw', () => {
        throw new Error('subscriber bug')
      })
      const onB = collector()
      await b.subscribe('mfc:throw', onB.handler)
      await a.publish('mfc:throw', 'x')
      await onB.until(1, 'after a throwing subscriber')
      expect(errors).to.deep.equal(['subscriber bug'])
    })

    if (factory.connected) it('a killed connection is reported lost, comes back by itself and LISTENs again', async () => {
      const events: string[] = []
      b.on('lost', () => events.push('lost'))
      b.on('regained', () => events.push('regained'))
      const onB = collector()
      await b.subscribe('mfc:again', onB.handler)
      await a.publish('mfc:again', 'before')
      await onB.until(1, 'before the cut')
      await cut!()
      const deadline = Date.now() + 30_000
      while (!events.includes('regained') && Date.now() < deadline) await settle()
      expect(events).to.deep.equal(['lost', 'regained'])
      expect(b.connected).to.equal(true)
      await a.publish('mfc:again', 'after')
      await onB.until(2, 'after the reconnection')
      expect(onB.got.map((m) => m.payload)).to.deep.equal(['before', 'after'])
    })
  })
}

import type {Reading} from '../data/reading.js'
import type {ClusterBus} from './bus.js'

/** The bus channel of stored readings. */
export const READINGS_CHANNEL = 'mfc:readings'

/** What the fan-out needs from the node's monitoring. */
export interface ReadingsTarget {
  /**
   * Readings another node stored: shown to this node's stream clients, counted by its sources
   * and checked by its alerts, but not stored again.
   */
  fromPeer(readings: Reading[]): void
}

/** Reports a publish that failed (the readings are stored; only other nodes' live view misses them). */
export type FanoutProblem = (error: Error, count: number) => void

/**
 * Readings stored on any node reach the stream clients of every node. The node that stored
 * readings delivers them locally (as a single node does) and publishes them after the commit;
 * its own echo is ignored, so no client sees a reading twice. The bus keeps one publisher's
 * order, and one source's readings through one node are committed in order, so a source's
 * order is kept. Delivery is at most once: a node cut off from the bus misses what was stored
 * meanwhile in its live view (its clients see it in the history, and on reconnection).
 */
export class ReadingsFanout {
  private off: (() => void) | undefined
  private pending: Promise<void> = Promise.resolve()

  constructor(private readonly bus: ClusterBus, private readonly target: ReadingsTarget, private readonly problem: FanoutProblem = () => {}) {}

  /** Subscribes; resolves when readings of other nodes are being received. */
  async start(): Promise<void> {
    this.off = await this.bus.subscribe(READINGS_CHANNEL, (message) => {
      if (message.own) return
      let readings: Reading[]
      try {
        readings = (JSON.parse(message.payload) as {readings: Reading[]}).readings
      } catch (error) {
        return this.problem(error as Error, 0)
      }

      if (Array.isArray(readings) && readings.length > 0) this.target.fromPeer(readings)
    })
  }

  /** Stored readings of this node, to every other node; never throws (problems are reported). */
  stored(readings: readonly Reading[]): void {
    if (readings.length === 0) return
    const publishing = this.bus.publish(READINGS_CHANNEL, JSON.stringify({readings})).catch((error: Error) => this.problem(error, readings.length))
    this.pending = this.pending.then(() => publishing)
  }

  /** Waits for the publishes started so far (shutdown, tests). */
  async flush(): Promise<void> {
    await this.pending
  }

  /** Unsubscribes; idempotent. */
  close(): void {
    this.off?.()
    this.off = undefined
  }
}

import type {History} from './history-types.js'
import type {Reading} from './reading.js'

interface Pending {
  readings: readonly Reading[]
  resolve: (stored: Reading[]) => void
  reject: (error: unknown) => void
}

/**
 * Group commit: the batches handed in while a commit is in flight (HTTP requests, MQTT
 * messages) are written together in ONE transaction as soon as it returns, so concurrent
 * writers share one fsync instead of paying one each, and the group grows with the load
 * (pipelining: one commit in flight, the next group gathering). With nothing in flight a batch
 * waits only for the current turn of the event loop. Each `submit` resolves only after the
 * commit that holds its readings is durable (then with the readings that were new: the others
 * were already stored), or rejects if that commit failed (then nothing of the group was
 * written; every writer sees the error and none is acknowledged). `published` sees the stored
 * readings of each commit once, in commit order, after it is durable and its writers were
 * answered (at the end of that turn of the event loop): an acknowledgement does not wait for
 * the stream, the alerts and the cluster's fan-out, and they still run before the next request.
 */
export class GroupCommit {
  private queue: Pending[] = []
  private scheduled = false
  private inFlight: Promise<void> | undefined
  /** Commits whose readings are durable and acknowledged but not yet handed to `published`. */
  private unpublished = 0
  /** Commits so far and the batches they held (for /metrics and the benchmark). */
  commits = 0
  batches = 0

  constructor(private readonly history: History, private readonly published: (readings: Reading[]) => void) {}

  submit(readings: readonly Reading[]): Promise<Reading[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({readings, resolve, reject})
      if (this.scheduled || this.inFlight) return
      this.scheduled = true
      // setImmediate runs after the poll phase, so every request parsed in this turn joins.
      setImmediate(() => this.next())
    })
  }

  /** Resolves once every batch submitted so far is committed or failed. */
  async drain(): Promise<void> {
    while (this.inFlight || this.scheduled || this.queue.length > 0 || this.unpublished > 0) {
      await (this.inFlight ?? new Promise((resolve) => {
        setImmediate(resolve)
      }))
    }
  }

  private next(): void {
    this.scheduled = false
    if (this.queue.length === 0) return
    const group = this.queue
    this.queue = []
    this.inFlight = this.commit(group).finally(() => {
      this.inFlight = undefined
      // What gathered while this group committed goes next, at once.
      if (this.queue.length > 0) this.next()
    })
  }

  private async commit(group: Pending[]): Promise<void> {
    let stored: Reading[]
    try {
      stored = await this.history.insert(group.length === 1 ? group[0].readings : group.flatMap((p) => p.readings))
    } catch (error) {
      for (const p of group) p.reject(error)
      return
    }

    this.commits++
    this.batches += group.length
    if (group.length === 1) group[0].resolve(stored)
    else {
      const fresh = new Set(stored)
      for (const p of group) p.resolve(p.readings.filter((r) => fresh.has(r)))
    }

    if (stored.length === 0) return
    // setImmediate keeps commit order (its queue is first in, first out).
    this.unpublished++
    setImmediate(() => {
      this.unpublished--
      this.published(stored)
    })
  }
}

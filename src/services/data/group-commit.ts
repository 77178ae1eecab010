import type {History} from './history-types.js'
import type {Reading} from './reading.js'

interface Pending {
  readings: readonly Reading[]
  resolve: (stored: Reading[]) => void
  reject: (error: unknown) => void
}

/**
 * Group commit: the batches handed in while the event loop is busy (HTTP requests, MQTT
 * messages) are written in ONE transaction at the next turn of the loop, so concurrent
 * single-reading writers share one fsync instead of paying one each. Each `submit` resolves
 * only after the commit that holds its readings is durable (then with the readings that were
 * new: the others were already stored), or rejects if that commit failed (then nothing of the
 * group was written; every writer sees the error and none is acknowledged). `published` sees
 * the stored readings of each commit once, in order, after it is durable.
 */
export class GroupCommit {
  private queue: Pending[] = []
  private scheduled = false
  /** Commits so far and the batches they held (for /metrics and the benchmark). */
  commits = 0
  batches = 0

  constructor(private readonly history: History, private readonly published: (readings: Reading[]) => void) {}

  submit(readings: readonly Reading[]): Promise<Reading[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({readings, resolve, reject})
      if (this.scheduled) return
      this.scheduled = true
      // setImmediate runs after the poll phase, so every request parsed in this turn joins.
      setImmediate(() => this.flush())
    })
  }

  private flush(): void {
    this.scheduled = false
    const group = this.queue
    this.queue = []
    let stored: Reading[]
    try {
      stored = this.history.insert(group.length === 1 ? group[0].readings : group.flatMap((p) => p.readings))
    } catch (error) {
      for (const p of group) p.reject(error)
      return
    }

    this.commits++
    this.batches += group.length
    const fresh = new Set(stored)
    if (stored.length > 0) this.published(stored)
    for (const p of group) p.resolve(p.readings.filter((r) => fresh.has(r)))
  }
}

import {sleep} from '../../lib/retry.js'
import type {Reading} from '../data/reading.js'
import type {StoredAfter} from '../storage/pg-history.js'
import type {ClusterBus} from './bus.js'

/** The bus channel of stored readings. */
export const READINGS_CHANNEL = 'mfc:readings'

/** Readings a catch-up did not stream (more than its cap): clients find them in the history. */
export interface CatchUpGap {
  /** How many readings were left out (an upper bound: some may have reached the node live before its session was lost). */
  missed: number
  /** Timestamps of the oldest and newest reading left out. */
  from: string
  to: string
}

/** What the fan-out needs from the node's monitoring. */
export interface ReadingsTarget {
  /**
   * Readings another node stored: shown to this node's stream clients, counted by its sources
   * and checked by its alerts, but not stored again.
   */
  fromPeer(readings: Reading[]): void
  /** A catch-up left readings out (its cap): tells the stream clients which range to fetch. */
  catchUpGap?(gap: CatchUpGap): void
}

/**
 * Where a catch-up finds what the bus did not deliver: the shared history (PgHistory). Ids are
 * the history's insertion order; both calls reject while the database is unreachable.
 */
export interface MissedReadings {
  highWater(): Promise<number>
  storedAfter(after: number, limit: number): Promise<StoredAfter>
}

/** Reports a publish that failed (the readings are stored; only other nodes' live view misses them). */
export type FanoutProblem = (error: Error, count: number) => void

/** The catch-up's knobs; the defaults suit a node in production, tests shorten the timers. */
export interface FanoutOptions {
  missed?: MissedReadings
  /** Most readings one catch-up streams (the newest; the older ones are reported as a gap). */
  cap?: number
  /** How often the history's high-water mark is sampled while the bus is connected. */
  markMs?: number
  /**
   * How far before the moment a loss was noticed a catch-up starts: covers a session that died
   * silently before the ping noticed (up to two ping periods) and a batch committed late.
   */
  lookbackMs?: number
  /** Catch-up started/finished, for the log. */
  caughtUp?(info: {delivered: number; missed: number}): void
}

/** Readings per data_update of a catch-up (the hub's default data_update size). */
const CATCH_UP_CHUNK = 100
/** Keys of delivered readings remembered, so a catch-up never shows one twice. */
const SEEN_MAX = 100_000
/** Most marks kept (a bound only: marks are dropped once a newer one is old enough). */
const MARKS_KEPT = 1000

const keyOf = (r: Reading) => `${r.source}\u0000${Date.parse(r.timestamp)}`

/**
 * Readings stored on any node reach the stream clients of every node. The node that stored
 * readings delivers them locally (as a single node does) and publishes them after the commit;
 * its own echo is ignored, so no client sees a reading twice. The bus keeps one publisher's
 * order, and one source's readings through one node are committed in order, so a source's
 * order is kept.
 *
 * The bus itself is at most once; the fan-out makes the live view complete. While connected it
 * samples the history's high-water id every `markMs`. When the bus regains its session after a
 * loss, the fan-out holds new bus messages back, reads from the history everything stored after
 * the mark taken `lookbackMs` before the loss was noticed, streams what this node has not
 * delivered yet (by (source, timestamp) of the readings it delivered), oldest first, then the
 * held messages (again without the ones already shown). At most `cap` readings are streamed:
 * older ones are announced with `catchUpGap` instead, so a long outage does not flood clients.
 * Ids are allocated before commit, so a batch that commits later than the lookback after its id
 * was taken could still be missed; the lookback is far above one insert's duration.
 */
export class ReadingsFanout {
  private off: (() => void) | undefined
  private offs: (() => void)[] = []
  private pending: Promise<void> = Promise.resolve()
  private readonly seen = new Set<string>()
  /** High-water ids of the history, with when they were taken and how many readings this node had shown by then. */
  private readonly marks: {id: number; at: number; delivered: number}[] = []
  private delivered = 0
  private held: Reading[][] | undefined
  /** Catch-ups started and not finished; bus messages are held until the last one is done. */
  private queued = 0
  private catching: Promise<void> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  private lostAt: number | undefined
  private closed = false
  private readonly stop = new AbortController()

  constructor(private readonly bus: ClusterBus, private readonly target: ReadingsTarget, private readonly problem: FanoutProblem = () => {}, private readonly options: FanoutOptions = {}) {}

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

      if (!Array.isArray(readings) || readings.length === 0) return
      if (this.held) this.held.push(readings)
      else this.live(readings)
    })
    const {missed} = this.options
    if (!missed) return
    this.offs = [
      this.bus.on('lost', () => {
        this.lostAt ??= Date.now()
      }),
      this.bus.on('regained', () => {
        const lostAt = this.lostAt
        this.lostAt = undefined
        if (lostAt !== undefined) this.catchUp(missed, lostAt)
      }),
    ]
    this.timer = setInterval(() => void this.mark(missed), this.options.markMs ?? 2000)
    this.timer.unref()
    await this.mark(missed)
  }

  /** Stored readings of this node, to every other node; never throws (problems are reported). */
  stored(readings: readonly Reading[]): void {
    if (readings.length === 0) return
    for (const r of readings) this.remember(r)
    const publishing = this.bus.publish(READINGS_CHANNEL, JSON.stringify({readings})).catch((error: Error) => this.problem(error, readings.length))
    this.pending = this.pending.then(() => publishing)
  }

  /** Waits for the publishes started so far (shutdown, tests); not for a catch-up, which `close` ends. */
  async flush(): Promise<void> {
    await this.pending
  }

  /** Waits for the catch-ups started so far (tests). */
  async settled(): Promise<void> {
    await this.catching
  }

  /** Unsubscribes and stops sampling; idempotent. */
  close(): void {
    this.closed = true
    this.stop.abort()
    clearInterval(this.timer)
    this.off?.()
    this.off = undefined
    for (const off of this.offs) off()
    this.offs = []
  }

  private live(readings: Reading[]): void {
    const fresh = readings.filter((r) => !this.seen.has(keyOf(r)))
    for (const r of fresh) this.remember(r)
    if (fresh.length > 0) this.target.fromPeer(fresh)
  }

  private remember(reading: Reading): void {
    const key = keyOf(reading)
    if (this.seen.has(key)) return
    this.seen.add(key)
    this.delivered++
    // A Set iterates in insertion order: the first entry is the oldest.
    if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value!)
  }

  private async mark(missed: MissedReadings): Promise<void> {
    if (!this.bus.connected || this.held || this.closed) return
    try {
      const id = await missed.highWater()
      // Taken while connected: everything committed up to `id` reached this node live, or was caught up.
      if (!this.bus.connected || this.held) return
      const now = Date.now()
      this.marks.push({at: now, delivered: this.delivered, id})
      // Kept by age, not count: a catch-up needs the newest mark that is `lookbackMs` old.
      const old = now - (this.options.lookbackMs ?? 15_000)
      while (this.marks.length > 1 && (this.marks[1].at <= old || this.marks.length > MARKS_KEPT)) this.marks.shift()
    } catch {
      // The database is away: the bus notices too, and the catch-up covers the time.
    }
  }

  /** The newest mark taken `lookbackMs` before `lostAt` (the oldest one when none is that old). */
  private startMark(lostAt: number): {id: number; delivered: number} | undefined {
    const before = lostAt - (this.options.lookbackMs ?? 15_000)
    let chosen = this.marks[0]
    for (const mark of this.marks) if (mark.at <= before) chosen = mark
    return chosen
  }

  private catchUp(missed: MissedReadings, lostAt: number): void {
    this.held ??= []
    this.queued++
    this.catching = this.catching.then(async () => {
      try {
        const from = this.startMark(lostAt)
        if (from !== undefined) await this.replay(missed, from)
      } finally {
        // Lost again meanwhile: the next catch-up comes first, what is held waits for it (in order).
        if (--this.queued === 0) {
          const held = this.held ?? []
          this.held = undefined
          for (const readings of held) this.live(readings)
        }
      }
    })
  }

  private async replay(missed: MissedReadings, from: {id: number; delivered: number}): Promise<void> {
    const cap = this.options.cap ?? 1000
    // Rows past the mark that this node has shown already are at most what it showed since the
    // mark (a row past the mark committed after it): asking for that many more keeps `cap` for the new.
    const shown = Math.min(this.delivered - from.delivered, SEEN_MAX)
    let found: StoredAfter | undefined
    for (let attempt = 0; !found && !this.closed; attempt++) {
      try {
        found = await missed.storedAfter(from.id, cap + shown)
      } catch (error) {
        // The bus is back but a query failed (the database is still starting): a few retries.
        if (attempt >= 10) return this.problem(error as Error, 0)
        await sleep(Math.min(2000, 100 * 2 ** attempt), this.stop.signal).catch(() => {})
      }
    }

    if (!found || this.closed) return
    let fresh = found.readings.map((r) => r.reading).filter((r) => !this.seen.has(keyOf(r)))
    const dropped = fresh.length > cap ? fresh.slice(0, fresh.length - cap) : []
    fresh = fresh.slice(-cap)
    const left = found.left ?? (dropped.length > 0 ? {count: 0, from: dropped[0].timestamp, to: dropped[0].timestamp} : undefined)
    // Readings left out are counted as an upper bound: `found.left` may hold some this node showed.
    const gap = left && {from: left.from, missed: left.count + dropped.length, to: dropped.at(-1)?.timestamp ?? left.to}
    if (gap) this.target.catchUpGap?.(gap)
    for (let i = 0; i < fresh.length; i += CATCH_UP_CHUNK) {
      const chunk = fresh.slice(i, i + CATCH_UP_CHUNK)
      for (const r of chunk) this.remember(r)
      this.target.fromPeer(chunk)
    }

    this.options.caughtUp?.({delivered: fresh.length, missed: gap?.missed ?? 0})
  }
}

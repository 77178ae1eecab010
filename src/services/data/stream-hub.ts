import type {Clock} from '../../lib/clock.js'
import type {AlertChange} from './alerts.js'
import {type Reading, STREAM_NAMES, STREAMS, type StreamName} from './reading.js'
import type {StreamClient, StreamHub} from './server-types.js'

export interface HubOptions {
  clock: Clock
  /** Readings kept in memory for initial_data / request_data (the original's 1000). */
  cacheSize?: number
  /** Points in initial_data (the original's 100). */
  initialPoints?: number
  /** Upper bound of request_data's `limit` (the original had none: limit 0 sent the whole cache). */
  maxRequestLimit?: number
  /** Points per data_update at most; a bigger batch sends its newest points and `total_points`. */
  maxUpdatePoints?: number
  heartbeatMs?: number
  /** Consecutive dropped messages after which a client that is not reading is closed. */
  maxDrops?: number
}

interface Subscriber {
  client: StreamClient
  streams: Set<StreamName>
  /** Sources this client follows; null follows all. */
  sources: Set<string> | null
  drops: number
}

/** Most sources one subscription names. */
const MAX_SUBSCRIBED_SOURCES = 100
/** Every message type a stream client may send (the rest get an `error` message back). */
export const STREAM_MESSAGE_TYPES = ['ping', 'request_data', 'subscribe'] as const

const ALWAYS: (keyof Reading)[] = ['timestamp', 'time_hours', 'source', 'run_id']

/**
 * The streamer's protocol (§5), pushed as data arrives: `publish()` is called by whatever stored
 * new readings (simulator, ingest, follower), so there is no file polling. Message types and
 * shapes are the original's; `subscribe` really filters (by the stream names in reading.ts) and
 * alerts arrive as `alert_raised` / `alert_cleared` to subscribers of "alerts" or "all".
 */
export class MonitoringStreamHub implements StreamHub {
  private readonly subscribers = new Map<string, Subscriber>()
  private readonly cache: Reading[] = []
  private readonly newest = new Map<string, Reading>()
  private readonly options: Required<HubOptions>
  private timer: NodeJS.Timeout | undefined
  private sentSinceHeartbeat = false
  dropped = 0

  constructor(options: HubOptions, seed: Reading[] = []) {
    // Undefined fields fall back to the defaults (a plain spread would copy the undefined).
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined))
    this.options = {cacheSize: 1000, initialPoints: 100, maxRequestLimit: 1000, maxUpdatePoints: 100, heartbeatMs: 2000, maxDrops: 64, ...given} as Required<HubOptions>
    this.remember(seed)
  }

  get clientCount(): number {
    return this.subscribers.size
  }

  /** The newest reading the hub has seen (for /metrics). */
  latest(): Reading | undefined {
    return this.cache.at(-1)
  }

  /** The newest `limit` stored readings (oldest first), when the hub remembers that many; else undefined. */
  recent(limit: number): Reading[] | undefined {
    if (limit > this.options.cacheSize || (limit > this.cache.length && this.cache.length === this.options.cacheSize)) return undefined
    return this.cache.slice(-limit)
  }

  /** Counts publications and reseeds, so a reader can memoize what it built from `recent`. */
  version = 0

  /** The newest reading of each source the hub has seen (for /metrics' `source` label). */
  latestBySource(): Reading[] {
    return [...this.newest.values()].sort((a, b) => a.source.localeCompare(b.source))
  }

  onConnect(client: StreamClient): void {
    const subscriber: Subscriber = {client, streams: new Set<StreamName>(['all']), sources: null, drops: 0}
    this.subscribers.set(client.id, subscriber)
    this.send(subscriber, {type: 'initial_data', data: this.cache.slice(-this.options.initialPoints), timestamp: this.now()})
    this.startHeartbeat()
  }

  onClose(client: StreamClient): void {
    this.subscribers.delete(client.id)
    if (this.subscribers.size === 0) this.stopHeartbeat()
  }

  onMessage(client: StreamClient, msg: unknown): void {
    const subscriber = this.subscribers.get(client.id)
    if (!subscriber) return
    const message = decode(msg)
    if (message === undefined) return void this.error(subscriber, 'Invalid JSON message')
    if (message === null || typeof message !== 'object' || Array.isArray(message)) return void this.error(subscriber, 'Invalid message: expected a JSON object with a "type"')
    const {type} = message as {type?: unknown}
    switch (type) {
      case 'ping': {
        this.send(subscriber, {type: 'pong', timestamp: this.now()})
        break
      }

      case 'request_data': {
        this.requestData(subscriber, (message as {limit?: unknown}).limit)
        break
      }

      case 'subscribe': {
        this.subscribe(subscriber, (message as {streams?: unknown}).streams, (message as {sources?: unknown}).sources)
        break
      }

      default: {
        this.error(subscriber, `Unknown message type: ${typeof type === 'string' ? type.slice(0, 64) : 'None'}`)
      }
    }
  }

  /** New, already stored readings: remembered and broadcast as one `data_update`. */
  publish(readings: readonly Reading[]): void {
    if (readings.length === 0) return
    this.remember(readings)
    const points = readings.slice(-this.options.maxUpdatePoints)
    const timestamp = this.now()
    for (const subscriber of this.subscribers.values()) {
      if (!wants(subscriber, null)) continue
      const mine = subscriber.sources === null ? points : points.filter((p) => subscriber.sources!.has(p.source))
      if (mine.length === 0) continue
      this.send(subscriber, {type: 'data_update', data: mine.map((p) => filter(p, subscriber.streams)), total_points: this.cache.length, timestamp})
    }

    this.sentSinceHeartbeat = true
  }

  /** Replaces the remembered readings (the history was replaced); clients resync on reconnect. */
  reseed(readings: readonly Reading[]): void {
    this.cache.length = 0
    this.newest.clear()
    this.remember(readings)
  }

  /** Alert episodes, to subscribers of "alerts" (or "all"). */
  alert(change: AlertChange): void {
    for (const subscriber of this.subscribers.values()) {
      if (subscriber.sources !== null && !subscriber.sources.has(change.state.source)) continue
      if (wants(subscriber, 'alerts')) this.send(subscriber, {type: change.type, alert: change.state, timestamp: this.now()})
    }
  }

  /**
   * Readings this node could not stream (a cluster catch-up past its cap), as one `data_gap`
   * message to every data subscriber: the range to fetch from GET /data/history.
   */
  gap(gap: {missed: number; from: string; to: string}): void {
    const message = {type: 'data_gap', missed: gap.missed, from: gap.from, to: gap.to, timestamp: this.now()}
    for (const subscriber of this.subscribers.values()) if (wants(subscriber, null)) this.send(subscriber, message)
  }

  /** Stops the heartbeat and closes every client (server shutdown). Idempotent. */
  close(): void {
    this.stopHeartbeat()
    for (const {client} of this.subscribers.values()) client.close(1001, 'server shutting down')
    this.subscribers.clear()
  }

  private requestData(subscriber: Subscriber, raw: unknown): void {
    if (raw !== undefined && (typeof raw !== 'number' || !Number.isInteger(raw))) {
      return this.error(subscriber, `Invalid limit: expected a whole number 1-${this.options.maxRequestLimit}`)
    }

    const limit = Math.min(Math.max(raw ?? 100, 1), this.options.maxRequestLimit)
    const mine = subscriber.sources === null ? this.cache : this.cache.filter((p) => subscriber.sources!.has(p.source))
    this.send(subscriber, {type: 'data_response', data: mine.slice(-limit).map((p) => filter(p, subscriber.streams)), limit, timestamp: this.now()})
  }

  private subscribe(subscriber: Subscriber, raw: unknown, rawSources: unknown): void {
    if (rawSources !== undefined && rawSources !== null) {
      const ok = Array.isArray(rawSources) && rawSources.length > 0 && rawSources.length <= MAX_SUBSCRIBED_SOURCES && rawSources.every((s) => typeof s === 'string' && /^[\w.:@-]{1,64}$/.test(s))
      if (!ok) return this.error(subscriber, `Invalid sources: expected null (all) or a list of 1-${MAX_SUBSCRIBED_SOURCES} source names`)
    }

    const streams = raw === undefined ? (rawSources === undefined ? ['all'] : [...subscriber.streams]) : raw
    if (!Array.isArray(streams) || streams.length === 0 || streams.some((s) => typeof s !== 'string')) {
      return this.error(subscriber, `Invalid streams: expected a non-empty list of ${STREAM_NAMES.join(', ')}`)
    }

    const unknown = streams.filter((s) => !(STREAM_NAMES as readonly string[]).includes(s))
    if (unknown.length > 0) return this.error(subscriber, `Unknown stream(s): ${unknown.slice(0, 5).join(', ')}; valid: ${STREAM_NAMES.join(', ')}`)
    subscriber.streams = new Set(streams as StreamName[])
    if (rawSources !== undefined) subscriber.sources = rawSources === null ? null : new Set(rawSources as string[])
    this.send(subscriber, {type: 'subscription_confirmed', streams: [...subscriber.streams], sources: subscriber.sources && [...subscriber.sources], timestamp: this.now()})
  }

  private error(subscriber: Subscriber, message: string): void {
    this.send(subscriber, {type: 'error', message, timestamp: this.now()})
  }

  private send(subscriber: Subscriber, message: object): void {
    if (subscriber.client.send(message)) {
      subscriber.drops = 0
      return
    }

    this.dropped++
    if (++subscriber.drops >= this.options.maxDrops) {
      // A client that reads nothing for this long gets a clean close; it reconnects and resyncs.
      this.subscribers.delete(subscriber.client.id)
      subscriber.client.close(1013, 'too slow: messages dropped')
    }
  }

  private remember(readings: readonly Reading[]): void {
    this.version++
    for (const r of readings) this.newest.set(r.source, r)
    this.cache.push(...readings.slice(-this.options.cacheSize))
    if (this.cache.length > this.options.cacheSize) this.cache.splice(0, this.cache.length - this.options.cacheSize)
  }

  private startHeartbeat(): void {
    if (this.timer) return
    this.timer = setInterval(() => this.heartbeat(), this.options.heartbeatMs)
    this.timer.unref()
  }

  private stopHeartbeat(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Sent when no data went out since the last beat, like the original's idle poll. */
  heartbeat(): void {
    if (!this.sentSinceHeartbeat) {
      const message = {type: 'heartbeat', timestamp: this.now(), clients_connected: this.subscribers.size}
      for (const subscriber of this.subscribers.values()) this.send(subscriber, message)
    }

    this.sentSinceHeartbeat = false
  }

  private now(): string {
    return this.options.clock.now().toISOString()
  }
}

function decode(msg: unknown): unknown {
  if (typeof msg !== 'string' && !Buffer.isBuffer(msg)) return msg
  try {
    return JSON.parse(msg.toString())
  } catch {
    return undefined
  }
}

function wants(subscriber: Subscriber, stream: 'alerts' | null): boolean {
  const {streams} = subscriber
  if (streams.has('all')) return true
  return stream === 'alerts' ? streams.has('alerts') : [...streams].some((s) => s !== 'alerts')
}

function filter(point: Reading, streams: Set<StreamName>): Partial<Reading> {
  if (streams.has('all')) return point
  const keep = new Set<keyof Reading>(ALWAYS)
  for (const name of streams) if (name in STREAMS) for (const key of STREAMS[name as keyof typeof STREAMS]) keep.add(key)
  return Object.fromEntries(Object.entries(point).filter(([key]) => keep.has(key as keyof Reading))) as Partial<Reading>
}

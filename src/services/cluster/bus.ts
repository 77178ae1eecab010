import {EventEmitter} from 'node:events'
import {randomBytes} from 'node:crypto'
import {hostname} from 'node:os'

import {MfcError} from '../../lib/errors.js'
import {backoffDelay, sleep} from '../../lib/retry.js'
import type {PgDatabase, PgSession} from '../storage/postgres.js'

/** One message as a subscriber receives it. */
export interface BusMessage {
  channel: string
  payload: string
  /** Node id of the publisher. */
  from: string
  /** True for this node's own message coming back (the publisher usually acted on it already). */
  own: boolean
}

/** Connection events of a bus; `error` reports a subscriber that threw (the bus carries on). */
export interface ClusterBusEvents {
  lost: {error?: Error}
  regained: Record<string, never>
  error: {channel: string; error: Error}
}

/**
 * The live-data bus between the nodes of a cluster (readings fan-out, certificate reloads).
 * Contract:
 * - `publish` resolves once the message is committed for delivery (a NOTIFY outside any open
 *   transaction); it rejects (StoreError for the database) when it could not be sent. Messages
 *   published by one node reach every subscriber in the order `publish` was called; a payload
 *   of any size (a string without NUL characters) arrives whole, exactly once per subscriber.
 * - `subscribe` resolves when the subscription is in effect (messages published after that are
 *   delivered), or at once while the bus is disconnected (it takes effect on reconnection).
 *   Every node's subscribers get every message, the publisher's own included (`own: true`).
 * - Delivery is at most once: what is published while a node is disconnected does not reach
 *   that node. `regained` tells subscribers to resynchronise from storage if they need to (the
 *   readings fan-out catches up from the shared history, readings-fanout.ts); no message of
 *   the new connection is delivered before `regained` is emitted.
 * - `connected` is false between a `lost` and the next `regained`. `close()` is idempotent;
 *   `publish` after it rejects.
 */
export interface ClusterBus {
  readonly nodeId: string
  readonly connected: boolean
  publish(channel: string, payload: string): Promise<void>
  subscribe(channel: string, handler: (message: BusMessage) => void): Promise<() => void>
  on<K extends keyof ClusterBusEvents>(event: K, listener: (info: ClusterBusEvents[K]) => void): () => void
  close(): Promise<void>
}

/** A node id that is unique enough for one cluster: host, pid and a random suffix. */
export function defaultNodeId(): string {
  return `${hostname().replaceAll(/[^\w.-]/g, '_').slice(0, 40)}-${process.pid}-${randomBytes(3).toString('hex')}`
}

// PostgreSQL channel names are identifiers (at most 63 bytes); one spelling keeps quoting safe.
const CHANNEL = /^[a-z][\w:.-]{0,62}$/
const NODE_ID = /^[\w.:-]{1,80}$/

function bug(message: string): MfcError {
  return new MfcError(message, {code: 'MFC_INTERNAL', suggestions: ['This is a bug in mfc: please report it.']})
}

function checkChannel(channel: string): void {
  if (!CHANNEL.test(channel)) throw bug(`Bus channel "${channel}" is not a lower-case name of at most 63 characters.`)
}

function checkPayload(payload: string): void {
  if (payload.includes('\0')) throw bug('A bus payload cannot contain NUL characters (PostgreSQL text cannot hold them).')
}

/** Shared by the subscribers and events of both adapters. */
abstract class BusBase implements ClusterBus {
  abstract readonly connected: boolean
  protected readonly events = new EventEmitter()
  protected readonly handlers = new Map<string, Set<(message: BusMessage) => void>>()
  /** Per channel, the LISTEN that later subscribers of the channel wait for too. */
  private readonly ready = new Map<string, Promise<void>>()
  protected closed = false

  constructor(readonly nodeId: string) {
    if (!NODE_ID.test(nodeId)) throw bug(`Node id "${nodeId}" must be 1-80 letters, digits, ".", ":", "_" or "-".`)
  }

  abstract publish(channel: string, payload: string): Promise<void>
  abstract close(): Promise<void>
  protected abstract listen(channel: string): Promise<void>
  protected abstract unlisten(channel: string): void

  async subscribe(channel: string, handler: (message: BusMessage) => void): Promise<() => void> {
    checkChannel(channel)
    let set = this.handlers.get(channel)
    if (!set) {
      this.handlers.set(channel, set = new Set())
      this.ready.set(channel, this.listen(channel))
    }

    // A new function per subscription, so subscribing the same handler twice is two subscriptions.
    const entry = (message: BusMessage) => handler(message)
    set.add(entry)
    await this.ready.get(channel)
    return () => {
      if (!set.delete(entry) || set.size > 0 || this.handlers.get(channel) !== set) return
      this.handlers.delete(channel)
      this.ready.delete(channel)
      this.unlisten(channel)
    }
  }

  on<K extends keyof ClusterBusEvents>(event: K, listener: (info: ClusterBusEvents[K]) => void): () => void {
    this.events.on(event, listener)
    return () => this.events.off(event, listener)
  }

  protected deliver(channel: string, payload: string, from: string): void {
    const set = this.handlers.get(channel)
    if (!set) return
    const message: BusMessage = {channel, payload, from, own: from === this.nodeId}
    for (const handler of set) {
      try {
        handler(message)
      } catch (error) {
        this.events.emit('error', {channel, error: error as Error})
      }
    }
  }
}

/** Where in-process buses meet: one per process by default, or one shared by several test nodes. */
export class InProcessHub {
  readonly members = new Set<InProcessClusterBus>()
}

/**
 * The bus of a single node (the embedded default): delivery inside the process, in order, on a
 * microtask after `publish`. Buses given the same `hub` behave as nodes of one cluster.
 */
export class InProcessClusterBus extends BusBase {
  readonly connected = true
  private readonly hub: InProcessHub

  constructor(options: {nodeId?: string; hub?: InProcessHub} = {}) {
    super(options.nodeId ?? defaultNodeId())
    this.hub = options.hub ?? new InProcessHub()
    this.hub.members.add(this)
  }

  async publish(channel: string, payload: string): Promise<void> {
    checkChannel(channel)
    checkPayload(payload)
    if (this.closed) throw bug(`The bus of node ${this.nodeId} is closed.`)
    const targets = [...this.hub.members]
    queueMicrotask(() => {
      for (const bus of targets) if (!bus.closed) bus.deliver(channel, payload, this.nodeId)
    })
  }

  async close(): Promise<void> {
    this.closed = true
    this.hub.members.delete(this)
  }

  protected async listen(): Promise<void> {}
  protected unlisten(): void {}
}

/** Options of the PostgreSQL bus. */
export interface PgClusterBusOptions {
  nodeId?: string
  /** Reconnection backoff (jittered); defaults 100 ms doubling to 5 s. */
  minBackoffMs?: number
  maxBackoffMs?: number
  /** How often the listening session is pinged, so a silently dead connection is noticed. */
  pingMs?: number
}

/** NOTIFY payloads must be shorter than 8000 bytes; a frame's text stays well below. */
const CHUNK_BYTES = 7600
const FRAME = /^mfc1 (\S+) (\d+) (\d+) (\d+)\n/
/** Publishes waiting together go out in one statement (one round trip, one commit). */
const MAX_BATCH_FRAMES = 500

interface Pending {
  frames: {channel: string; text: string}[]
  resolve: () => void
  reject: (error: Error) => void
}

/** Splits UTF-8 text into pieces of at most `max` bytes, never inside a character. */
export function chunkUtf8(text: string, max: number): string[] {
  const bytes = Buffer.from(text, 'utf8')
  if (bytes.length <= max) return [text]
  const chunks: string[] = []
  let start = 0
  while (start < bytes.length) {
    let end = Math.min(bytes.length, start + max)
    while (end < bytes.length && (bytes[end] & 0xc0) === 0x80) end--
    chunks.push(bytes.subarray(start, end).toString('utf8'))
    start = end
  }

  return chunks
}

/**
 * The bus of a cluster on PostgreSQL LISTEN/NOTIFY. One dedicated session per node listens
 * (application_name ends in "bus <node id>", so pg_stat_activity shows it); publishing uses the
 * pool, so it works while the listener reconnects. A lost session is replaced with jittered
 * backoff and every channel is LISTENed again. Each message is framed as
 * `mfc1 <node> <seq> <part> <parts>\n<text>`: a payload beyond one NOTIFY's limit is split into
 * parts sent in one statement — one transaction, so they commit together and arrive
 * consecutively — and joined again by the receiver. Publishes that wait for the one in flight
 * are sent together in the next statement, which keeps their order and costs one round trip.
 */
export class PgClusterBus extends BusBase {
  private session: PgSession | undefined
  private listened = new Set<string>()
  private seq = 0
  private queue: Pending[] = []
  private flushing = false
  private partial = new Map<string, {parts: string[]; got: number; at: number}>()
  private readonly stop = new AbortController()
  private loop: Promise<void> | undefined
  private wasConnected = false

  private constructor(private readonly db: PgDatabase, private readonly options: PgClusterBusOptions) {
    super(options.nodeId ?? defaultNodeId())
  }

  get connected(): boolean {
    return this.session !== undefined
  }

  /** Starts the bus; resolves after the first connection attempt, connected or not (it retries). */
  static async start(db: PgDatabase, options: PgClusterBusOptions = {}): Promise<PgClusterBus> {
    const bus = new PgClusterBus(db, options)
    let first!: () => void
    const attempted = new Promise<void>((resolve) => {
      first = resolve
    })
    bus.loop = bus.run(first)
    await attempted
    return bus
  }

  async publish(channel: string, payload: string): Promise<void> {
    checkChannel(channel)
    checkPayload(payload)
    if (this.closed) throw bug(`The bus of node ${this.nodeId} is closed.`)
    const seq = ++this.seq
    const chunks = chunkUtf8(payload, CHUNK_BYTES)
    const frames = chunks.map((text, i) => ({channel, text: `mfc1 ${this.nodeId} ${seq} ${i} ${chunks.length}\n${text}`}))
    return new Promise<void>((resolve, reject) => {
      this.queue.push({frames, reject, resolve})
      void this.flush()
    })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.stop.abort()
    const session = this.session
    this.session = undefined
    await session?.end()
    await this.loop
    while (this.flushing) await sleep(5)
  }

  protected async listen(channel: string): Promise<void> {
    const session = this.session
    if (!session || this.listened.has(channel)) return
    this.listened.add(channel)
    await session.query(`LISTEN "${channel}"`).catch(() => {
      // The session died under us: the reconnection LISTENs every channel again.
      this.listened.delete(channel)
    })
  }

  protected unlisten(channel: string): void {
    const session = this.session
    if (!session || !this.listened.delete(channel)) return
    session.query(`UNLISTEN "${channel}"`).catch(() => {})
  }

  private async flush(): Promise<void> {
    if (this.flushing) return
    this.flushing = true
    try {
      while (this.queue.length > 0) {
        const batch: Pending[] = []
        let frames = 0
        while (this.queue.length > 0 && (batch.length === 0 || frames + this.queue[0].frames.length <= MAX_BATCH_FRAMES)) {
          const next = this.queue.shift()!
          batch.push(next)
          frames += next.frames.length
        }

        const all = batch.flatMap((p) => p.frames)
        try {
          // One statement outside a transaction block: it commits before it returns, and
          // PostgreSQL delivers its notifications in the order they were raised.
          await this.db.query('SELECT count(pg_notify(c, p)) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, p, n)', [all.map((f) => f.channel), all.map((f) => f.text)])
          for (const p of batch) p.resolve()
        } catch (error) {
          for (const p of batch) p.reject(error as Error)
        }
      }
    } finally {
      this.flushing = false
    }
  }

  /** Connect, LISTEN, wait for the session to die, back off, again — until closed. */
  private async run(firstAttempt: () => void): Promise<void> {
    let attempt = 0
    while (!this.closed) {
      let lostError: Error | undefined
      try {
        const session = await this.connect()
        attempt = 0
        firstAttempt()
        lostError = await this.watch(session)
      } catch (error) {
        lostError = error as Error
      }

      firstAttempt()
      if (this.closed) return
      this.session = undefined
      this.listened = new Set()
      this.partial.clear()
      if (this.wasConnected) this.events.emit('lost', {error: lostError})
      this.wasConnected = false
      const delay = backoffDelay(attempt++, {minMs: this.options.minBackoffMs ?? 100, maxMs: this.options.maxBackoffMs ?? 5000})
      await sleep(delay, this.stop.signal).catch(() => {})
    }
  }

  private async connect(): Promise<PgSession> {
    const session = await this.db.session()
    // Notifications that arrive between the first LISTEN and `regained` wait for it, so a
    // subscriber that resynchronises on `regained` sees them after it has started to.
    let early: [string, string][] | undefined = []
    try {
      session.onNotification((channel, text) => (early ? early.push([channel, text]) : this.receive(channel, text)))
      await session.query(`SELECT set_config('application_name', left(current_setting('application_name'), 40) || ' bus ' || $1, false),
        set_config('tcp_keepalives_idle', '5', false), set_config('tcp_keepalives_interval', '2', false), set_config('tcp_keepalives_count', '3', false)`, [this.nodeId])
      const listened = new Set<string>()
      // Channels subscribed while this loop runs are picked up by the next pass.
      for (let missing = [...this.handlers.keys()]; missing.length > 0; missing = [...this.handlers.keys()].filter((c) => !listened.has(c))) {
        for (const channel of missing) {
          await session.query(`LISTEN "${channel}"`)
          listened.add(channel)
        }
      }

      if (this.closed) throw bug('closed while connecting')
      this.listened = listened
      this.session = session
      if (!this.wasConnected) {
        this.wasConnected = true
        this.events.emit('regained', {})
      }

      const waiting = early
      early = undefined
      for (const [channel, text] of waiting) this.receive(channel, text)
      return session
    } catch (error) {
      await session.end()
      throw error
    }
  }

  /** Resolves when `session` is gone: closed by the server, or not answering a ping. */
  private async watch(session: PgSession): Promise<Error | undefined> {
    const pingMs = this.options.pingMs ?? 5000
    while (!this.closed) {
      const outcome = await Promise.race([
        session.closed.then(() => 'closed' as const),
        sleep(pingMs, this.stop.signal).then(() => 'ping' as const, () => 'closed' as const),
      ])
      if (outcome === 'closed') break
      const answered = await Promise.race([
        session.query('SELECT 1').then(() => true, () => false),
        sleep(pingMs, this.stop.signal).then(() => false, () => false),
      ])
      if (!answered) {
        void session.end()
        return new Error(`The bus session of node ${this.nodeId} did not answer a ping within ${pingMs} ms.`)
      }
    }

    void session.end()
    return new Error(`The bus session of node ${this.nodeId} to ${this.db.label} was closed.`)
  }

  private receive(channel: string, text: string): void {
    const match = FRAME.exec(text)
    if (!match) return
    const [header, from, seq, part, parts] = match
    const body = text.slice(header.length)
    const count = Number(parts)
    if (count === 1) {
      this.deliver(channel, body, from)
      return
    }

    const key = `${from} ${seq}`
    const now = Date.now()
    let entry = this.partial.get(key)
    if (!entry) {
      // Parts of one message arrive together; anything left over for a minute was cut by a reconnection.
      for (const [k, e] of this.partial) if (now - e.at > 60_000) this.partial.delete(k)
      this.partial.set(key, entry = {at: now, got: 0, parts: Array.from({length: count})})
    }

    const index = Number(part)
    if (index >= count || entry.parts[index] !== undefined) return
    entry.parts[index] = body
    if (++entry.got < count) return
    this.partial.delete(key)
    this.deliver(channel, entry.parts.join(''), from)
  }
}

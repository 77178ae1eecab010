import {type Logger, silentLogger} from '../../lib/logger.js'
import {CERT_CHANNEL} from '../storage/pg-cert-store.js'
import {PgLocker} from '../storage/pg-locker.js'
import type {PgDatabase, PgSession} from '../storage/postgres.js'
import {SESSION_CHANNEL} from '../storage/sessions.js'

/** What a node says about itself in its heartbeat row (`mfc status --cluster` shows it). */
export interface NodeIdentity {
  name: string
  host: string
  pid: number
  version: string
  ports: {api: number; dashboard: number; streamer: number; http: number | null}
}

/** The certificate a node serves now. */
export interface ServedCertificate {
  serial: string
  notAfter: string
}

/** The collaborators of a ClusterNode; `refresh` and the callbacks must not throw. */
export interface ClusterNodeOptions {
  db: PgDatabase
  identity: NodeIdentity
  served(): ServedCertificate | undefined
  /**
   * Re-reads the live certificates from the shared store and reloads the servers if one
   * changed: on every NOTIFY of a certificate write, every `certCheckMs` (the backstop), and
   * when the database answers again after an outage (the catch-up).
   */
  refresh(reason: string): Promise<void>
  /** The database's state for /health: a problem text while unreachable, undefined when fine. */
  onDatabase(problem: string | undefined): void
  /** Another node logged a session out: the SHA-256 (hex) of its id. */
  onSessionEnded?(idHash: string): void
  heartbeatMs: number
  certCheckMs: number
  logger?: Logger
}

/**
 * One `mfc serve` node's part in the cluster: a heartbeat row in `mfc_nodes` every
 * `heartbeatMs` (which doubles as the database check behind /health), a LISTEN session for
 * certificate and logout notifications (re-opened after it drops), and the periodic backstop
 * check. The database going away never stops the node: it reports the problem, keeps serving
 * what it has, and catches up when the database answers again. `stop()` is idempotent and
 * removes the node's row (a node that stopped is gone, not lost).
 */
export class ClusterNode {
  private readonly log: Logger
  private heartbeatTimer?: NodeJS.Timeout
  private checkTimer?: NodeJS.Timeout
  private listener?: PgSession
  private listening?: Promise<void>
  private beating?: Promise<void>
  private problem: string | undefined
  private stopped = false
  private readonly startedAt = new Date()

  constructor(private readonly options: ClusterNodeOptions) {
    this.log = (options.logger ?? silentLogger).child({component: 'cluster'})
  }

  /** The first heartbeat and LISTEN, then the timers. Resolves even when the database is down. */
  async start(): Promise<void> {
    await this.beat()
    this.heartbeatTimer = setInterval(() => void this.beat(), this.options.heartbeatMs)
    this.checkTimer = setInterval(() => void this.options.refresh('periodic check'), this.options.certCheckMs)
    this.heartbeatTimer.unref()
    this.checkTimer.unref()
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.heartbeatTimer)
    clearInterval(this.checkTimer)
    await this.beating
    await this.listener?.end()
    await this.options.db.query('DELETE FROM mfc_nodes WHERE name = $1 AND pid = $2', [this.options.identity.name, this.options.identity.pid]).catch(() => {})
  }

  /** Re-reads the live certificates now (the bus regained its session: a NOTIFY may have been missed). */
  checkCertificates(reason: string): Promise<void> {
    return this.options.refresh(reason)
  }

  /**
   * One heartbeat now (coalesced with one in progress): write the row, make sure the LISTEN
   * session is up, report the database's state. Serve also calls it after a reload, so the
   * served serial in the table is fresh. Never rejects.
   */
  beat(): Promise<void> {
    this.beating ??= this.doBeat().finally(() => {
      this.beating = undefined
    })
    return this.beating
  }

  private async doBeat(): Promise<void> {
    if (this.stopped) return
    const {identity} = this.options
    try {
      await this.options.db.query(`INSERT INTO mfc_nodes (name, host, pid, version, ports, served, started_at, heartbeat_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, now())
        ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, version = excluded.version, ports = excluded.ports,
          served = excluded.served, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`,
      [identity.name, identity.host, identity.pid, identity.version, JSON.stringify(identity.ports), JSON.stringify(this.options.served() ?? null), this.startedAt])
      const reconnected = await this.ensureListening()
      if (this.problem !== undefined || reconnected) {
        if (this.problem !== undefined) this.log.info({node: identity.name}, 'The database answers again: catching up')
        this.problem = undefined
        this.options.onDatabase(undefined)
        await this.options.refresh('database reachable again')
      }
    } catch (error) {
      const problem = `the database is unreachable (${(error as Error).message})`
      if (this.problem === undefined) this.log.warn({node: identity.name, err: (error as Error).message}, 'Cluster database unreachable: serving the last certificate until it returns')
      this.problem = problem
      this.options.onDatabase(problem)
    }
  }

  /** Opens the LISTEN session when there is none; true when it (re)opened one after the first. */
  private async ensureListening(): Promise<boolean> {
    if (this.listener) return false
    this.listening ??= this.listen()
    const first = this.listening
    try {
      await first
    } finally {
      this.listening = undefined
    }

    return this.reopened++ > 0
  }

  private reopened = 0

  private async listen(): Promise<void> {
    const session = await this.options.db.session()
    session.onNotification((channel, payload) => {
      if (channel === CERT_CHANNEL) void this.options.refresh(`certificate "${payload}" changed`)
      else if (channel === SESSION_CHANNEL) this.options.onSessionEnded?.(payload)
    })
    try {
      await session.query(`LISTEN ${CERT_CHANNEL}`)
      await session.query(`LISTEN ${SESSION_CHANNEL}`)
    } catch (error) {
      await session.end()
      throw error
    }

    this.listener = session
    void session.closed.then(() => {
      if (this.listener === session) this.listener = undefined
      // Lost notifications are caught up by the refresh after the next heartbeat reconnects.
      if (!this.stopped) void this.beat()
    })
  }
}

/** One node as `mfc status --cluster` shows it. */
export interface ClusterNodeView extends NodeIdentity {
  served: ServedCertificate | null
  startedAt: string
  heartbeatAt: string
  /** Seconds since its last heartbeat, by the database's clock. */
  silentSeconds: number
  state: 'alive' | 'lost'
}

/** The whole cluster: every node's heartbeat row and who holds the renewal ("store") lock. */
export interface ClusterView {
  nodes: ClusterNodeView[]
  lock: {holder: string; since: string; node: string | null} | null
}

interface NodeRow extends Record<string, unknown> {
  name: string
  host: string
  pid: number
  version: string
  ports: NodeIdentity['ports']
  served: ServedCertificate | null
  started_at: Date
  heartbeat_at: Date
  silent: number
}

/** Reads the cluster's state; a node silent for more than `lostAfterMs` is `lost`. */
export async function readCluster(db: PgDatabase, lostAfterMs: number): Promise<ClusterView> {
  const rows = await db.query<NodeRow>(`SELECT name, host, pid, version, ports, served, started_at, heartbeat_at,
    extract(epoch FROM now() - heartbeat_at)::float8 AS silent FROM mfc_nodes ORDER BY name`)
  const nodes = rows.map((r): ClusterNodeView => ({
    name: r.name, host: r.host, pid: r.pid, version: r.version, ports: r.ports, served: r.served,
    startedAt: r.started_at.toISOString(), heartbeatAt: r.heartbeat_at.toISOString(),
    silentSeconds: Math.max(0, Math.round(r.silent * 10) / 10), state: r.silent * 1000 > lostAfterMs ? 'lost' : 'alive',
  }))
  const holder = await new PgLocker(db).holderRecord('store')
  const node = holder ? nodes.find((n) => holder.app.startsWith(`mfc ${n.host} ${n.pid} `))?.name ?? null : null
  return {nodes, lock: holder ? {holder: holder.app, since: holder.since.toISOString(), node} : null}
}

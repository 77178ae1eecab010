import {MfcError} from '../../lib/errors.js'
import {DataConflictError} from '../data/reading.js'
import type {SimulationConfig, SimulationControl, SimulationRunner, SimulationStatus} from '../data/simulation-runner.js'
import type {PgDatabase, PgSession} from '../storage/postgres.js'
import type {ClusterBus} from './bus.js'

/** The bus channel of simulator commands and changes. */
export const SIMULATION_CHANNEL = 'mfc:simulation'
/** The advisory lock's name, in PgLocker's spelling, so `PgLocker.holder('simulator')` names the node. */
const LOCK_KEY = 'mfc-lock:simulator'

/** What the cluster's simulator reports besides its status: takeovers and background failures. */
export interface ClusterSimulationHooks {
  tookOver?(status: SimulationStatus, from: string): void
  problem?(error: Error, what: string): void
}

export interface ClusterSimulationOptions extends ClusterSimulationHooks {
  db: PgDatabase
  bus: ClusterBus
  /** This node's runner: the cluster's run executes here while this node holds the lock. */
  local: SimulationRunner
  /** How often the holder writes its status and the others check that a holder is alive (ms). */
  intervalMs?: number
}

type Message = {type: 'stop'; run_id: string} | {type: 'changed'}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function unavailable(error: unknown): MfcError {
  if (error instanceof MfcError && error.code !== 'MFC_STORE_IO' && error.code !== 'MFC_STORE_UNAVAILABLE') return error
  return new MfcError(`The cluster database cannot be reached, so the simulator run cannot be decided: ${(error as Error).message}`, {
    code: 'MFC_CLUSTER_UNAVAILABLE', cause: error, suggestions: ['Retry when the database is back (GET /health shows it).'],
  })
}

/**
 * At most one simulator run for the cluster. The node running it holds a session advisory lock
 * ("simulator") on its own connection and writes the run's status to `mfc_simulation` through
 * that same connection every interval, so a node that lost the lock cannot write (fencing by
 * the connection). Every node reads that row: `/simulation/status` anywhere reports the run
 * and the node running it. A holder that dies (kill -9, host gone: its session ends) frees the
 * lock; the next check of another node takes it and resumes the run with the same id and start
 * (the seeded model replays to the same point), so the run goes on. A node shutting down hands
 * its run over the same way; `POST /simulation/stop` on any node stops the run (over the bus).
 */
export class ClusterSimulation implements SimulationControl {
  private session: PgSession | undefined
  private row: SimulationStatus | undefined
  private queue: Promise<unknown> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  private off: (() => void) | undefined
  private closed = false

  private constructor(private readonly options: ClusterSimulationOptions) {}

  private get node(): string {
    return this.options.bus.nodeId
  }

  /** Subscribes, reads the cluster's run and starts the periodic check (holder: write; others: take over). */
  static async start(options: ClusterSimulationOptions): Promise<ClusterSimulation> {
    const simulation = new ClusterSimulation(options)
    simulation.off = await options.bus.subscribe(SIMULATION_CHANNEL, (message) => simulation.received(message.payload))
    await simulation.refresh().catch((error: Error) => options.problem?.(error, 'read the cluster simulator run'))
    simulation.timer = setInterval(() => void simulation.check(), options.intervalMs ?? 1000)
    simulation.timer.unref()
    return simulation
  }

  status(): SimulationStatus {
    if (this.session) return {...this.options.local.status(), node: this.node}
    return this.row ?? {...this.options.local.status(), node: null}
  }

  metrics(): ReturnType<SimulationRunner['metrics']> {
    return this.options.local.metrics()
  }

  start(config: SimulationConfig): Promise<SimulationStatus> {
    return this.serial(async () => {
      if (this.session) throw this.conflict(this.status())
      let session: PgSession | undefined
      try {
        session = await this.tryLock()
        if (!session) await this.refresh()
      } catch (error) {
        throw unavailable(error)
      }

      if (!session) throw this.conflict(this.row)
      try {
        this.options.local.start(config)
      } catch (error) {
        await session.end()
        throw error
      }

      await this.hold(session)
      return this.status()
    })
  }

  stop(): Promise<SimulationStatus> {
    return this.serial(async () => {
      if (this.session) {
        this.options.local.stop()
        await this.release()
        return this.status()
      }

      try {
        await this.refresh()
        if (!this.row?.is_running) return this.status()
        const runId = this.row.run_id!
        await this.options.bus.publish(SIMULATION_CHANNEL, JSON.stringify({type: 'stop', run_id: runId} satisfies Message))
        // The holder writes the stopped run, then frees the lock; wait for that, bounded.
        for (let i = 0; i < 50 && this.row?.is_running && this.row.run_id === runId; i++) {
          await sleep(100)
          await this.refresh()
        }
      } catch (error) {
        throw unavailable(error)
      }

      return this.status()
    })
  }

  /** Stops the timer, hands a run this node holds to the others (the row still says running) and frees the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    this.off?.()
    await this.queue.catch(() => {})
    const session = this.session
    this.session = undefined
    this.options.local.close()
    await session?.end()
  }

  private conflict(status: SimulationStatus | undefined): DataConflictError {
    return new DataConflictError(`Simulation ${status?.run_id ?? ''} is already running on node ${status?.node ?? 'unknown'}`.replace('  ', ' '), 'POST /simulation/stop (on any node) first, then start again.')
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work)
    this.queue = next.catch(() => {})
    return next
  }

  /** A session holding the simulator lock, or undefined when another node holds it. */
  private async tryLock(): Promise<PgSession | undefined> {
    const session = await this.options.db.session()
    try {
      await session.query("SELECT set_config('tcp_keepalives_idle', '5', false), set_config('tcp_keepalives_interval', '2', false), set_config('tcp_keepalives_count', '3', false)")
      const [{ok}] = await session.query<{ok: boolean}>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [LOCK_KEY])
      if (ok) {
        await session.query(`SELECT set_config('application_name', left(current_setting('application_name'), 40) || ' simulator ' || $1, false)`, [this.node])
        return session
      }
    } catch (error) {
      await session.end()
      throw error
    }

    await session.end()
    return undefined
  }

  /** This node runs the cluster's run now: watch the lock's session, publish the row. */
  private async hold(session: PgSession): Promise<void> {
    this.session = session
    void session.closed.then(() => {
      if (this.session !== session) return
      // The lock is gone with the session: stop here, so two nodes never run it; another node
      // (maybe this one, on its next check) takes the run over from the row.
      this.session = undefined
      this.options.local.stop()
      this.options.problem?.(new Error('the database session holding the simulator lock ended'), 'hold the simulator run')
    })
    await this.write(session)
    await this.changed()
  }

  /** The run ended here (stopped or completed): final row, then the lock goes. */
  private async release(): Promise<void> {
    const session = this.session
    if (!session) return
    try {
      await this.write(session)
    } finally {
      this.session = undefined
      await session.end()
    }

    await this.changed()
  }

  /** Written through the lock's own session: a node that lost the lock cannot write. */
  private async write(session: PgSession): Promise<void> {
    const status = {...this.options.local.status(), node: this.node}
    await session.query(`INSERT INTO mfc_simulation (id, holder, status, updated_at) VALUES (true, $1, $2, now())
      ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, status = excluded.status, updated_at = excluded.updated_at`, [this.node, JSON.stringify(status)])
    this.row = status
  }

  private async refresh(): Promise<void> {
    const [row] = await this.options.db.query<{holder: string; status: SimulationStatus}>('SELECT holder, status FROM mfc_simulation WHERE id')
    this.row = row ? {...row.status, node: row.holder} : undefined
  }

  private async changed(): Promise<void> {
    await this.options.bus.publish(SIMULATION_CHANNEL, JSON.stringify({type: 'changed'} satisfies Message)).catch(() => {})
  }

  private received(payload: string): void {
    let message: Message
    try {
      message = JSON.parse(payload) as Message
    } catch {
      return
    }

    if (message.type === 'stop' && this.session && this.options.local.status().run_id === message.run_id) void this.stop()
    else if (message.type === 'changed' && !this.session) void this.serial(() => this.refresh()).catch(() => {})
  }

  /** Holder: write the status (or release a run that ended). Others: take over a run whose holder is gone. */
  private async check(): Promise<void> {
    if (this.closed) return
    await this.serial(async () => {
      if (this.session) {
        if (this.options.local.status().is_running) await this.write(this.session)
        else await this.release()
        return
      }

      await this.refresh()
      if (!this.row?.is_running || this.closed) return
      const session = await this.tryLock()
      if (!session) return
      // Read again under the lock: the holder may have written its end just before it let go.
      await this.refresh()
      const run = this.row
      if (!run?.is_running || !run.config || !run.run_id || !run.start_time) {
        await session.end()
        return
      }

      this.options.local.start(run.config, {id: run.run_id, startedAt: new Date(run.start_time)})
      await this.hold(session)
      this.options.tookOver?.(this.status(), run.node ?? 'unknown')
    }).catch((error: Error) => this.options.problem?.(error, 'check the cluster simulator run'))
  }
}

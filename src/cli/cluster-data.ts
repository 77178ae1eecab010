import {systemClock} from '../lib/clock.js'
import type {MfcConfig} from '../lib/config.js'
import {MfcEventBus} from '../lib/events.js'
import type {Logger} from '../lib/logger.js'
import {ClusterAlertGate, PgAlertEpisodes} from '../services/cluster/alert-episodes.js'
import {type ClusterBus, PgClusterBus, defaultNodeId} from '../services/cluster/bus.js'
import {ReadingsFanout} from '../services/cluster/readings-fanout.js'
import {ClusterSimulation} from '../services/cluster/simulation-lease.js'
import type {Monitoring} from '../services/data/monitoring.js'
import {PgHistory} from '../services/storage/pg-history.js'
import type {PgDatabase} from '../services/storage/postgres.js'
import {openStorage} from './storage.js'

/** The live-data side of one cluster node (serve with `storage` set). */
export interface ClusterData {
  nodeId: string
  bus: ClusterBus
  /**
   * The events the node's monitoring emits into: alert events reach the node's own bus (and so
   * its notifications) only when this node claims the episode for the cluster.
   */
  dataEvents: MfcEventBus
  /** Wires the node's monitoring to the cluster: readings fan-out, the cluster's one simulator run. */
  attach(monitoring: Monitoring): Promise<void>
  /** Calls `listener` each time the bus regains its session after losing it (not on the first connection). */
  onReconnected(listener: () => void): void
  /** Waits for publishes in flight, unsubscribes, closes the bus and its database. Idempotent. */
  close(): Promise<void>
}

/**
 * Starts the cluster bus of a serve node. It starts even while the database is down (the bus
 * reconnects by itself, with the lost/regained transitions in the log), so a node keeps serving.
 */
export async function startClusterData(config: MfcConfig, events: MfcEventBus, logger: Logger): Promise<ClusterData> {
  const log = logger.child({component: 'cluster'})
  const db: PgDatabase = await openStorage(config)
  const nodeId = defaultNodeId()
  const bus = await PgClusterBus.start(db, {nodeId})
  bus.on('lost', ({error}) => log.warn({node: nodeId, err: error?.message}, 'cluster bus lost its database session; reconnecting'))
  bus.on('regained', () => log.info({node: nodeId}, 'cluster bus connected'))
  bus.on('error', ({channel, error}) => log.error({channel, err: error.message}, 'cluster bus subscriber failed'))
  if (!bus.connected) log.warn({node: nodeId, database: db.label}, 'cluster bus not connected yet; retrying')
  const dataEvents = new MfcEventBus()
  const gate = new ClusterAlertGate(dataEvents, events, new PgAlertEpisodes(db), nodeId, (error, event) => log.warn({err: error.message, event}, 'alert episode not claimed in the cluster database; notifying from this node'))
  let fanout: ReadingsFanout | undefined
  let simulation: ClusterSimulation | undefined
  let closing: Promise<void> | undefined
  let wasLost = false
  bus.on('lost', () => {
    wasLost = true
  })
  return {
    nodeId,
    bus,
    dataEvents,
    onReconnected(listener) {
      bus.on('regained', () => {
        if (wasLost) listener()
      })
    },
    async attach(monitoring) {
      // The catch-up reads the shared history on this module's pool (its own, so it works while the monitoring's pool is busy).
      const missed = new PgHistory(db, {clock: systemClock, connect: async () => db, retentionDays: 0})
      fanout = new ReadingsFanout(bus, monitoring, (error, count) => log.warn({err: error.message, readings: count}, count > 0 ? 'readings not published to the other nodes (they are stored)' : 'cluster readings catch-up failed'), {
        missed,
        caughtUp: ({delivered, missed: left}) => log.info({node: nodeId, delivered, missed: left}, 'cluster bus caught up with the readings stored while it was disconnected'),
      })
      monitoring.onStored = (readings) => fanout!.stored(readings)
      await fanout.start()
      simulation = await ClusterSimulation.start({
        db, bus, local: monitoring.localRunner,
        tookOver: (status, from) => log.warn({run: status.run_id, from, node: nodeId}, 'simulator run taken over from a node that is gone'),
        problem: (error, what) => log.warn({err: error.message, node: nodeId}, `cluster simulator: cannot ${what}`),
      })
      monitoring.runner = simulation
    },
    close() {
      closing ??= (async () => {
        // A run held here is handed to the other nodes (the lock goes with the session).
        await simulation?.close()
        await fanout?.flush()
        fanout?.close()
        await gate.flush()
        gate.close()
        await bus.close()
        await db.close()
      })()
      return closing
    },
  }
}

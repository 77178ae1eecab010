import type {MfcConfig} from '../lib/config.js'
import type {MfcEventBus} from '../lib/events.js'
import type {Logger} from '../lib/logger.js'
import {type ClusterBus, PgClusterBus, defaultNodeId} from '../services/cluster/bus.js'
import {ReadingsFanout} from '../services/cluster/readings-fanout.js'
import type {Monitoring} from '../services/data/monitoring.js'
import type {PgDatabase} from '../services/storage/postgres.js'
import {openStorage} from './storage.js'

/** The live-data side of one cluster node (serve with `storage` set). */
export interface ClusterData {
  nodeId: string
  bus: ClusterBus
  /** Wires the node's monitoring to the cluster: readings fan-out. */
  attach(monitoring: Monitoring): Promise<void>
  /** Waits for publishes in flight, unsubscribes, closes the bus and its database. Idempotent. */
  close(): Promise<void>
}

/**
 * Starts the cluster bus of a serve node. It starts even while the database is down (the bus
 * reconnects by itself, with the lost/regained transitions in the log), so a node keeps serving.
 */
export async function startClusterData(config: MfcConfig, _events: MfcEventBus, logger: Logger): Promise<ClusterData> {
  const log = logger.child({component: 'cluster'})
  const db: PgDatabase = await openStorage(config)
  const nodeId = defaultNodeId()
  const bus = await PgClusterBus.start(db, {nodeId})
  bus.on('lost', ({error}) => log.warn({node: nodeId, err: error?.message}, 'cluster bus lost its database session; reconnecting'))
  bus.on('regained', () => log.info({node: nodeId}, 'cluster bus connected'))
  bus.on('error', ({channel, error}) => log.error({channel, err: error.message}, 'cluster bus subscriber failed'))
  if (!bus.connected) log.warn({node: nodeId, database: db.label}, 'cluster bus not connected yet; retrying')
  let fanout: ReadingsFanout | undefined
  let closing: Promise<void> | undefined
  return {
    nodeId,
    bus,
    async attach(monitoring) {
      fanout = new ReadingsFanout(bus, monitoring, (error, count) => log.warn({err: error.message, readings: count}, 'readings not published to the other nodes (they are stored)'))
      monitoring.onStored = (readings) => fanout!.stored(readings)
      await fanout.start()
    },
    close() {
      closing ??= (async () => {
        await fanout?.flush()
        fanout?.close()
        await bus.close()
        await db.close()
      })()
      return closing
    },
  }
}

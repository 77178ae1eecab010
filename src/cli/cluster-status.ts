import type {MfcConfig} from '../lib/config.js'
import {NAGIOS} from '../lib/errors.js'
import {type ClusterView, readCluster} from '../services/cluster/nodes.js'
import {openStorage} from './storage.js'

/** What `mfc status --cluster` reports (and returns with --json). */
export interface ClusterStatusReport extends ClusterView {
  /** The database, by its URL without password. */
  storage: string
  /** A node is lost after this many seconds without a heartbeat. */
  lostAfterSeconds: number
  /** Nagios: 0 every node alive, 1 some node lost, 2 no node alive. */
  exitCode: number
}

/** Reads the nodes table and the renewal lock of the configured cluster (opens and closes its own pool). */
export async function clusterStatus(config: MfcConfig): Promise<ClusterStatusReport> {
  const db = await openStorage(config)
  try {
    const lostAfterSeconds = config.settings.cluster_heartbeat_seconds * config.settings.cluster_lost_heartbeats
    const view = await readCluster(db, lostAfterSeconds * 1000)
    const alive = view.nodes.filter((n) => n.state === 'alive').length
    const exitCode = alive === 0 ? NAGIOS.CRITICAL : alive < view.nodes.length ? NAGIOS.WARNING : NAGIOS.OK
    return {storage: db.label, lostAfterSeconds, exitCode, ...view}
  } finally {
    await db.close()
  }
}

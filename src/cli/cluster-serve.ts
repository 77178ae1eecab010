import {hostname} from 'node:os'

import type {MfcConfig} from '../lib/config.js'
import type {MfcEventBus} from '../lib/events.js'
import type {Logger} from '../lib/logger.js'
import {ClusterNode} from '../services/cluster/nodes.js'
import {sessionIdHash} from '../services/storage/sessions.js'
import type {ServeInfo, ServeRuntime} from '../services/servers/runtime.js'
import {type StorageRoles, nodeName} from './storage-roles.js'

/**
 * serve's part in the cluster (storage is a postgres URL): heartbeats, /health's database
 * state, and the reload of a certificate another node wrote — NOTIFY first, the periodic check
 * as the backstop, a catch-up when the database returns. A refresh re-reads the live versions
 * (PgCertStore points this node's `live` links at them) and reloads the servers; refreshes are
 * coalesced, so a burst of notifications costs one or two reads.
 */
export async function joinCluster(config: MfcConfig, roles: StorageRoles, runtime: ServeRuntime, info: ServeInfo, options: {version: string; events: MfcEventBus; logger: Logger}): Promise<ClusterNode> {
  const log = options.logger.child({component: 'cluster'})
  const port = (name: string) => info.services.find((s) => s.name === name)!.port
  let running: Promise<void> | undefined
  let again: string | undefined
  const refresh = (reason: string): Promise<void> => {
    if (running) {
      again = reason
      return running
    }

    running = (async () => {
      try {
        await roles.store.list()
        await runtime.reload(reason)
      } catch (error) {
        log.debug({reason, err: (error as Error).message}, 'Certificate refresh failed; the next check tries again')
      }
    })().finally(() => {
      running = undefined
      if (again !== undefined) {
        const next = again
        again = undefined
        void refresh(next)
      }
    })
    return running
  }

  const node = new ClusterNode({
    db: roles.db!,
    identity: {
      name: nodeName(config, port('api')), host: hostname(), pid: process.pid, version: options.version,
      ports: {api: port('api'), dashboard: port('dashboard'), streamer: port('streamer'), http: info.http?.port ?? null},
    },
    served() {
      const {serial, notAfter} = runtime.tls.current
      return {serial, notAfter: notAfter.toISOString()}
    },
    refresh,
    onDatabase: (problem) => runtime.health.setDependency('database', problem),
    onSessionEnded(idHash) {
      const sessions = runtime.security?.sessions
      if (!sessions) return
      for (const id of [...sessions.ids()]) if (sessionIdHash(id) === idHash) sessions.forget(id)
    },
    heartbeatMs: config.settings.cluster_heartbeat_seconds * 1000,
    certCheckMs: config.settings.cluster_cert_check_seconds * 1000,
    logger: options.logger,
  })
  // The table shows the serial a node serves now, not up to a heartbeat ago.
  options.events.on('server:reloaded', () => void node.beat())
  await node.start()
  return node
}

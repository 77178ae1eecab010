import {hostname} from 'node:os'

import type {MfcConfig} from '../lib/config.js'
import type {ManagedAccountStore} from '../services/acme/account-store.js'
import type {LocalCaStore} from '../services/issuers/local-ca-issuer.js'
import type {ChallengeTokenStore} from '../services/storage/challenge-tokens.js'
import type {Locker} from '../services/storage/locker.js'
import type {PgDatabase} from '../services/storage/postgres.js'
import type {PgSecrets} from '../services/storage/secrets.js'
import type {PgSessions} from '../services/storage/sessions.js'
import type {CertStore} from '../services/store/cert-store.js'
import {FileCertStore} from '../services/store/file-cert-store.js'

/**
 * The storage roles of one process, chosen once from `storage` (docs/cluster.md): the embedded
 * default (files; the lock file is the lock, accounts and challenge tokens in the state
 * directory, sessions in memory) or, with a postgres URL, the shared PostgreSQL for all of
 * them. Optional roles are undefined in the embedded default, where each service's own file
 * default applies. Every command and serve get their roles here and nowhere else.
 */
export interface StorageRoles {
  readonly cluster: boolean
  readonly store: CertStore
  /** The cluster's lock, taken inside this node's lock file (undefined: the lock file alone). */
  readonly locker?: Locker
  readonly accounts?: ManagedAccountStore
  /** HTTP-01 tokens every node answers from. */
  readonly tokens?: ChallengeTokenStore
  /** Dashboard sessions valid on every node. */
  readonly sessions?: PgSessions
  /** The cluster's one local CA (undefined: this machine's own CA files). */
  readonly localCa?: LocalCaStore
  /** Sealed secrets every node shares (the cluster's API token). */
  readonly secrets?: PgSecrets
  readonly db?: PgDatabase
}

/** One set of roles per storage and state directory in a process (one pool, however many callers). */
const opened = new Map<string, Promise<StorageRoles>>()

export function storageRoles(config: MfcConfig): Promise<StorageRoles> {
  const url = config.settings.storage
  if (!url) return Promise.resolve({cluster: false, store: new FileCertStore(config.paths.storeDir)})
  const key = `${url}\n${config.paths.clusterStoreDir}`
  let roles = opened.get(key)
  if (!roles) {
    roles = openCluster(config)
    opened.set(key, roles)
    // A failure (the database down at start) is not cached: the next caller tries again.
    roles.catch(() => opened.delete(key))
  }

  return roles
}

async function openCluster(config: MfcConfig): Promise<StorageRoles> {
  const [{openStorage, pgCertStore, storageSealer}, {PgLocker}, {PgAccountStore}, {PgChallengeTokens}, {PgSessions}, {PgLocalCa}, {PgSecrets}] = await Promise.all([
    import('./storage.js'), import('../services/storage/pg-locker.js'), import('../services/storage/pg-account-store.js'),
    import('../services/storage/challenge-tokens.js'), import('../services/storage/sessions.js'), import('../services/storage/pg-local-ca.js'),
    import('../services/storage/secrets.js'),
  ])
  const sealer = await storageSealer(config)
  const db = await openStorage(config)
  return {
    cluster: true,
    db,
    store: await pgCertStore(config, db),
    locker: new PgLocker(db),
    accounts: new PgAccountStore(db, sealer),
    tokens: new PgChallengeTokens(db),
    sessions: new PgSessions(db, config.settings.session_ttl_seconds * 1000),
    localCa: new PgLocalCa(db, sealer),
    secrets: new PgSecrets(db, sealer),
  }
}

/** This node's name in the cluster: `node_name`, else the host name and the API port. */
export function nodeName(config: MfcConfig, apiPort = config.settings.https_port_api): string {
  return config.settings.node_name ?? `${hostname()}:${apiPort}`
}

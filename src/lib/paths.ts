import {homedir} from 'node:os'
import {join} from 'node:path'

/**
 * Every file and directory mfc reads or writes, built in this one place (certmagic's StorageKeys
 * habit). Services receive an MfcPaths; nothing else joins paths under the config or state dirs.
 */
export interface MfcPaths {
  /** `ssl-config.json`, `notification-config.json`, IP lists. 0700 when mfc creates it. */
  configDir: string
  /** Certificate store, ACME account, pid file, logs, history database, API token. 0700. */
  stateDir: string
  sslConfigFile: string
  notificationConfigFile: string
  allowedIpsFile: string
  blockedIpsFile: string
  /**
   * Certificate store root: `<name>/versions/NNNN/*.pem` with a `<name>/live` symlink. In cluster
   * mode (`storage` set) this is `clusterStoreDir`, the node's PEM copies of the shared store.
   */
  storeDir: string
  /** The embedded store (files), whatever `storage` says: one end of `storage copy`. */
  embeddedStoreDir: string
  /** This node's local copies of the PostgreSQL store's versions, with the same layout. */
  clusterStoreDir: string
  /** The local certificate authority: `ca.crt` (0644) and `ca.key` (0600). */
  caDir: string
  caCertFile: string
  caKeyFile: string
  /** ACME accounts, one directory per CA directory URL. */
  acmeDir: string
  /** HTTP-01 tokens shared by `cert renew` and a running `serve`. */
  challengeDir: string
  pidFile: string
  logDir: string
  logFile: string
  historyDb: string
  apiTokenFile: string
  /** The one exclusive lock around every write of certificates, keys or config. */
  lockFile: string
  backupDir: string
}

export interface PathEnv {
  MFC_CONFIG_DIR?: string
  MFC_STATE_DIR?: string
  MFC_SSL_CONFIG?: string
  XDG_CONFIG_HOME?: string
  XDG_STATE_HOME?: string
  HOME?: string
}

/** Root uses the FHS system locations; everyone else the XDG base directories. */
export function resolvePaths(env: PathEnv, isRoot: boolean): MfcPaths {
  const home = env.HOME || homedir()
  const configDir = env.MFC_CONFIG_DIR
    || (isRoot ? '/etc/mfc' : join(env.XDG_CONFIG_HOME || join(home, '.config'), 'mfc'))
  const stateDir = env.MFC_STATE_DIR
    || (isRoot ? '/var/lib/mfc' : join(env.XDG_STATE_HOME || join(home, '.local', 'state'), 'mfc'))
  const caDir = join(stateDir, 'ca')
  const logDir = join(stateDir, 'logs')
  return {
    configDir,
    stateDir,
    sslConfigFile: env.MFC_SSL_CONFIG || join(configDir, 'ssl-config.json'),
    notificationConfigFile: join(configDir, 'notification-config.json'),
    allowedIpsFile: join(configDir, 'allowed-ips.txt'),
    blockedIpsFile: join(configDir, 'blocked-ips.txt'),
    storeDir: join(stateDir, 'certs'),
    embeddedStoreDir: join(stateDir, 'certs'),
    clusterStoreDir: join(stateDir, 'cluster-certs'),
    caDir,
    caCertFile: join(caDir, 'ca.crt'),
    caKeyFile: join(caDir, 'ca.key'),
    acmeDir: join(stateDir, 'acme'),
    challengeDir: join(stateDir, 'acme-challenges'),
    pidFile: join(stateDir, 'mfc.pid'),
    logDir,
    logFile: join(logDir, 'mfc.log'),
    historyDb: join(stateDir, 'history.sqlite'),
    apiTokenFile: join(stateDir, 'api-token'),
    lockFile: join(stateDir, '.mfc.lock'),
    backupDir: join(stateDir, 'backups'),
  }
}

/** The store name of a certificate lineage: its first domain, safe as a directory name. */
export function lineageName(primaryDomain: string): string {
  return primaryDomain.toLowerCase().replace(/^\*\./, '_wildcard.').replaceAll(/[^a-z0-9._-]/g, '_')
}

/** Live paths of a lineage, as written into `ssl-config.json` (cert_file, key_file). */
export function livePaths(paths: MfcPaths, name: string): {dir: string; certFile: string; keyFile: string; chainFile: string} {
  const dir = join(paths.storeDir, name, 'live')
  return {
    dir,
    certFile: join(dir, 'fullchain.pem'),
    keyFile: join(dir, 'privkey.pem'),
    chainFile: join(dir, 'chain.pem'),
  }
}

/**
 * Per-lineage renewal settings that differ from ssl-config.json's (a certbot lineage adopted with
 * its own webroot or port): `<store>/<name>/renewal.json`, beside the versions, deleted with them.
 */
export function lineageRenewalFile(paths: MfcPaths, name: string): string {
  return join(paths.storeDir, name, 'renewal.json')
}

import {systemClock} from '../lib/clock.js'
import type {MfcConfig} from '../lib/config.js'
import {MfcEventBus} from '../lib/events.js'
import {CertManager} from '../services/certificates/cert-manager.js'
import {CertMonitor} from '../services/certificates/monitor.js'
import {PidFile} from '../services/daemon/pid-file.js'
import {LocalCaIssuer} from '../services/issuers/local-ca-issuer.js'
import {storageRoles} from './storage-roles.js'

/** localhost certificates also name the loopback addresses, so https://127.0.0.1 works too. */
export function withLoopback(domains: string[]): string[] {
  return domains.includes('localhost') ? [...new Set([...domains, '127.0.0.1', '::1'])] : domains
}

/** Wires the certificate services of one command run from the resolved config (on the storage it names). */
export async function ssl(config: MfcConfig, domains?: string[]) {
  const {store, locker, localCa} = await storageRoles(config)
  const events = new MfcEventBus()
  return {
    domains: withLoopback(domains ?? config.settings.domains),
    events,
    store,
    manager: new CertManager(config, store, systemClock, events, locker),
    localCa: new LocalCaIssuer(config.paths, systemClock, localCa),
  }
}

export async function monitor(config: MfcConfig): Promise<CertMonitor> {
  const maintained = async () => config.settings.auto_renew && (await new PidFile(config.paths.pidFile).read())?.alive === true
  return new CertMonitor(config, (await storageRoles(config)).store, systemClock, maintained)
}

/** The lifecycle verbs (list, revoke, delete) over the store. */
export async function lifecycle(config: MfcConfig) {
  const {CertLifecycle} = await import('../services/lifecycle/cert-lifecycle.js')
  const {store, locker} = await storageRoles(config)
  return new CertLifecycle(config, store, systemClock, locker)
}

/**
 * The ACME account operations for the CA directories mfc keeps accounts for: on the account
 * files, or in cluster mode on the shared database's account (the one every node orders with),
 * under the cluster's lock.
 */
export async function accounts(config: MfcConfig) {
  const {AccountService} = await import('../services/acme/account-service.js')
  const roles = await storageRoles(config)
  return new AccountService({acmeDir: config.paths.acmeDir, lockFile: config.paths.lockFile, clock: systemClock, store: roles.accounts, locker: roles.locker})
}

/** `cert import --from-certbot`: certbot's lineages and accounts into mfc's store. */
export async function certbotImporter(config: MfcConfig) {
  const {CertbotImporter} = await import('../services/certbot/certbot-import.js')
  const {store, locker} = await storageRoles(config)
  return new CertbotImporter(config, store, systemClock, locker)
}

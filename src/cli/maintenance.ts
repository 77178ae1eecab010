import {systemClock} from '../lib/clock.js'
import type {MfcConfig} from '../lib/config.js'
import type {MfcEventBus} from '../lib/events.js'
import type {Logger} from '../lib/logger.js'
import {CertManager} from '../services/certificates/cert-manager.js'
import {CertificateMaintainer, type MaintainerStatus} from '../services/certificates/maintainer.js'
import {LocalCaIssuer} from '../services/issuers/local-ca-issuer.js'
import type {RenewalHealth} from '../services/servers/health.js'
import {renewOptions} from './acme-services.js'
import {storageRoles} from './storage-roles.js'

/** The command name the maintainer's lock carries (another run waiting for it shows it). */
export const MAINTAINER_COMMAND = 'serve (certificate maintainer)'

/**
 * serve's CertificateMaintainer over the store, renewing through the same path as
 * `mfc cert renew` (policy, ARI, lock, issuers, settings' hooks) and emitting on serve's bus,
 * where the hot reload and the notifications listen. It does not SIGHUP serve (it is serve).
 */
export async function createMaintainer(config: MfcConfig, events: MfcEventBus, logger: Logger, options: {httpServed: boolean; onChange?: (status: MaintainerStatus) => void}): Promise<CertificateMaintainer> {
  const {store, locker, localCa} = await storageRoles(config)
  const manager = new CertManager(config, store, systemClock, events, locker)
  const base = renewOptions(config, new LocalCaIssuer(config.paths, systemClock, localCa), {}, MAINTAINER_COMMAND, options.httpServed)
  return new CertificateMaintainer({
    clock: systemClock,
    events,
    logger,
    onChange: options.onChange,
    lineages: () => store.list(),
    renew: (names, signal) => manager.renew({...base, names, signal, reloadServe: undefined}),
  })
}

/** The maintainer's state as /health shows it. */
export function renewalHealth(status: MaintainerStatus): RenewalHealth {
  return {
    last_check: status.lastCheck,
    next_check: status.nextCheck,
    certificates: status.certificates.map((c) => ({name: c.name, last_check: c.lastCheck, last_result: c.lastResult, next_renewal: c.nextRenewal, consecutive_failures: c.consecutiveFailures})),
  }
}

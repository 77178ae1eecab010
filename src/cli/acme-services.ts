import {readFile} from 'node:fs/promises'

import {systemClock} from '../lib/clock.js'
import type {MfcConfig} from '../lib/config.js'
import {ConfigError} from '../lib/errors.js'
import {lineageRenewalFile, livePaths} from '../lib/paths.js'
import {AriClient, ariRenewAt} from '../services/acme/ari.js'
import {dryRunDirectory} from '../services/acme/directories.js'
import type {RenewOptions} from '../services/certificates/cert-manager.js'
import {signalServeReload} from '../services/daemon/reload.js'
import type {ExternalAccountBinding} from '../services/issuers/acme-issuer.js'
import type {Issuer} from '../services/certificates/issuer.js'
import type {ChallengeRecord, StoredCert} from '../services/store/cert-store.js'
import {solverFor} from './challenge-options.js'

/**
 * Wires an ACME issuer for one directory from the resolved config: account under
 * `paths.acmeDir`; challenges answered as `challenge` says (DNS-01 by RFC 2136 or hooks), else
 * HTTP-01 through the shared challenge directory plus `webroot` or a listener on `http_port`.
 * The issuer module (and acme-client) load only here, on demand.
 */
export async function acmeIssuer(config: MfcConfig, directoryUrl: string, eab: EabFlags = {}, challenge?: ChallengeRecord, termsOfServiceAgreed = false, lineage?: LineageChallenge, selfServesHttp = false): Promise<Issuer> {
  const externalAccount = externalAccountBinding(config, eab)
  const {AcmeIssuer} = await import('../services/issuers/acme-issuer.js')
  const {settings, paths} = config
  const effective = lineage ? {...config, settings: {...settings, ...lineage}} : config
  return new AcmeIssuer({
    directoryUrl,
    email: settings.email,
    externalAccount,
    acmeDir: paths.acmeDir,
    solver: await solverFor(challenge, effective, selfServesHttp),
    termsOfServiceAgreed,
    clock: systemClock,
  })
}

/** A lineage's own HTTP-01 settings (an adopted certbot lineage's webroot or port), over the config's. */
export type LineageChallenge = {webroot?: string; http_port?: number}

/** Reads `<store>/<name>/renewal.json`; absent or unreadable means "use the config's". */
async function lineageChallenge(config: MfcConfig, name: string): Promise<LineageChallenge | undefined> {
  try {
    const saved = JSON.parse(await readFile(lineageRenewalFile(config.paths, name), 'utf8')) as LineageChallenge
    // A flag of this run (--webroot, --http-port) still wins.
    return {
      ...(saved.webroot && config.sources.webroot !== 'flag' ? {webroot: saved.webroot} : {}),
      ...(saved.http_port && config.sources.http_port !== 'flag' ? {http_port: saved.http_port} : {}),
    }
  } catch {
    return undefined
  }
}

/** The profiles (name -> description) the CA at `directoryUrl` offers; {} when none. */
export async function acmeProfiles(config: MfcConfig, directoryUrl: string): Promise<Record<string, string>> {
  const issuer = await acmeIssuer(config, directoryUrl) as import('../services/issuers/acme-issuer.js').AcmeIssuer
  return issuer.profiles()
}

export interface EabFlags {
  'eab-kid'?: string
  'eab-hmac-key'?: string
}

/**
 * The External Account Binding for a new account: flags first, else MFC_ACME_EAB_KID and
 * MFC_ACME_EAB_HMAC_KEY. Both or neither; the key must be base64url (as CAs print it). Errors
 * name the flag or variable, never the key.
 */
export function externalAccountBinding(config: MfcConfig, flags: EabFlags): ExternalAccountBinding | undefined {
  const fromFlags = flags['eab-kid'] !== undefined || flags['eab-hmac-key'] !== undefined
  const kid = fromFlags ? flags['eab-kid'] : config.secrets.acmeEabKid
  const hmacKey = fromFlags ? flags['eab-hmac-key'] : config.secrets.acmeEabHmacKey
  const [kidName, keyName] = fromFlags ? ['--eab-kid', '--eab-hmac-key'] : ['MFC_ACME_EAB_KID', 'MFC_ACME_EAB_HMAC_KEY']
  if (!kid && !hmacKey) return undefined
  if (!kid || !hmacKey) {
    throw new ConfigError(`External Account Binding needs both ${kidName} and ${keyName}; only ${kid ? kidName : keyName} was given.`, {
      code: 'MFC_CONFIG_MISSING', suggestions: [`Give both (the CA shows them together), or neither for a CA without EAB.`],
    })
  }

  if (!/^[\w-]+={0,2}$/.test(hmacKey)) {
    throw new ConfigError(`${keyName} is not a base64url HMAC key.`, {
      code: 'MFC_CONFIG_VALUE', suggestions: [`Copy the EAB HMAC key exactly as the CA shows it (letters, digits, - and _).`],
    })
  }

  return {kid, hmacKey}
}

/** The renewal parts that depend on a lineage's issuer: which CA to ask, and its ARI window. */
export function renewalWiring(config: MfcConfig, localCa: Issuer, agreeTos = false, selfServesHttp = false): Pick<RenewOptions, 'issuerFor' | 'renewalWindow'> {
  const ari = new AriClient()
  return {
    async issuerFor(stored: StoredCert, dryRun: boolean) {
      if (stored.meta.issuer === 'local-ca') return localCa
      if (stored.meta.issuer !== 'acme' || !stored.meta.acmeDirectory) return undefined
      // The lineage's own challenge record: a DNS-01 certificate renews over DNS-01. An adopted
      // certbot lineage other than the configured one keeps its own webroot/port (renewal.json).
      const own = config.settings.cert_file.startsWith(livePaths(config.paths, stored.name).dir + '/') ? undefined : await lineageChallenge(config, stored.name)
      return acmeIssuer(config, dryRun ? dryRunDirectory(stored.meta.acmeDirectory, config.settings) : stored.meta.acmeDirectory, {}, stored.meta.challenge, agreeTos, own, selfServesHttp)
    },
    async renewalWindow(stored: StoredCert, certPem: string) {
      if (stored.meta.issuer !== 'acme' || !stored.meta.acmeDirectory) return undefined
      const window = await ari.window(stored.meta.acmeDirectory, certPem)
      return window && {...window, renewAt: ariRenewAt(window, stored.meta.serial)}
    },
  }
}

/** The flags both renew commands share, and how they map onto RenewOptions. */
export interface RenewFlags {
  'cert-name'?: string[]
  force?: boolean
  'dry-run'?: boolean
  'pre-hook'?: string
  'deploy-hook'?: string
  'post-hook'?: string
  'agree-tos'?: boolean
}

export function renewOptions(config: MfcConfig, localCa: Issuer, flags: RenewFlags, command: string, selfServesHttp = false): RenewOptions {
  const {settings} = config
  return {
    ...renewalWiring(config, localCa, Boolean(flags['agree-tos']), selfServesHttp),
    names: flags['cert-name'],
    force: Boolean(flags.force),
    dryRun: Boolean(flags['dry-run']),
    command,
    hooks: {pre: flags['pre-hook'] ?? settings.pre_hook, deploy: flags['deploy-hook'] ?? settings.deploy_hook, post: flags['post-hook'] ?? settings.post_hook},
    reloadServe: () => signalServeReload(config.paths.pidFile),
  }
}

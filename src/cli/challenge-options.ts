import {resolve} from 'node:path'

import {Flags} from '@oclif/core'

import type {MfcConfig} from '../lib/config.js'
import {UsageError} from '../lib/errors.js'
import {chooseResponder} from '../services/acme/challenge-select.js'
import {type ChallengeSolver, type ChallengeType, HttpSolver} from '../services/acme/challenge-solver.js'
import {DEFAULT_PROPAGATION, type PropagationOptions, parseServer} from '../services/acme/dns-propagation.js'
import type {ChallengeRecord} from '../services/store/cert-store.js'
import {storageRoles} from './storage-roles.js'

/** How `ssl init` answers challenges: certbot's authenticator flags and mfc's DNS-01 settings. */
export const challengeFlags = {
  'preferred-challenges': Flags.string({description: 'Challenge types in order of preference, certbot\'s way: dns, http (or dns-01,http-01). Default: dns with --dns-rfc2136-credentials, else http (dns for wildcards with --manual-auth-hook).', helpGroup: 'CHALLENGE'}),
  'dns-rfc2136': Flags.boolean({description: 'certbot\'s authenticator flag: DNS-01 by RFC 2136 (needs --dns-rfc2136-credentials).', helpGroup: 'CHALLENGE'}),
  'dns-rfc2136-credentials': Flags.string({description: 'certbot-dns-rfc2136 ini file (dns_rfc2136_server, _port, _name, _secret, _algorithm); must be chmod 600. Renewals read it again.', helpGroup: 'CHALLENGE'}),
  manual: Flags.boolean({description: 'certbot\'s authenticator flag: answer challenges with --manual-auth-hook.', helpGroup: 'CHALLENGE'}),
  'manual-auth-hook': Flags.string({description: 'Shell command run per challenge with CERTBOT_DOMAIN, CERTBOT_VALIDATION, CERTBOT_TOKEN, CERTBOT_REMAINING_CHALLENGES, CERTBOT_ALL_DOMAINS (certbot\'s contract).', helpGroup: 'CHALLENGE'}),
  'manual-cleanup-hook': Flags.string({description: 'Shell command run per challenge afterwards, whatever happened (same variables plus CERTBOT_AUTH_OUTPUT).', dependsOn: ['manual-auth-hook'], helpGroup: 'CHALLENGE'}),
  'dns-nameserver': Flags.string({description: 'HOST[:PORT] asked for the zone\'s SOA/NS; its NS are then polled on that port. Default: the credentials\' server, or the system resolver (port 53).', helpGroup: 'CHALLENGE'}),
  'dns-propagation-timeout': Flags.integer({description: 'Seconds to wait for the TXT record at every authoritative server (default 120).', min: 1, aliases: ['dns-rfc2136-propagation-seconds'], helpGroup: 'CHALLENGE'}),
  'dns-poll-interval': Flags.integer({description: 'Seconds between propagation checks (default 2; the first check is immediate).', min: 1, helpGroup: 'CHALLENGE'}),
  standalone: Flags.boolean({description: 'certbot\'s authenticator flag: HTTP-01 on a listener of mfc\'s own (the default).', helpGroup: 'CHALLENGE'}),
}

export interface ChallengeFlags {
  'preferred-challenges'?: string
  'dns-rfc2136'?: boolean
  'dns-rfc2136-credentials'?: string
  manual?: boolean
  'manual-auth-hook'?: string
  'manual-cleanup-hook'?: string
  'dns-nameserver'?: string
  'dns-propagation-timeout'?: number
  'dns-poll-interval'?: number
}

function usage(message: string, suggestion: string): UsageError {
  return new UsageError(message, {code: 'MFC_USAGE', suggestions: [suggestion]})
}

function preferred(text: string): ChallengeType[] {
  return text.split(/[\s,]+/).filter(Boolean).map((item) => {
    const type = item.toLowerCase().replace(/^(dns|http)$/, '$1-01')
    if (type !== 'dns-01' && type !== 'http-01') throw usage(`--preferred-challenges "${item}" is not a challenge type mfc answers.`, 'Use dns (dns-01) or http (http-01); mfc has no tls-alpn-01.')
    return type as ChallengeType
  })
}

/**
 * The challenge record of a new lineage, from the flags (certbot's rules where it has some):
 * the first preferred type that has a way to answer it. Refuses what cannot work before the
 * CA is asked: DNS-01 without credentials or a hook, a wildcard over HTTP-01.
 */
export function challengeRecord(flags: ChallengeFlags, domains: string[]): ChallengeRecord {
  const hook = flags['manual-auth-hook']
  const credentials = flags['dns-rfc2136-credentials']
  if (flags['dns-rfc2136'] && !credentials) throw usage('--dns-rfc2136 needs --dns-rfc2136-credentials FILE.', 'Pass the certbot-dns-rfc2136 ini file: --dns-rfc2136-credentials /etc/letsencrypt/rfc2136.ini')
  if (flags.manual && !hook) throw usage('--manual needs --manual-auth-hook CMD (mfc never asks you to create records by hand).', 'Pass --manual-auth-hook /path/to/script (it gets CERTBOT_DOMAIN and CERTBOT_VALIDATION).')
  const wildcard = domains.some((d) => d.startsWith('*.'))
  const canDns = Boolean(credentials || hook)
  const order = flags['preferred-challenges'] ? preferred(flags['preferred-challenges']) : (credentials || (hook && wildcard) ? ['dns-01'] : ['http-01']) as ChallengeType[]
  const type = order.find((t) => t === 'http-01' ? !wildcard : canDns)
  if (!type) {
    if (wildcard && !canDns) throw usage(`${domains.find((d) => d.startsWith('*.'))} is a wildcard, which only DNS-01 can prove, and no way to answer DNS-01 was given.`, 'Add --preferred-challenges dns with --dns-rfc2136-credentials FILE (RFC 2136 + TSIG) or --manual-auth-hook CMD.')
    throw usage('DNS-01 needs a way to create the TXT record.', 'Pass --dns-rfc2136-credentials FILE (RFC 2136 + TSIG) or --manual-auth-hook CMD.')
  }

  const record: ChallengeRecord = {type}
  if (hook) Object.assign(record, {manualAuthHook: hook, ...(flags['manual-cleanup-hook'] ? {manualCleanupHook: flags['manual-cleanup-hook']} : {})})
  if (type === 'dns-01') {
    if (credentials && !hook) record.rfc2136Credentials = resolve(credentials)
    if (flags['dns-nameserver']) record.dnsNameserver = flags['dns-nameserver']
    if (flags['dns-propagation-timeout']) record.propagationTimeoutS = flags['dns-propagation-timeout']
    if (flags['dns-poll-interval']) record.propagationIntervalS = flags['dns-poll-interval']
  }

  return record
}

/**
 * The solver for a lineage's challenge record (ssl init, and every renewal after it). The
 * solver modules load only here, on demand; the credentials file is read (and its mode
 * checked) on every use, so a rotated key is picked up.
 */
export async function solverFor(record: ChallengeRecord | undefined, config: MfcConfig, selfServesHttp = false): Promise<ChallengeSolver> {
  const {settings, paths} = config
  const propagation: PropagationOptions = {
    timeoutMs: (record?.propagationTimeoutS ?? DEFAULT_PROPAGATION.timeoutMs / 1000) * 1000,
    intervalMs: (record?.propagationIntervalS ?? DEFAULT_PROPAGATION.intervalMs / 1000) * 1000,
  }
  if (record?.manualAuthHook) {
    const {ManualHookSolver} = await import('../services/acme/solver-manual.js')
    const nameserver = record.dnsNameserver ? parseServer(record.dnsNameserver) : undefined
    return new ManualHookSolver(record.type, {authHook: record.manualAuthHook, cleanupHook: record.manualCleanupHook, nameserver}, propagation)
  }

  if (record?.type === 'dns-01' && record.rfc2136Credentials) {
    const {Rfc2136Solver, readRfc2136Credentials} = await import('../services/acme/solver-rfc2136.js')
    return new Rfc2136Solver(await readRfc2136Credentials(record.rfc2136Credentials), propagation)
  }

  // selfServesHttp: this process is the serve answering on its HTTP port (its maintainer renewing).
  // Cluster mode: the tokens go to the database, so whichever node the CA reaches answers.
  const {tokens} = await storageRoles(config)
  return new HttpSolver(await chooseResponder({paths, httpPort: settings.http_port, webroot: settings.webroot, selfServesHttp, shared: tokens}))
}

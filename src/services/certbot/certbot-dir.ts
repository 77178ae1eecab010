import {promises as fs} from 'node:fs'
import {basename, join} from 'node:path'

import {errnoCode} from '../../lib/errors.js'
import type {ChallengeRecord} from '../store/cert-store.js'

/** A certbot renewal file (`renewal/<name>.conf`), the configobj subset certbot writes. */
export interface RenewalConf {
  top: Record<string, string>
  params: Record<string, string>
  webrootMap: Record<string, string>
}

/** The renewal settings of one lineage that have an mfc meaning. */
export interface CertbotRenewalParams {
  server: string
  account?: string
  authenticator?: string
  webroot?: string
  http01Port?: number
  preHook?: string
  postHook?: string
  /** certbot stores --deploy-hook as `renew_hook`. */
  deployHook?: string
  keyType?: 'ecdsa' | 'rsa'
  rsaKeySize?: 2048 | 3072 | 4096
  ellipticCurve?: 'P-256' | 'P-384'
  /** DNS-01 lineages (certbot-dns-rfc2136, or manual hooks): how mfc renews them. */
  challenge?: ChallengeRecord
}

/** One archive version: certbot's `archive/<name>/{cert,chain,fullchain,privkey}N.pem`. */
export interface CertbotVersion {
  number: number
  certFile: string
  chainFile: string
  fullchainFile: string
  keyFile: string
}

export interface CertbotLineage {
  name: string
  confFile: string
  archiveDir: string
  /** Ascending by number; the last is normally what `live/<name>` points at. */
  versions: CertbotVersion[]
  /** The version `live/<name>/cert.pem` points at. */
  liveVersion: number
  liveDir: string
  params: CertbotRenewalParams
}

/** certbot's ACME account for a server: `accounts/<host[:port]>/<path>/<id>/`. */
export interface CertbotAccount {
  id: string
  dir: string
  url: string
  /** JWK of the private key (certbot writes RSA 2048 JWKs). */
  privateJwk: string
}

/** Parses the configobj subset of certbot's renewal files: `key = value`, `[section]`, `[[sub]]`, `#` comments. */
export function parseRenewalConf(text: string): RenewalConf {
  const conf: RenewalConf = {top: {}, params: {}, webrootMap: {}}
  let section: Record<string, string> = conf.top
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.startsWith('[[')) {
      section = line === '[[webroot_map]]' ? conf.webrootMap : {}
      continue
    }

    if (line.startsWith('[')) {
      section = line === '[renewalparams]' ? conf.params : {}
      continue
    }

    const eq = line.indexOf('=')
    if (eq > 0) section[line.slice(0, eq).trim()] = unquote(line.slice(eq + 1).trim())
  }

  return conf
}

function unquote(value: string): string {
  return /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value
}

const CURVES: Record<string, 'P-256' | 'P-384'> = {secp256r1: 'P-256', 'P-256': 'P-256', prime256v1: 'P-256', secp384r1: 'P-384', 'P-384': 'P-384'}

/** The renewal parameters mfc can honour; the rest (dns plugins' credentials...) are listed as unmapped. */
export function renewalParams(conf: RenewalConf): {params: CertbotRenewalParams; unmapped: string[]} {
  const p = conf.params
  const known = new Set(['server', 'account', 'authenticator', 'webroot_path', 'http01_port', 'pre_hook', 'post_hook', 'renew_hook', 'key_type', 'rsa_key_size', 'elliptic_curve', 'config_dir', 'work_dir', 'logs_dir', 'installer',
    'dns_rfc2136_credentials', 'dns_rfc2136_propagation_seconds', 'manual_auth_hook', 'manual_cleanup_hook', 'pref_challs'])
  const webroot = p.webroot_path?.split(',').map((s) => s.trim()).find(Boolean) ?? Object.values(conf.webrootMap)[0]
  const size = Number(p.rsa_key_size)
  const params: CertbotRenewalParams = {
    server: p.server ?? 'https://acme-v02.api.letsencrypt.org/directory',
    ...(p.account ? {account: p.account} : {}),
    ...(p.authenticator ? {authenticator: p.authenticator} : {}),
    ...(p.authenticator === 'webroot' && webroot ? {webroot} : {}),
    ...(p.http01_port && /^\d+$/.test(p.http01_port) ? {http01Port: Number(p.http01_port)} : {}),
    ...(p.pre_hook ? {preHook: p.pre_hook} : {}),
    ...(p.post_hook ? {postHook: p.post_hook} : {}),
    ...(p.renew_hook ? {deployHook: p.renew_hook} : {}),
    ...(p.key_type === 'rsa' || p.key_type === 'ecdsa' ? {keyType: p.key_type} : {}),
    ...(size === 2048 || size === 3072 || size === 4096 ? {rsaKeySize: size} : {}),
    ...(p.elliptic_curve && CURVES[p.elliptic_curve] ? {ellipticCurve: CURVES[p.elliptic_curve]} : {}),
    ...challengeOf(p),
  }
  const unmapped = Object.keys(p).filter((k) => !known.has(k) && p[k] !== 'None')
  if (p.authenticator && !['standalone', 'webroot'].includes(p.authenticator) && !params.challenge) unmapped.unshift(`authenticator = ${p.authenticator}`)
  return {params, unmapped}
}

/** certbot's DNS-01 authenticators that mfc has too: dns-rfc2136 (credentials file) and manual hooks. */
function challengeOf(p: Record<string, string>): {challenge?: ChallengeRecord} {
  const seconds = Number(p.dns_rfc2136_propagation_seconds)
  if (p.authenticator === 'dns-rfc2136' && p.dns_rfc2136_credentials) {
    return {challenge: {type: 'dns-01', rfc2136Credentials: p.dns_rfc2136_credentials, ...(seconds > 0 ? {propagationTimeoutS: seconds} : {})}}
  }

  if (p.authenticator === 'manual' && p.manual_auth_hook) {
    const type = /http-01/.test(p.pref_challs ?? '') && !/dns-01/.test(p.pref_challs ?? '') ? 'http-01' : 'dns-01'
    return {challenge: {type, manualAuthHook: p.manual_auth_hook, ...(p.manual_cleanup_hook ? {manualCleanupHook: p.manual_cleanup_hook} : {})}}
  }

  return {}
}

/** The lineages certbot keeps under `dir` (its --config-dir), read-only; unreadable ones are reported, not thrown. */
export async function readCertbotDir(dir: string): Promise<{lineages: (CertbotLineage & {unmapped: string[]})[]; problems: {name: string; reason: string}[]}> {
  const renewalDir = join(dir, 'renewal')
  let files: string[]
  try {
    files = (await fs.readdir(renewalDir)).filter((f) => f.endsWith('.conf')).sort()
  } catch (error) {
    throw Object.assign(new Error(`${renewalDir}: ${errnoCode(error) === 'ENOENT' ? 'no such directory' : (error as Error).message}`), {cause: error, errno: errnoCode(error)})
  }

  const lineages: (CertbotLineage & {unmapped: string[]})[] = []
  const problems: {name: string; reason: string}[] = []
  for (const file of files) {
    const name = basename(file, '.conf')
    try {
      lineages.push(await readLineage(dir, name, join(renewalDir, file)))
    } catch (error) {
      problems.push({name, reason: (error as Error).message})
    }
  }

  return {lineages, problems}
}

async function readLineage(dir: string, name: string, confFile: string): Promise<CertbotLineage & {unmapped: string[]}> {
  const conf = parseRenewalConf(await fs.readFile(confFile, 'utf8'))
  const archiveDir = conf.top.archive_dir ?? join(dir, 'archive', name)
  const liveDir = conf.top.cert ? conf.top.cert.replace(/\/cert\.pem$/, '') : join(dir, 'live', name)
  const numbers = new Set<number>()
  for (const entry of await fs.readdir(archiveDir)) {
    const match = /^cert(\d+)\.pem$/.exec(entry)
    if (match) numbers.add(Number(match[1]))
  }

  if (numbers.size === 0) throw new Error(`no cert*.pem in ${archiveDir}`)
  const versions = [...numbers].sort((a, b) => a - b).map((n) => ({
    number: n, certFile: join(archiveDir, `cert${n}.pem`), chainFile: join(archiveDir, `chain${n}.pem`),
    fullchainFile: join(archiveDir, `fullchain${n}.pem`), keyFile: join(archiveDir, `privkey${n}.pem`),
  }))
  const liveTarget = await fs.readlink(join(liveDir, 'cert.pem')).catch(() => '')
  const liveVersion = Number(/cert(\d+)\.pem$/.exec(liveTarget)?.[1] ?? versions.at(-1)!.number)
  const {params, unmapped} = renewalParams(conf)
  return {name, confFile, archiveDir, versions, liveVersion, liveDir, params, unmapped}
}

/** certbot's account directory for a server URL: `accounts/<host[:port]><path>`. */
export function accountsDirFor(dir: string, server: string): string {
  const url = new URL(server)
  return join(dir, 'accounts', url.host, url.pathname)
}

/** certbot's account `id` for `server` (from a renewal file), or undefined when it is not there. */
export async function readCertbotAccount(dir: string, server: string, id: string | undefined): Promise<CertbotAccount | undefined> {
  const base = accountsDirFor(dir, server)
  const ids = id ? [id] : await fs.readdir(base).catch(() => [] as string[])
  for (const candidate of ids) {
    const accountDir = join(base, candidate)
    try {
      const [regr, privateJwk] = await Promise.all([fs.readFile(join(accountDir, 'regr.json'), 'utf8'), fs.readFile(join(accountDir, 'private_key.json'), 'utf8')])
      const url = (JSON.parse(regr) as {uri?: string}).uri
      if (url) return {id: candidate, dir: accountDir, url, privateJwk}
    } catch {}
  }

  return undefined
}

import {execFile} from 'node:child_process'
import {X509Certificate} from 'node:crypto'
import {constants, promises as fs} from 'node:fs'
import {createServer, isIP} from 'node:net'
import {networkInterfaces} from 'node:os'
import {rootCertificates} from 'node:tls'
import {promisify} from 'node:util'

import type {Clock} from '../../lib/clock.js'
import type {MfcConfig} from '../../lib/config.js'
import {errnoCode} from '../../lib/errors.js'
import {issuanceDirectory} from '../acme/directories.js'
import {runningServe} from '../daemon/reload.js'
import {httpRequest} from '../http-client.js'
import {parseCertificates, parsePrivateKey} from '../certificates/inspect.js'
import {caaCandidates, judgeCaa, knownCaaIdentity} from './caa.js'
import {DnsLookup} from './resolver.js'

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip'

/** One finding: what was checked, what was seen, and (unless ok) what to do. */
export interface Check {
  id: 'dns' | 'port' | 'caa' | 'key-mode' | 'pair' | 'chain' | 'expiry' | 'clock' | 'directory' | 'hook' | 'api-token'
  subject: string
  status: CheckStatus
  detail: string
  fix: string | null
}

export interface DoctorReport {
  checks: Check[]
  failures: number
  warnings: number
}

export interface DoctorOptions {
  /** Names to check (default: the config's domains). */
  domains?: string[]
  /** DNS servers to ask (host or host:port); default: the system's. */
  dnsServers?: string[]
  /** The CA's directory (default: the configured one). */
  directory?: string
  /** The CA's CAA identity when its directory publishes none (Pebble, private CAs). */
  caaIdentity?: string
  /** Extra trust anchors (PEM) for the chain check, besides ca_file and the system roots. */
  trustPem?: string
  /** The API token as serve would resolve it (the command reads it; the cluster's is in the database). */
  apiToken?: ApiTokenFacts
}

/**
 * What doctor is told about the API token, never the token: where it lives and a fingerprint,
 * or why it is weak, or that none exists yet (`missing`), or why it could not be read (`error`).
 */
export type ApiTokenFacts =
  | {where: string; fingerprint: string; weak?: string}
  | {missing: string}
  | {error: string}

const MAX_SKEW_S = 30
const execFileP = promisify(execFile)

/**
 * The deployment guide's troubleshooting section as one read-only pass: names, ports, CAA,
 * certificate and key files, chain, clock, the CA's directory, hooks. Each check is independent
 * and never throws; a check that cannot run says why. Never writes, never prints.
 */
export class Doctor {
  constructor(private readonly config: MfcConfig, private readonly clock: Clock) {}

  async run(options: DoctorOptions = {}): Promise<DoctorReport> {
    const s = this.config.settings
    const domains = options.domains?.length ? options.domains : s.domains
    const acme = s.use_letsencrypt || Boolean(s.acme_directory) || Boolean(options.directory)
    const directory = options.directory ?? issuanceDirectory(s)
    const dns = new DnsLookup(options.dnsServers)
    const directoryCheck = acme ? this.directory(directory) : Promise.resolve({checks: [skip('directory', directory, 'not an ACME setup (use_letsencrypt is false)')], caaIdentities: [] as string[]})
    const [names, ports, files, hooks, dir] = await Promise.all([
      Promise.all(domains.map((d) => this.resolves(dns, d, acme))), this.ports(acme), this.files(options.trustPem), this.hooks(), directoryCheck,
    ])
    const identities = [...new Set([...dir.caaIdentities, ...(options.caaIdentity ? [options.caaIdentity] : []), ...(knownCaaIdentity(directory) ? [knownCaaIdentity(directory)!] : [])])]
    const caa = acme ? await Promise.all(domains.map((d) => this.caa(dns, d, identities, directory))) : domains.map((d) => skip('caa', d, 'not an ACME setup'))
    const checks = [...names, ...caa, ...ports, ...files, ...dir.checks, ...hooks, ...(options.apiToken ? [tokenCheck(options.apiToken)] : [])]
    return {checks, failures: checks.filter((c) => c.status === 'fail').length, warnings: checks.filter((c) => c.status === 'warn').length}
  }

  private async resolves(dns: DnsLookup, name: string, acme: boolean): Promise<Check> {
    if (name === 'localhost' || isIP(name) !== 0) return {id: 'dns', subject: name, status: localAddresses().has(name) || name === 'localhost' ? 'ok' : 'warn', detail: name === 'localhost' ? 'localhost needs no DNS' : `an IP address${localAddresses().has(name) ? ' of this machine' : ', not one of this machine\'s'}`, fix: null}
    const {addresses, error} = await dns.addresses(name.replace(/^\*\./, ''))
    if (addresses.length === 0) {
      return {id: 'dns', subject: name, status: acme ? 'fail' : 'warn', detail: error ? `the lookup failed (${error})` : 'no A or AAAA record',
        fix: `Add an A (and/or AAAA) record for ${name} pointing at this machine (${[...localAddresses()].filter((a) => !isLoopback(a)).join(', ') || 'its public address'}); check with: dig +short ${name} A`}
    }

    const local = addresses.filter((a) => localAddresses().has(a))
    if (local.length > 0) return {id: 'dns', subject: name, status: 'ok', detail: `resolves to ${addresses.join(', ')} (this machine)`, fix: null}
    return {id: 'dns', subject: name, status: 'warn', detail: `resolves to ${addresses.join(', ')}, none of them this machine's (${[...localAddresses()].join(', ')})`,
      fix: `Point ${name} at this machine, unless a NAT or load balancer forwards ${addresses.join(', ')} here (then check port 80 from outside: curl -I http://${name}/).`}
  }

  private async caa(dns: DnsLookup, name: string, identities: string[], directory: string): Promise<Check> {
    let lookupError: string | null = null
    for (const candidate of caaCandidates(name)) {
      const {records, error} = await dns.caa(candidate)
      if (error) lookupError ??= `${candidate}: ${error}`
      if (records.length === 0) continue
      const verdict = judgeCaa(records, name, identities)
      const where = `CAA at ${candidate} allows ${verdict.allows.map((a) => `"${a}"`).join(', ') || 'no CA'}`
      if (identities.length === 0) return {id: 'caa', subject: name, status: 'warn', detail: `${where}; ${directory} publishes no caaIdentities`, fix: `Name the CA's CAA domain with --caa-identity to judge this.`}
      if (verdict.allowed) return {id: 'caa', subject: name, status: 'ok', detail: `${where}, including ${identities.join('/')}`, fix: null}
      return {id: 'caa', subject: name, status: 'fail', detail: `${where}${verdict.unknownCritical ? ' (and an unknown critical tag)' : ''}: ${identities.join('/')} may not issue`,
        fix: `Add a CAA record at ${candidate}: ${candidate}. CAA 0 ${name.startsWith('*.') ? 'issuewild' : 'issue'} "${identities[0]}"`}
    }

    if (lookupError) return {id: 'caa', subject: name, status: 'warn', detail: `CAA lookup failed (${lookupError}); the CA refuses to issue while it cannot read CAA`, fix: 'Fix the zone\'s DNS servers so that CAA queries are answered (even with "no records").'}
    return {id: 'caa', subject: name, status: 'ok', detail: 'no CAA records: any CA may issue', fix: null}
  }

  private async ports(acme: boolean): Promise<Check[]> {
    const s = this.config.settings
    const serve = await runningServe(this.config.paths.pidFile)
    const held = new Set(serve ? [serve.ports.api, serve.ports.dashboard, serve.ports.streamer, serve.ports.http].filter((p): p is number => p !== null) : [])
    const wanted: [number, string][] = [[s.https_port_api, 'https_port_api'], [s.https_port_frontend, 'https_port_frontend'], [s.wss_port_streaming, 'wss_port_streaming']]
    if (acme || s.enable_http_port) wanted.unshift([s.http_port, 'http_port'])
    return Promise.all(wanted.map(async ([port, key]): Promise<Check> => {
      const subject = `${s.host}:${port} (${key})`
      if (held.has(port)) return {id: 'port', subject, status: 'ok', detail: `held by mfc serve (pid ${serve!.supervisorPid ?? serve!.pid})`, fix: null}
      const error = await tryListen(s.host, port)
      if (!error) return {id: 'port', subject, status: 'ok', detail: 'free', fix: null}
      if (error === 'EACCES') return {id: 'port', subject, status: 'warn', detail: 'only root may bind it', fix: `Run mfc as root for port ${port}, or give node CAP_NET_BIND_SERVICE, or choose another ${key}.`}
      return {id: 'port', subject, status: 'fail', detail: error === 'EADDRINUSE' ? 'taken by another program' : `cannot bind (${error})`,
        fix: `See who holds it: ss -ltnp 'sport = :${port}'. Stop that program, or set ${key} in ${this.config.paths.sslConfigFile} to a free port.`}
    }))
  }

  private async files(trustPem?: string): Promise<Check[]> {
    const {cert_file: certFile, key_file: keyFile, ca_file: caFile} = this.config.settings
    const checks: Check[] = []
    const keyStat = await fs.stat(keyFile).catch((error: unknown) => errnoCode(error) ?? 'EIO')
    if (typeof keyStat === 'string') {
      checks.push({id: 'key-mode', subject: keyFile, status: 'fail', detail: `cannot stat it (${keyStat})`, fix: keyStat === 'ENOENT' ? 'Create a certificate: mfc ssl init (or fix key_file in the config).' : `Run as the user that owns ${keyFile}.`})
    } else {
      const mode = keyStat.mode & 0o777
      const shown = `mode ${mode.toString(8).padStart(4, '0')}`
      checks.push(mode & 0o007
        ? {id: 'key-mode', subject: keyFile, status: 'fail', detail: `${shown}: readable by every user`, fix: `chmod 600 ${keyFile}   (or 640 with a trusted group: chgrp ssl-cert ${keyFile}; chmod 640 ${keyFile})`}
        : mode & 0o070 ? {id: 'key-mode', subject: keyFile, status: 'warn', detail: `${shown}: readable by its group (gid ${keyStat.gid})`, fix: `Make sure only trusted users are in that group, or chmod 600 ${keyFile}.`}
          : {id: 'key-mode', subject: keyFile, status: 'ok', detail: shown, fix: null})
    }

    let chain: X509Certificate[]
    try {
      chain = parseCertificates(await fs.readFile(certFile, 'utf8'), certFile)
    } catch (error) {
      return [...checks, {id: 'pair', subject: certFile, status: 'fail', detail: (error as Error).message, fix: 'Create or import a certificate: mfc ssl init (or fix cert_file in the config).'}]
    }

    try {
      const key = parsePrivateKey(await fs.readFile(keyFile, 'utf8'), keyFile)
      checks.push(chain[0].checkPrivateKey(key)
        ? {id: 'pair', subject: `${certFile} + ${keyFile}`, status: 'ok', detail: 'the key belongs to the certificate', fix: null}
        : {id: 'pair', subject: `${certFile} + ${keyFile}`, status: 'fail', detail: 'the key does not belong to the certificate', fix: `Point key_file at the key issued with ${certFile} (compare: openssl x509 -in ${certFile} -noout -pubkey; openssl pkey -in ${keyFile} -pubout).`})
    } catch (error) {
      if (typeof keyStat !== 'string') checks.push({id: 'pair', subject: keyFile, status: 'fail', detail: (error as Error).message, fix: 'Give an unencrypted PEM private key in key_file.'})
    }

    const notAfter = new Date(chain[0].validTo)
    const days = Math.floor((notAfter.getTime() - this.clock.now().getTime()) / 86_400_000)
    checks.push(days < 0
      ? {id: 'expiry', subject: certFile, status: 'fail', detail: `expired on ${notAfter.toISOString()}`, fix: 'Renew it: mfc cert renew --force (or mfc ssl init --force).'}
      : {id: 'expiry', subject: certFile, status: days <= 7 ? 'warn' : 'ok', detail: `valid until ${notAfter.toISOString()} (${days} days)`, fix: days <= 7 ? 'Renew it now: mfc cert renew' : null})
    const anchors = [...(caFile ? [await fs.readFile(caFile, 'utf8').catch(() => '')] : []), trustPem ?? '', ...rootCertificates].flatMap((pem) => pem ? safeParse(pem) : [])
    checks.push(verifyChain(chain, anchors, certFile))
    return checks
  }

  private async directory(url: string): Promise<{checks: Check[]; caaIdentities: string[]}> {
    const sent = this.clock.now().getTime()
    let answer
    try {
      answer = await httpRequest(url, {method: 'GET', timeoutMs: 5000})
    } catch (error) {
      const detail = `no answer: ${(error as Error).message}`
      return {caaIdentities: [], checks: [
        {id: 'directory', subject: url, status: 'fail', detail, fix: `Check the network (proxy, firewall, DNS) and the URL: curl -sS ${url}. A private CA's root goes in NODE_EXTRA_CA_CERTS.`},
        skip('clock', 'system clock', 'the CA did not answer, so there was no Date to compare with'),
      ]}
    }

    let doc: {newNonce?: string; newOrder?: string; meta?: {caaIdentities?: string[]}} = {}
    try {
      doc = JSON.parse(answer.body)
    } catch {}

    const valid = answer.status === 200 && Boolean(doc.newNonce && doc.newOrder)
    const checks: Check[] = [valid
      ? {id: 'directory', subject: url, status: 'ok', detail: 'the CA answers with an ACME directory', fix: null}
      : {id: 'directory', subject: url, status: 'fail', detail: `HTTP ${answer.status}, not an ACME directory`, fix: 'Check the directory URL (acme_directory / --server): it ends in /directory for Let\'s Encrypt.'}]
    checks.push(clockCheck(answer.headers.date, sent, this.clock.now().getTime(), url))
    return {checks, caaIdentities: doc.meta?.caaIdentities?.map((i) => i.toLowerCase()) ?? []}
  }

  private async hooks(): Promise<Check[]> {
    const s = this.config.settings
    const hooks = ([['pre_hook', s.pre_hook], ['deploy_hook', s.deploy_hook], ['post_hook', s.post_hook]] as const).filter((h): h is [typeof h[0], string] => Boolean(h[1]))
    return Promise.all(hooks.map(async ([key, command]): Promise<Check> => {
      const program = command.trim().split(/\s+/)[0]
      const subject = `${key}: ${command}`
      if (program.includes('/')) {
        const ok = await fs.access(program, constants.X_OK).then(() => true, () => false)
        return ok ? {id: 'hook', subject, status: 'ok', detail: `${program} is executable`, fix: null}
          : {id: 'hook', subject, status: 'fail', detail: `${program} is missing or not executable`, fix: `Create it and chmod +x ${program}, or fix ${key} in ${this.config.paths.sslConfigFile}.`}
      }

      // Hooks run through sh, so ask sh: builtins, functions on PATH and programs all count.
      const found = await execFileP('sh', ['-c', 'command -v -- "$1"', 'sh', program]).then((r) => r.stdout.trim(), () => '')
      return found ? {id: 'hook', subject, status: 'ok', detail: `${program} is ${found}`, fix: null}
        : {id: 'hook', subject, status: 'fail', detail: `${program} is not found on PATH`, fix: `Install ${program} or give its full path in ${key}.`}
    }))
  }
}

function tokenCheck(facts: ApiTokenFacts): Check {
  if ('error' in facts) return {id: 'api-token', subject: 'API token', status: 'warn', detail: `cannot be read: ${facts.error}`, fix: 'Fix what the message names; `mfc api-token show` resolves the token the way serve does.'}
  if ('missing' in facts) return skip('api-token', 'API token', `none yet in ${facts.missing}: \`mfc serve\` generates one on its first start`)
  if (facts.weak) return {id: 'api-token', subject: facts.where, status: 'fail', detail: `too weak to guard the API: ${facts.weak}`, fix: 'Replace it: `mfc api-token rotate` (or set MFC_API_TOKEN to `openssl rand -base64 32`).'}
  return {id: 'api-token', subject: facts.where, status: 'ok', detail: `strong enough (fingerprint ${facts.fingerprint})`, fix: null}
}

function skip(id: Check['id'], subject: string, detail: string): Check {
  return {id, subject, status: 'skip', detail, fix: null}
}

function clockCheck(date: string | undefined, sent: number, received: number, url: string): Check {
  const theirs = date ? Date.parse(date) : Number.NaN
  if (Number.isNaN(theirs)) return skip('clock', 'system clock', `${url} sent no Date header`)
  // The Date header has whole seconds and was made somewhere between sending and receiving.
  const skew = Math.round(((sent + received) / 2 - theirs) / 1000)
  const detail = `${Math.abs(skew)} s ${skew >= 0 ? 'ahead of' : 'behind'} the CA's clock`
  return Math.abs(skew) <= MAX_SKEW_S ? {id: 'clock', subject: 'system clock', status: 'ok', detail, fix: null}
    : {id: 'clock', subject: 'system clock', status: 'fail', detail, fix: 'Synchronise the clock (timedatectl set-ntp true, or chrony/ntpd); certificates look not-yet-valid or expired to a skewed clock.'}
}

function verifyChain(chain: X509Certificate[], anchors: X509Certificate[], certFile: string): Check {
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i].checkIssued(chain[i + 1]) || !chain[i].verify(chain[i + 1].publicKey)) {
      return {id: 'chain', subject: certFile, status: 'fail', detail: `certificate #${i + 1} is not issued by #${i + 2}`, fix: 'Order the file leaf first, then each issuer (a fullchain.pem).'}
    }
  }

  const last = chain.at(-1)!
  const anchored = anchors.some((a) => last.checkIssued(a) && last.verify(a.publicKey)) || anchors.some((a) => a.fingerprint256 === last.fingerprint256)
  if (anchored) return {id: 'chain', subject: certFile, status: 'ok', detail: `${chain.length} certificate(s), ending at a trusted root`, fix: null}
  return {id: 'chain', subject: certFile, status: 'fail', detail: `no trusted root issued "${last.issuer.replaceAll('\n', ', ')}"`,
    fix: chain.length === 1 && !last.ca ? 'The file holds the leaf only: use the fullchain (leaf + intermediates), e.g. live/fullchain.pem.' : 'Clients will not trust it: add the missing intermediate, or (local CA) install the CA with ca_file / --ca-file.'}
}

function safeParse(pem: string): X509Certificate[] {
  try {
    return parseCertificates(pem, 'trust anchors')
  } catch {
    return []
  }
}

function tryListen(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', (error) => resolve(errnoCode(error) ?? (error as Error).message))
    server.listen({host, port, exclusive: true}, () => server.close(() => resolve(null)))
  })
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1'
}

function localAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)))
}

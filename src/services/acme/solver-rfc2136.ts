import {promises as fs} from 'node:fs'

import {ConfigError, IssuerError, errnoCode} from '../../lib/errors.js'
import {type ChallengeSolver, type SolverChallenge, type SolverEvent, dnsRecordName} from './challenge-solver.js'
import {type PropagationOptions, findZone, parseServer, resolveServer, waitForTxt, zoneServers} from './dns-propagation.js'
import {type DnsServer, RCODES, TSIG_ALGORITHMS, type TsigKey, formatServer, update} from './dns-wire.js'

/** certbot-dns-rfc2136's credentials file, parsed: where to send updates and the TSIG key. */
export interface Rfc2136Credentials {
  file: string
  server: DnsServer
  key: TsigKey
}

const TTL = 60

/**
 * Reads certbot's ini (`dns_rfc2136_server`, `_port`, `_name`, `_secret`, `_algorithm`, the
 * last defaulting to HMAC-MD5 as in certbot). A file that group or others may read is refused
 * with the chmod to run. Errors name the file and the key, never the secret.
 */
export async function readRfc2136Credentials(file: string): Promise<Rfc2136Credentials> {
  let text: string
  try {
    const stat = await fs.stat(file)
    if ((stat.mode & 0o077) !== 0) {
      throw new ConfigError(`The credentials file ${file} holds a TSIG secret but is readable by ${(stat.mode & 0o070) === 0 ? 'others' : 'its group'} (mode ${(stat.mode & 0o777).toString(8).padStart(3, '0')}).`, {
        code: 'MFC_DNS_CREDENTIALS', suggestions: [`Run: chmod 600 ${file}`],
      })
    }

    text = await fs.readFile(file, 'utf8')
  } catch (error) {
    if (error instanceof ConfigError) throw error
    throw new ConfigError(`Cannot read the credentials file ${file} (${errnoCode(error) ?? (error as Error).message}).`, {
      code: 'MFC_DNS_CREDENTIALS', cause: error, suggestions: [`Check the path given to --dns-rfc2136-credentials (and that this user may read ${file}).`],
    })
  }

  const values = parseIni(text)
  const need = (key: string) => {
    const value = values.get(`dns_rfc2136_${key}`)
    if (!value) throw invalid(file, `dns_rfc2136_${key}`, 'is missing')
    return value
  }

  const server = parseServer(need('server'), Number(values.get('dns_rfc2136_port') ?? 53))
  if (!Number.isInteger(server.port) || server.port < 1 || server.port > 65_535) throw invalid(file, 'dns_rfc2136_port', 'is not a port number (1-65535)')
  const algorithm = (values.get('dns_rfc2136_algorithm') ?? 'HMAC-MD5').toUpperCase()
  if (!(algorithm in TSIG_ALGORITHMS)) throw invalid(file, 'dns_rfc2136_algorithm', `must be one of ${Object.keys(TSIG_ALGORITHMS).join(', ')}`)
  const secretText = need('secret')
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(secretText)) throw invalid(file, 'dns_rfc2136_secret', 'is not base64 (as tsig-keygen prints it)')
  return {file, server, key: {name: need('name'), algorithm: algorithm as TsigKey['algorithm'], secret: Buffer.from(secretText, 'base64')}}
}

function parseIni(text: string): Map<string, string> {
  const values = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*([\w.-]+)\s*=\s*(.*?)\s*$/.exec(line)
    if (!match || /^\s*[#;]/.test(line)) continue
    values.set(match[1].toLowerCase(), match[2].replace(/^(["'])(.*)\1$/, '$2'))
  }

  return values
}

function invalid(file: string, key: string, problem: string): ConfigError {
  return new ConfigError(`${key} in ${file} ${problem}.`, {
    code: 'MFC_DNS_CREDENTIALS', suggestions: [`Fix ${key} in ${file} (certbot-dns-rfc2136's format: "${key} = ...").`],
  })
}

/**
 * DNS-01 by RFC 2136 dynamic update: each TXT record is added with one TSIG-signed UPDATE to the
 * credentials' server, for the zone that server names in its SOA; `ready()` waits until every NS
 * of that zone (asked directly, on the same port) answers the value; `cleanup()` deletes exactly
 * the values it added. The secret goes into MACs only.
 */
export class Rfc2136Solver implements ChallengeSolver {
  readonly type = 'dns-01' as const
  readonly description: string
  private report: (event: SolverEvent) => void = () => undefined
  private server!: DnsServer
  private readonly zones = new Map<string, Promise<string>>()

  constructor(private readonly credentials: Rfc2136Credentials, private readonly propagation: PropagationOptions) {
    this.description = `RFC 2136 updates to ${formatServer(credentials.server)} (key ${credentials.key.name})`
  }

  async prepare(report: (event: SolverEvent) => void): Promise<void> {
    this.report = report
    this.server = await resolveServer(this.credentials.server).catch((error: unknown) => {
      throw new ConfigError(`dns_rfc2136_server ${this.credentials.server.host} in ${this.credentials.file} does not resolve (${errnoCode(error)}).`, {
        code: 'MFC_DNS_CREDENTIALS', suggestions: [`Give the server's IP address in ${this.credentials.file}.`],
      })
    })
  }

  async present(challenge: SolverChallenge): Promise<void> {
    const name = dnsRecordName(challenge.domain)
    const zone = await this.zoneOf(name)
    await this.send(zone, {add: [{name, value: challenge.validation, ttl: TTL}]}, `add TXT ${name}`)
    this.report({kind: 'presented', message: `Added TXT ${name} in zone ${zone} at ${formatServer(this.server)}`})
  }

  async ready(challenges: SolverChallenge[]): Promise<void> {
    await Promise.all(challenges.map(async (challenge) => {
      const name = dnsRecordName(challenge.domain)
      const zone = await this.zoneOf(name)
      const servers = await zoneServers(this.server, zone)
      this.report({kind: 'waiting', message: `Waiting for TXT ${name} at ${servers.map((s) => s.name).join(', ')}`})
      await waitForTxt(servers, name, challenge.validation, this.propagation)
    }))
    this.report({kind: 'visible', message: 'Every TXT record is visible at the zone\'s servers'})
  }

  async cleanup(challenge: SolverChallenge): Promise<void> {
    const name = dnsRecordName(challenge.domain)
    try {
      await this.send(await this.zoneOf(name), {remove: [{name, value: challenge.validation, ttl: 0}]}, `remove TXT ${name}`)
      this.report({kind: 'removed', message: `Removed TXT ${name}`})
    } catch (error) {
      this.report({kind: 'cleanup-failed', message: `Could not remove TXT ${name} "${challenge.validation}": ${(error as Error).message} Remove it by hand (nsupdate).`})
    }
  }

  async close(): Promise<void> {
    // Nothing is held between messages.
  }

  private zoneOf(name: string): Promise<string> {
    let zone = this.zones.get(name)
    if (!zone) {
      zone = findZone(this.server, name)
      this.zones.set(name, zone)
    }

    return zone
  }

  private async send(zone: string, changes: Parameters<typeof update>[2], what: string): Promise<void> {
    const {key, file} = this.credentials
    let response
    try {
      response = await update(this.server, zone, changes, key)
    } catch (error) {
      throw new IssuerError(`Could not ${what} at ${formatServer(this.server)}: ${(error as Error).message}.`, {
        code: 'MFC_DNS_UPDATE', cause: error, suggestions: [`Check dns_rfc2136_server and dns_rfc2136_port in ${file}, and that the server accepts updates.`],
      })
    }

    if (response.rcode === 0) return
    const rcode = RCODES[response.rcode] ?? `rcode ${response.rcode}`
    const tsig = response.tsigError ? `, TSIG ${RCODES[response.tsigError] ?? response.tsigError}` : ''
    throw new IssuerError(`${formatServer(this.server)} refused to ${what} in zone ${zone} (${rcode}${tsig}).`, {
      code: 'MFC_DNS_UPDATE',
      suggestions: response.tsigError || response.rcode === 9
        ? [`Check dns_rfc2136_name, dns_rfc2136_secret and dns_rfc2136_algorithm in ${file} against the server's key "${key.name}" (and that both clocks are right).`]
        : [`Allow this key to update ${zone}: in BIND, allow-update { key "${key.name}"; }; or an update-policy grant for _acme-challenge names.`],
    })
  }
}

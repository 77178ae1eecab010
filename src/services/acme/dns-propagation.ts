import {lookup} from 'node:dns/promises'
import {isIP} from 'node:net'

import {IssuerError} from '../../lib/errors.js'
import {sleep} from '../../lib/retry.js'
import {type DnsResponse, type DnsServer, DnsTransportError, RCODES, TYPE, formatServer, query} from './dns-wire.js'

/** How long to wait for a TXT record to show at every authoritative server, and how often to look. */
export interface PropagationOptions {
  timeoutMs: number
  intervalMs: number
  signal?: AbortSignal
}

export const DEFAULT_PROPAGATION: PropagationOptions = {timeoutMs: 120_000, intervalMs: 2000}

/** An authoritative server of a zone, by its NS name and the address asked. */
export interface ZoneServer {
  name: string
  server: DnsServer
}

/** `host` or `host:port` or `[v6]:port` -> a server (port 53 unless given). */
export function parseServer(text: string, defaultPort = 53): {host: string; port: number} {
  const v6 = /^\[([^\]]+)](?::(\d+))?$/.exec(text)
  if (v6) return {host: v6[1], port: v6[2] ? Number(v6[2]) : defaultPort}
  if (isIP(text) === 6) return {host: text, port: defaultPort}
  const [host, port] = text.split(':')
  return {host, port: port ? Number(port) : defaultPort}
}

/** A server given by name gets its address once (UDP needs one). */
export async function resolveServer(server: DnsServer): Promise<DnsServer> {
  if (isIP(server.host)) return server
  const {address} = await lookup(server.host)
  return {host: address, port: server.port}
}

/**
 * The zone that holds `name`, asked of `server`: the owner of the SOA in the answer or, for a
 * name without one (NODATA, NXDOMAIN), in the authority section (RFC 2308) — one query.
 */
export async function findZone(server: DnsServer, name: string, recursive = false): Promise<string> {
  const response = await ask(server, name, TYPE.SOA, recursive, `find the zone of ${name}`)
  const soa = [...response.answers, ...response.authority].find((r) => r.type === TYPE.SOA)
  if (!soa) {
    throw new IssuerError(`${formatServer(server)} named no zone for ${name} (it answered ${describe(response)}).`, {
      code: 'MFC_DNS_UPDATE',
      suggestions: [`Check that ${formatServer(server)} is the primary server of the zone that holds ${name} (dig @${server.host} -p ${server.port} ${name} SOA).`],
    })
  }

  return soa.name
}

/**
 * The zone's authoritative servers (its NS records), with addresses from glue, the same server
 * or the system resolver, all on `server`'s port. Falls back to `server` itself.
 */
export async function zoneServers(server: DnsServer, zone: string, recursive = false, port = server.port): Promise<ZoneServer[]> {
  const response = await ask(server, zone, TYPE.NS, recursive, `list the servers of ${zone}`)
  const names = response.answers.filter((r) => r.type === TYPE.NS).map((r) => r.data)
  const found = await Promise.all(names.map(async (name) => {
    const glue = response.additional.find((r) => r.name === name && (r.type === TYPE.A || r.type === TYPE.AAAA))?.data
    const address = glue ?? await addressOf(server, name, recursive)
    return address ? {name, server: {host: address, port}} : undefined
  }))
  const servers = found.filter((s): s is ZoneServer => s !== undefined)
  return servers.length > 0 ? servers : [{name: formatServer(server), server}]
}

async function addressOf(server: DnsServer, name: string, recursive: boolean): Promise<string | undefined> {
  const direct = await query(server, name, TYPE.A, {recursive}).catch(() => undefined)
  const a = direct?.answers.find((r) => r.type === TYPE.A)?.data
  if (a) return a
  return (await lookup(name).catch(() => undefined))?.address
}

/**
 * Polls every server until each answers `value` among the TXT records of `name` (the first
 * look is immediate). On timeout the error names the record, each server that lacked it and
 * what that server answered.
 */
export async function waitForTxt(servers: ZoneServer[], name: string, value: string, options: PropagationOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  const pending = new Map(servers.map((s) => [formatServer(s.server), {...s, answered: 'nothing yet'}]))
  for (;;) {
    await Promise.all([...pending].map(async ([key, entry]) => {
      try {
        const response = await query(entry.server, name, TYPE.TXT, {signal: options.signal, timeoutMs: Math.min(2000, options.timeoutMs)})
        if (response.answers.some((r) => r.type === TYPE.TXT && r.data === value)) pending.delete(key)
        else entry.answered = describe(response)
      } catch (error) {
        entry.answered = error instanceof DnsTransportError ? 'no answer (timeout)' : (error as Error).message
      }
    }))
    if (pending.size === 0) return
    if (Date.now() + options.intervalMs > deadline) break
    await sleep(options.intervalMs, options.signal)
  }

  const missing = [...pending.values()].map((e) => `${e.name} (${formatServer(e.server)}) answered ${e.answered}`)
  throw new IssuerError(`The TXT record ${name} with value "${value}" did not appear within ${Math.round(options.timeoutMs / 1000)} s: ${missing.join('; ')}.`, {
    code: 'MFC_DNS_PROPAGATION',
    suggestions: [
      `Check the record yourself: dig @${[...pending.values()][0].server.host} -p ${[...pending.values()][0].server.port} ${name} TXT`,
      'If the DNS provider is slow, wait longer: --dns-propagation-timeout SECONDS.',
      'With --manual-auth-hook, the hook must create the record at the zone\'s primary server before it exits.',
    ],
  })
}

async function ask(server: DnsServer, name: string, type: number, recursive: boolean, purpose: string): Promise<DnsResponse> {
  try {
    return await query(server, name, type, {recursive})
  } catch (error) {
    throw new IssuerError(`Could not ${purpose}: ${(error as Error).message}.`, {
      code: 'MFC_DNS_UPDATE',
      cause: error,
      suggestions: [`Check that a DNS server listens at ${formatServer(server)} (dig @${server.host} -p ${server.port} ${name}).`],
    })
  }
}

/** What a server answered, for messages: "NXDOMAIN", "NOERROR with no TXT record", 'TXT "abc"'. */
export function describe(response: DnsResponse): string {
  if (response.rcode !== 0) return RCODES[response.rcode] ?? `rcode ${response.rcode}`
  const txt = response.answers.filter((r) => r.type === TYPE.TXT)
  if (txt.length > 0) return `TXT ${txt.map((r) => JSON.stringify(r.data)).join(', ')}`
  return response.answers.length > 0 ? `NOERROR with ${response.answers.length} non-TXT record(s)` : 'NOERROR with no TXT record'
}

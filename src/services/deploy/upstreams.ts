import {isIP} from 'node:net'

import {UsageError} from '../../lib/errors.js'

/** The four ports of one `mfc serve` node. */
export interface NodePorts {
  api: number
  dashboard: number
  streamer: number
  /** Plain HTTP: ACME HTTP-01 challenges (answered from the shared storage in cluster mode). */
  http: number
}

/** One `mfc serve` node behind a balancer: where each of its services listens. */
export interface Upstream extends NodePorts {
  /** Host name or IP address (an IPv6 address without brackets). */
  host: string
}

const HOST_RE = /^[a-z\d]([a-z\d-]{0,61}[a-z\d])?(\.[a-z\d]([a-z\d-]{0,61}[a-z\d])?)*$/i

function badEntry(entry: string, why: string): UsageError {
  return new UsageError(`--upstream "${entry}" ${why}.`, {
    code: 'MFC_USAGE',
    suggestions: ['List the nodes as host or host:port (the port of the node\'s API), comma-separated, e.g. --upstream 10.0.0.11,10.0.0.12:9443,[fd00::13]; IPv6 addresses in brackets.'],
  })
}

function splitEntry(entry: string): {host: string; port?: string} {
  const bracketed = /^\[([\da-f:.]+)\](?::(\d+))?$/i.exec(entry)
  if (bracketed) {
    if (isIP(bracketed[1]) !== 6) throw badEntry(entry, 'is not an IPv6 address in brackets')
    return {host: bracketed[1], port: bracketed[2]}
  }

  if (isIP(entry) === 6) throw badEntry(entry, 'is an IPv6 address without brackets, so its port cannot be told apart')
  const [host, port, ...rest] = entry.split(':')
  if (rest.length > 0) throw badEntry(entry, 'has more than one ":"')
  if (isIP(host) !== 4 && !HOST_RE.test(host)) throw badEntry(entry, 'does not start with a host name or IP address')
  return {host, port}
}

/**
 * Parses `--upstream host[:port],...`. A node given as `host` listens on this config's four
 * ports (every node of a cluster normally shares one config); `host:port` names the node's API
 * port, and its dashboard, streamer and HTTP ports keep the distance from it that this
 * config's ports have (so several nodes can share one machine). Duplicates are refused: a node
 * listed twice would get twice the traffic.
 */
export function parseUpstreams(list: string, ports: NodePorts): Upstream[] {
  const entries = list.split(',').map((e) => e.trim()).filter((e) => e !== '')
  if (entries.length === 0) throw badEntry(list, 'names no node')
  const seen = new Set<string>()
  return entries.map((entry) => {
    const {host, port} = splitEntry(entry)
    const api = port === undefined ? ports.api : Number(port)
    const shift = api - ports.api
    const node = {host, api, dashboard: ports.dashboard + shift, streamer: ports.streamer + shift, http: ports.http + shift}
    for (const [name, value] of Object.entries(node)) {
      if (name !== 'host' && (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 65_535)) {
        throw badEntry(entry, `gives the node a ${name} port of ${value}, outside 1-65535 (its ports keep the distances of https_port_api, https_port_frontend, wss_port_streaming and http_port)`)
      }
    }

    const key = `${host.toLowerCase()}:${api}`
    if (seen.has(key)) throw badEntry(entry, 'is listed twice')
    seen.add(key)
    return node
  })
}

/** `host:port` as nginx and haproxy write it (IPv6 in brackets). */
export function address(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/** The balancer's view of one local node: this machine's own ports on loopback. */
export function localUpstream(ports: NodePorts): Upstream[] {
  return [{host: '127.0.0.1', ...ports}]
}

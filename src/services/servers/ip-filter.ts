import {promises as fs} from 'node:fs'
import {BlockList, isIP} from 'node:net'

import {ConfigError, errnoCode, fileProblem} from '../../lib/errors.js'

/**
 * Used when `allowed-ips.txt` does not exist: loopback and private networks only, the
 * original system's intent (whose exact-string matching never honoured its own CIDRs).
 */
export const DEFAULT_ALLOWED = ['127.0.0.0/8', '::1', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']

export interface IpListSource {
  file: string
  exists: boolean
  entries: string[]
  /** Lines that are neither an address nor a CIDR (reported, then ignored). */
  invalid: string[]
}

/** `::ffff:10.1.2.3` (an IPv4 client on a dual-stack socket) is the IPv4 address 10.1.2.3. */
export function normalizeIp(ip: string): string {
  // Called per request: skip the regex for the usual plain address.
  if (ip.length < 14 || ip.charCodeAt(0) !== 58 /* : */) return ip
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  return mapped ? mapped[1] : ip
}

function addEntry(list: BlockList, entry: string): boolean {
  const [address, bits, extra] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || extra !== undefined) return false
  const type = family === 4 ? 'ipv4' : 'ipv6'
  if (bits === undefined) {
    list.addAddress(address, type)
    return true
  }

  const prefix = Number(bits)
  if (!/^\d+$/.test(bits) || prefix > (family === 4 ? 32 : 128)) return false
  list.addSubnet(address, prefix, type)
  return true
}

function build(entries: string[]): {list: BlockList; invalid: string[]} {
  const list = new BlockList()
  const invalid = entries.filter((entry) => !addEntry(list, entry))
  return {list, invalid}
}

function contains(list: BlockList, ip: string): boolean {
  const address = normalizeIp(ip)
  const family = isIP(address)
  return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6')
}

/** A bounded memo: cleared when full, so a scan from many addresses cannot grow it without limit. */
function remember(memo: Map<string, boolean>, key: string, compute: () => boolean): boolean {
  const known = memo.get(key)
  if (known !== undefined) return known
  if (memo.size >= 10_000) memo.clear()
  const value = compute()
  memo.set(key, value)
  return value
}

export async function readIpList(file: string): Promise<IpListSource> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return {file, exists: false, entries: [], invalid: []}
    throw new ConfigError(`${fileProblem(file, error)}.`, {code: 'MFC_CONFIG_PARSE', cause: error, suggestions: [`Check the permissions of ${file}.`]})
  }

  const entries = text.split('\n').map((line) => line.replace(/#.*/, '').trim()).filter(Boolean)
  return {file, exists: true, entries, invalid: build(entries).invalid}
}

/**
 * Decides which clients may talk to the servers: `blocked-ips.txt` always wins; then
 * `allowed-ips.txt` (an existing but empty file allows everyone; a missing file allows
 * DEFAULT_ALLOWED). Entries are addresses or CIDRs, IPv4 or IPv6, `#` comments allowed.
 *
 * The client address is the socket peer, unless the peer is a trusted proxy: then the
 * right-most `X-Forwarded-For` entry that is not itself a trusted proxy (the left part of the
 * header is whatever the client claimed, so it is never believed). When that entry is not an
 * IP address, `clientIp` returns it as it is (cut to 64 characters) and admission denies it.
 */
export class IpFilter {
  /** BlockList.check costs microseconds (it builds a SocketAddress); clients repeat, so decisions are memoized. */
  private readonly memo = {allowed: new Map<string, boolean>(), blocked: new Map<string, boolean>(), proxy: new Map<string, boolean>()}

  private constructor(
    private readonly allowed: BlockList | null,
    private readonly blocked: BlockList,
    private readonly proxies: BlockList,
    readonly sources: {allowed: IpListSource; blocked: IpListSource},
  ) {}

  static async load(allowedFile: string, blockedFile: string, trustedProxies: readonly string[]): Promise<IpFilter> {
    const proxies = build([...trustedProxies])
    if (proxies.invalid.length > 0) {
      throw new ConfigError(`Invalid trusted_proxies entries: ${proxies.invalid.join(', ')}.`, {
        code: 'MFC_CONFIG_VALUE',
        suggestions: ['List proxy addresses or CIDRs, e.g. "trusted_proxies": ["127.0.0.1", "10.0.0.0/8"].'],
      })
    }

    const [allowed, blocked] = await Promise.all([readIpList(allowedFile), readIpList(blockedFile)])
    const allowEntries = allowed.exists ? allowed.entries : DEFAULT_ALLOWED
    return new IpFilter(
      allowEntries.length === 0 ? null : build(allowEntries).list,
      build(blocked.entries).list,
      proxies.list,
      {allowed, blocked},
    )
  }

  isTrustedProxy(ip: string | undefined): boolean {
    return ip !== undefined && remember(this.memo.proxy, ip, () => contains(this.proxies, ip))
  }

  clientIp(peer: string | undefined, forwardedFor: string | string[] | undefined): string {
    const remote = normalizeIp(peer ?? '')
    if (!forwardedFor || !this.isTrustedProxy(remote)) return remote
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',').map((hop) => normalizeIp(hop.trim()))
    for (let i = hops.length - 1; i >= 0; i--) {
      // Not the proxy's address (it would pass the allow list): the caller denies what is no IP.
      if (isIP(hops[i]) === 0) return hops[i].slice(0, 64)
      if (!this.isTrustedProxy(hops[i])) return hops[i]
    }

    return hops[0] ?? remote
  }

  isAllowed(ip: string): boolean {
    return remember(this.memo.allowed, ip, () => !this.isBlocked(ip) && (this.allowed === null || contains(this.allowed, ip)))
  }

  isBlocked(ip: string): boolean {
    return remember(this.memo.blocked, ip, () => contains(this.blocked, ip))
  }
}

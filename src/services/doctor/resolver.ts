import {Resolver} from 'node:dns/promises'

/** A CAA record as RFC 8659 defines it (only the tags mfc judges). */
export interface CaaRecord {
  critical: number
  issue?: string
  issuewild?: string
  iodef?: string
}

/** What a name resolves to; `error` is the resolver's code when the lookup failed (not "no records"). */
export interface AddressLookup {
  addresses: string[]
  error: string | null
}

/**
 * The doctor's one DNS adapter (node:dns's Resolver): A/AAAA and CAA, asked of `servers` when
 * given (host or host:port, e.g. the zone's own BIND), else of the system's resolvers. "No such
 * name" and "no records of that type" are empty answers, not errors.
 */
export class DnsLookup {
  private readonly resolver: Resolver

  constructor(servers?: string[], timeoutMs = 3000) {
    this.resolver = new Resolver({timeout: timeoutMs, tries: 2})
    if (servers?.length) this.resolver.setServers(servers)
  }

  async addresses(name: string): Promise<AddressLookup> {
    const [v4, v6] = await Promise.all([this.ask(() => this.resolver.resolve4(name)), this.ask(() => this.resolver.resolve6(name))])
    return {addresses: [...v4.records, ...v6.records], error: v4.records.length + v6.records.length > 0 ? null : v4.error ?? v6.error}
  }

  /** The CAA records of `name` itself (climbing the tree is the caller's job). */
  async caa(name: string): Promise<{records: CaaRecord[]; error: string | null}> {
    return this.ask(() => this.resolver.resolveCaa(name) as Promise<CaaRecord[]>)
  }

  private async ask<T>(query: () => Promise<T[]>): Promise<{records: T[]; error: string | null}> {
    try {
      return {records: await query(), error: null}
    } catch (error) {
      const code = (error as {code?: string}).code ?? (error as Error).message
      return {records: [], error: code === 'ENODATA' || code === 'ENOTFOUND' ? null : code}
    }
  }
}
